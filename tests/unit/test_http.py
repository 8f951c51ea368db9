"""The shared HTTP layer: retries, Retry-After, typed errors, rate and concurrency limits."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
import responses
from pydantic import SecretStr

from connectors.http import (
    AdaptiveLimiter,
    AuthenticationFailed,
    BadRequest,
    Conflict,
    HttpClient,
    NotFound,
    PermissionDenied,
    RetriesExhausted,
    RetryPolicy,
    TokenAuth,
    TokenBucket,
    TrackerError,
    is_transient,
    retry_after_seconds,
)

BASE = "https://jira.example.test"
URL = f"{BASE}/rest/api/3/myself"
SECRET = "s3cr3t-token-value"


class FakeClock:
    """Time that moves only when someone sleeps; records every sleep."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            if seconds > 0:
                self.sleeps.append(seconds)
                self.now += seconds


def client(clock: FakeClock, **kwargs: object) -> HttpClient:
    return HttpClient(
        BASE,
        auth=TokenAuth.basic("pm@example.test", SecretStr(SECRET)),
        clock=clock,
        rng=random.Random(7),
        name="jira-test",
        **kwargs,  # type: ignore[arg-type]
    )


@responses.activate
def test_429_waits_retry_after_to_the_second_then_succeeds() -> None:
    clock = FakeClock()
    responses.get(URL, status=429, headers={"Retry-After": "7"})
    responses.get(URL, json={"accountId": "a"})
    body = client(clock).get_json("/rest/api/3/myself")
    assert body == {"accountId": "a"}
    assert len(clock.sleeps) == 1
    assert 7 <= clock.sleeps[0] < 8


@responses.activate
def test_retry_after_is_never_shortened_by_later_backoff() -> None:
    clock = FakeClock()
    for _ in range(3):
        responses.get(URL, status=429, headers={"Retry-After": "2"})
    responses.get(URL, json={})
    http = client(clock, policy=RetryPolicy(backoff_base=0.01))
    http.get_json(URL)
    assert len(clock.sleeps) == 3
    assert all(wait >= 2 for wait in clock.sleeps)
    assert http.stats.throttled == 3


@responses.activate
def test_503_with_http_date_retry_after() -> None:
    clock = FakeClock(start=datetime(2026, 11, 21, 12, 0, tzinfo=UTC).timestamp())
    when = datetime(2026, 11, 21, 12, 0, 30, tzinfo=UTC)
    responses.get(URL, status=503, headers={"Retry-After": format_datetime(when, usegmt=True)})
    responses.get(URL, json={})
    http = client(clock)
    http.get_json(URL)
    assert 30 <= clock.sleeps[0] < 31
    assert http.stats.unavailable == 1


@responses.activate
def test_429_without_retry_after_backs_off_exponentially() -> None:
    clock = FakeClock()
    for _ in range(4):
        responses.get(URL, status=429)
    responses.get(URL, json={})
    client(clock, policy=RetryPolicy(backoff_base=1.0, backoff_cap=100)).get_json(URL)
    # Equal jitter: retry n waits between 2**n / 2 and 2**n seconds.
    for n, wait in enumerate(clock.sleeps):
        assert 2**n / 2 <= wait <= 2**n


@responses.activate
def test_server_errors_and_dropped_connections_are_retried() -> None:
    clock = FakeClock()
    responses.get(URL, status=502)
    responses.get(URL, body=requests.ConnectionError("connection reset by peer"))
    responses.get(URL, status=500)
    responses.get(URL, json={"ok": True})
    http = client(clock)
    assert http.get_json(URL) == {"ok": True}
    assert http.stats.retries == 3
    assert http.stats.dropped == 1
    assert http.stats.server_errors == 2


@responses.activate
def test_a_call_that_keeps_failing_raises_retries_exhausted() -> None:
    clock = FakeClock()
    responses.get(URL, status=503)
    with pytest.raises(RetriesExhausted) as caught:
        client(clock, policy=RetryPolicy(max_attempts=3)).get_json(URL)
    assert caught.value.status == 503
    assert "failed after 3 attempt(s)" in str(caught.value)
    assert len(responses.calls) == 3
    assert is_transient(caught.value)


@responses.activate
def test_dropped_connection_of_a_non_idempotent_call_is_not_repeated() -> None:
    clock = FakeClock()
    responses.post(URL, body=requests.ConnectionError("connection reset"))
    with pytest.raises(RetriesExhausted, match="not idempotent"):
        client(clock).request("POST", URL, json={}, idempotent=False)
    assert len(responses.calls) == 1


@pytest.mark.parametrize(
    ("status", "kind", "words"),
    [
        (400, BadRequest, "rejected"),
        (401, AuthenticationFailed, "check the configured credentials"),
        (403, PermissionDenied, "lacks the permission"),
        (404, NotFound, "not found"),
        (409, Conflict, "changed since it was read"),
        (412, Conflict, "changed since it was read"),
    ],
)
@responses.activate
def test_client_errors_are_typed_not_retried_and_keep_the_trackers_words(
    status: int, kind: type[TrackerError], words: str
) -> None:
    clock = FakeClock()
    responses.get(
        URL,
        status=status,
        json={"errorMessages": ["Field 'foo' does not exist."], "errors": {"bar": "is required"}},
    )
    with pytest.raises(kind) as caught:
        client(clock).get_json(URL)
    message = str(caught.value)
    assert words in message
    assert "Field 'foo' does not exist." in message and "bar: is required" in message
    assert caught.value.status == status
    assert len(responses.calls) == 1
    assert not is_transient(caught.value)
    assert clock.sleeps == []


@responses.activate
def test_azure_devops_error_shape_is_read() -> None:
    responses.get(URL, status=400, json={"message": "TF51005: The query references a field..."})
    with pytest.raises(BadRequest, match="TF51005"):
        client(FakeClock()).get_json(URL)


@responses.activate
def test_the_secret_appears_in_no_message_log_or_repr(caplog: pytest.LogCaptureFixture) -> None:
    auth = TokenAuth.basic("pm@example.test", SecretStr(SECRET))
    responses.get(URL, status=429)
    responses.get(URL, status=401, json={"errorMessages": ["Unauthorized"]})
    http = HttpClient(BASE, auth=auth, clock=FakeClock())
    with caplog.at_level("DEBUG"), pytest.raises(AuthenticationFailed) as caught:
        http.get_json(URL)
    assert responses.calls[0].request.headers["Authorization"].startswith("Basic ")
    encoded = responses.calls[0].request.headers["Authorization"].split()[1]
    for text in (str(caught.value), repr(caught.value), caplog.text, repr(auth), repr(http)):
        assert SECRET not in text and encoded not in text
    assert repr(TokenAuth.bearer(SecretStr(SECRET))) == "TokenAuth(Bearer ****)"


def test_retry_after_header_forms() -> None:
    assert retry_after_seconds({"Retry-After": "12"}, 0) == 12
    assert retry_after_seconds({"Retry-After": "1.5"}, 0) == 1.5
    reset = (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=40)).isoformat()
    now = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    assert retry_after_seconds({"X-RateLimit-Reset": reset}, now) == 40
    assert retry_after_seconds({}, 0) is None


def test_token_bucket_spaces_requests_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, burst=1, clock=clock)
    for _ in range(5):
        bucket.acquire()
    assert clock.sleeps == pytest.approx([0.5, 0.5, 0.5, 0.5])


def test_limiter_halves_on_throttle_once_per_burst_and_recovers_additively() -> None:
    clock = FakeClock()
    limiter = AdaptiveLimiter(8, cooldown=1.0, recovery=2, clock=clock)
    limiter.throttled()
    limiter.throttled()  # same burst: counted once
    assert limiter.limit == 4
    clock.sleep(1.5)
    limiter.throttled()
    assert limiter.limit == 2
    assert limiter.lowest == 2
    for _ in range(2 * 2):
        limiter.succeeded()
    assert limiter.limit == 3
    for _ in range(2 * 3 - 1):
        limiter.succeeded()
    assert limiter.limit == 3
    limiter.succeeded()
    assert limiter.limit == 4


def test_limiter_never_lets_more_than_the_limit_in_flight() -> None:
    limiter = AdaptiveLimiter(3)
    peak = 0
    active = 0
    lock = threading.Lock()
    barrier = threading.Event()

    def work() -> None:
        nonlocal peak, active
        with limiter.slot():
            with lock:
                active += 1
                peak = max(peak, active)
            barrier.wait(0.05)
            with lock:
                active -= 1

    threads = [threading.Thread(target=work) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 3


def test_a_pause_holds_back_every_worker_of_the_site() -> None:
    clock = FakeClock()
    limiter = AdaptiveLimiter(4, clock=clock)
    limiter.pause(9)
    waited: list[float] = []

    def worker() -> None:
        start = clock.monotonic()
        with limiter.slot():
            waited.append(clock.monotonic() - start)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert waited and waited[0] >= 9


@responses.activate
def test_429_pauses_the_whole_site_and_shrinks_the_pool() -> None:
    clock = FakeClock()
    http = client(clock, concurrency=8)
    responses.get(URL, status=429, headers={"Retry-After": "5"})
    responses.get(URL, json={})
    paused_from = clock.monotonic()
    http.get_json(URL)
    assert http.limiter.limit == 4
    # Another worker asking right now (fake time already moved by the first one's wait) goes
    # straight through; one asking before the pause ends must wait for it.
    clock.now = paused_from + 1
    responses.get(URL, json={})
    before = len(clock.sleeps)
    http.get_json(URL)
    assert clock.sleeps[before] >= 4


@responses.activate
def test_near_limit_header_reduces_concurrency_without_failing() -> None:
    http = client(FakeClock(), concurrency=8)
    responses.get(URL, json={}, headers={"X-RateLimit-NearLimit": "true"})
    http.get_json(URL)
    assert http.limiter.limit == 4
    assert http.stats.near_limit == 1


@responses.activate
def test_tls_failure_is_a_clear_error_and_not_retried() -> None:
    responses.get(URL, body=requests.exceptions.SSLError("certificate verify failed"))
    with pytest.raises(TrackerError, match="verify_tls"):
        client(FakeClock()).get_json(URL)
    assert len(responses.calls) == 1
