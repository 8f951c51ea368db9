"""The one HTTP layer every tracker connector uses: auth, retries, rate limits, typed errors.

Every concern that differs between a polite and an abusive client lives here, once:

- 429 and 503 wait at least `Retry-After` (never less) and the wait is shared by every worker of
  the site, then back off exponentially with jitter; other 5xx and dropped connections are retried;
- 4xx other than 429 are not retried and become typed `TrackerError`s a user can act on;
- a token bucket (requests per second) and an AIMD concurrency limiter are shared by all workers of
  one site: on 429 or a near-limit signal (Jira `X-RateLimit-NearLimit`, Azure DevOps
  `X-RateLimit-Delay`/`X-RateLimit-Remaining`) the allowed concurrency halves, then grows back by
  one slot at a time;
- a `RequestGate` given by the caller (a rate limit shared across processes and machines, such as
  a Prefect global concurrency limit) replaces the token bucket; connectors never know which;
- the secret is added to the request by `TokenAuth` at send time and appears nowhere else.

The clock is injectable so tests of Retry-After run without sleeping.
"""

from __future__ import annotations

import base64
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import orjson
import requests
from pydantic import SecretStr
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
THROTTLE_STATUSES = frozenset({429, 503})
NEAR_LIMIT_REMAINING = 5
"""`X-RateLimit-Remaining` at or below this counts as a near-limit signal."""


# --- errors -----------------------------------------------------------------------------------


class TrackerError(Exception):
    """A tracker call that failed; the message says what to do and never holds a secret."""

    status: int | None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        self.path = path
        self.detail = detail


class BadRequest(TrackerError):
    """400: the tracker rejected what we sent (bad JQL/WIQL, unknown field, invalid value)."""


class AuthenticationFailed(TrackerError):
    """401: the credentials are wrong, expired, or for another site."""


class PermissionDenied(TrackerError):
    """403: authenticated, but the account lacks a permission the call needs."""


class NotFound(TrackerError):
    """404: the item, project or endpoint does not exist or is invisible to the account."""


class Conflict(TrackerError):
    """409/412: the item changed since it was read (e.g. an Azure DevOps stale revision)."""


class RetriesExhausted(TrackerError):
    """A transient failure (429, 5xx, dropped connection) that did not go away."""


_STATUS_ERRORS: dict[int, tuple[type[TrackerError], str]] = {
    400: (BadRequest, "the tracker rejected the request"),
    401: (
        AuthenticationFailed,
        "authentication failed: check the configured credentials (token expired or revoked, "
        "wrong email, or a token of another site)",
    ),
    403: (
        PermissionDenied,
        "permission denied: the account authenticated but lacks the permission this call needs",
    ),
    404: (NotFound, "not found (or not visible to this account)"),
    409: (Conflict, "conflict: the item changed since it was read"),
    412: (Conflict, "precondition failed: the item changed since it was read"),
}


def is_transient(exc: BaseException) -> bool:
    """Whether trying the same call again later may succeed (Prefect's retry condition)."""
    if isinstance(exc, RetriesExhausted):
        return True
    if isinstance(exc, TrackerError):
        return exc.status is not None and exc.status in RETRY_STATUSES
    return isinstance(exc, requests.ConnectionError | requests.Timeout)


def error_detail(response: requests.Response) -> str:
    """The tracker's own explanation from an error body (Jira and Azure DevOps shapes)."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:500] if text and not text.lstrip().startswith("<") else response.reason or ""
    parts: list[str] = []
    if isinstance(body, dict):
        messages = body.get("errorMessages")
        if isinstance(messages, list):
            parts += [str(m) for m in messages if m]
        errors = body.get("errors")
        if isinstance(errors, dict):
            parts += [f"{name}: {message}" for name, message in errors.items()]
        for key in ("message", "errorMessage"):
            if isinstance(body.get(key), str) and body[key]:
                parts.append(body[key])
    return "; ".join(parts) or (response.reason or "")


# --- auth -------------------------------------------------------------------------------------


class TokenAuth(requests.auth.AuthBase):
    """Sets `Authorization` at send time; the secret stays a SecretStr and is never shown."""

    def __init__(self, scheme: str, credentials: SecretStr) -> None:
        self._scheme = scheme
        self._credentials = credentials

    @classmethod
    def basic(cls, user: str, password: SecretStr) -> TokenAuth:
        """Basic auth (Jira Cloud email + API token; Azure DevOps PAT with an empty user)."""
        raw = f"{user}:{password.get_secret_value()}".encode()
        return cls("Basic", SecretStr(base64.b64encode(raw).decode("ascii")))

    @classmethod
    def bearer(cls, token: SecretStr) -> TokenAuth:
        """Bearer auth (Jira Data Center personal access token)."""
        return cls("Bearer", token)

    @property
    def scheme(self) -> str:
        return self._scheme

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"{self._scheme} {self._credentials.get_secret_value()}"
        return request

    def __repr__(self) -> str:
        return f"TokenAuth({self._scheme} ****)"


# --- time, rate and concurrency ---------------------------------------------------------------


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class TokenBucket:
    """Requests per second shared by every worker of a site; bursts up to `burst` requests."""

    def __init__(self, rate: float, *, burst: float | None = None, clock: Clock | None = None):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._clock = clock or SystemClock()
        self._tokens = self.burst
        self._stamp = self._clock.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until it is due; returns the seconds waited."""
        with self._lock:
            now = self._clock.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1.0
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        self._clock.sleep(wait)
        return wait


class AdaptiveLimiter:
    """AIMD concurrency for one site, plus a pause every worker honours (a shared Retry-After).

    Throttling halves the allowed requests in flight (at most once per `cooldown` seconds, so one
    burst of 429s from concurrent workers counts once); each run of `recovery` successes per
    allowed slot adds one slot back, up to `maximum`.
    """

    def __init__(
        self,
        maximum: int,
        *,
        minimum: int = 1,
        cooldown: float = 1.0,
        recovery: int = 2,
        clock: Clock | None = None,
    ) -> None:
        if not 1 <= minimum <= maximum:
            raise ValueError("need 1 <= minimum <= maximum")
        self.maximum = maximum
        self.minimum = minimum
        self._cooldown = cooldown
        self._recovery = recovery
        self._clock = clock or SystemClock()
        self._limit = float(maximum)
        self._in_flight = 0
        self._successes = 0
        self._paused_until = 0.0
        self._last_cut = float("-inf")
        self._lowest = maximum
        self._cond = threading.Condition()

    @property
    def limit(self) -> int:
        return int(self._limit)

    @property
    def lowest(self) -> int:
        """The smallest limit reached so far (reported by benchmarks)."""
        return self._lowest

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def acquire(self) -> None:
        with self._cond:
            while True:
                wait = self._paused_until - self._clock.monotonic()
                if wait > 0:
                    self._cond.release()
                    try:
                        self._clock.sleep(wait)
                    finally:
                        self._cond.acquire()
                    continue
                if self._in_flight < int(self._limit):
                    self._in_flight += 1
                    return
                self._cond.wait(timeout=0.5)

    def release(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify()

    @contextmanager
    def slot(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def succeeded(self) -> None:
        with self._cond:
            if self._limit >= self.maximum:
                return
            self._successes += 1
            if self._successes >= self._recovery * int(self._limit):
                self._successes = 0
                self._limit = min(float(self.maximum), self._limit + 1)
                self._cond.notify_all()

    def throttled(self) -> None:
        with self._cond:
            now = self._clock.monotonic()
            if now - self._last_cut < self._cooldown:
                return
            self._last_cut = now
            self._successes = 0
            self._limit = max(float(self.minimum), self._limit / 2)
            self._lowest = min(self._lowest, int(self._limit))

    def pause(self, seconds: float) -> None:
        """No worker of the site sends anything for `seconds` from now (extends, never shortens)."""
        with self._cond:
            self._paused_until = max(self._paused_until, self._clock.monotonic() + seconds)


class RequestGate(Protocol):
    """Admits each request to a site, e.g. a rate limit shared by every process that calls it.

    Injected by whoever runs the connector (flows/throttle.py builds one on a Prefect global
    concurrency limit); when an HttpClient has a gate, it replaces the client's own TokenBucket.
    """

    def admit(self) -> float:
        """Block until one more request may be sent; return the seconds waited."""
        ...


@dataclass
class HttpStats:
    """Counters for benchmarks and run logs (thread-safe increments)."""

    requests: int = 0
    throttled: int = 0
    """Responses with status 429."""
    unavailable: int = 0
    """Responses with status 503."""
    near_limit: int = 0
    retries: int = 0
    server_errors: int = 0
    dropped: int = 0
    waited_seconds: float = 0.0
    lowest_concurrency: int = 0
    """The smallest concurrency the AIMD limiter went down to (0: never throttled)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **deltas: float) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return {
                name: getattr(self, name)
                for name in (
                    "requests",
                    "throttled",
                    "unavailable",
                    "near_limit",
                    "retries",
                    "server_errors",
                    "dropped",
                    "waited_seconds",
                    "lowest_concurrency",
                )
            }


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    max_retry_after: float = 900.0
    """A Retry-After longer than this fails the call instead of hanging the sync."""

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Exponential backoff with 'equal jitter' for retry number `attempt` (0-based)."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2**attempt)
        return rng.uniform(ceiling / 2, ceiling)


def retry_after_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """`Retry-After` as seconds (delta or HTTP date), else the Jira `X-RateLimit-Reset` instant."""
    value = headers.get("Retry-After")
    if value:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError):
            pass
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        try:
            return max(0.0, datetime.fromisoformat(reset.replace("Z", "+00:00")).timestamp() - now)
        except ValueError:
            return None
    return None


def _near_limit(headers: Mapping[str, str]) -> bool:
    if headers.get("X-RateLimit-NearLimit", "").lower() == "true":
        return True
    if headers.get("X-RateLimit-Delay"):
        return True
    remaining = headers.get("X-RateLimit-Remaining")
    if remaining is not None:
        try:
            return float(remaining) <= NEAR_LIMIT_REMAINING
        except ValueError:
            return False
    return False


_TRANSIENT_EXCEPTIONS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


# --- the client -------------------------------------------------------------------------------


class HttpClient:
    """A polite, retrying JSON client for one tracker site, safe to share between threads."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: TokenAuth | None = None,
        verify_tls: bool = True,
        timeout: float = 60.0,
        concurrency: int = 4,
        requests_per_second: float | None = None,
        policy: RetryPolicy | None = None,
        limiter: AdaptiveLimiter | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        user_agent: str = "lpm-sync",
        name: str = "tracker",
        gate: RequestGate | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.gate = gate
        """When set, every request passes it instead of the TokenBucket (the AIMD concurrency
        limiter and Retry-After pauses still apply)."""
        self.name = name
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        self.clock: Clock = clock or SystemClock()
        self.limiter = limiter or AdaptiveLimiter(concurrency, clock=self.clock)
        self.bucket = (
            TokenBucket(requests_per_second, clock=self.clock) if requests_per_second else None
        )
        self.stats = HttpStats()
        self._rng = rng or random.Random()
        self.session = requests.Session()
        self.session.auth = auth
        self.session.verify = verify_tls
        self.session.headers.update({"Accept": "application/json", "User-Agent": user_agent})
        adapter = HTTPAdapter(
            pool_connections=4, pool_maxsize=max(8, self.limiter.maximum * 2), max_retries=0
        )
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # requests reads proxies and the CA bundle (REQUESTS_CA_BUNDLE) from the environment on
        # every call, walking os.environ twice: a tenth of its CPU per request. One client talks
        # to one site, so they are read once, here, with the same rules.
        found = self.session.merge_environment_settings(self.base_url, {}, None, verify_tls, None)
        self.session.proxies.update(found["proxies"])
        self.session.verify = found["verify"]
        self.session.trust_env = False

    def __repr__(self) -> str:
        return f"HttpClient({self.base_url!r})"

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def get_json(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        describe: Callable[[TrackerError], TrackerError] | None = None,
    ) -> Any:
        return _json(self.request("GET", path, params=params, describe=describe))

    def post_json(
        self,
        path: str,
        body: Any,
        *,
        params: Mapping[str, Any] | None = None,
        describe: Callable[[TrackerError], TrackerError] | None = None,
    ) -> Any:
        """POST a JSON body; searches and bulk reads are safe to repeat, so they are retried."""
        response = self.request("POST", path, params=params, json=body, describe=describe)
        return _json(response) if response.content else None

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = True,
        describe: Callable[[TrackerError], TrackerError] | None = None,
    ) -> requests.Response:
        """Send with retries; return a 2xx/3xx response or raise a `TrackerError`.

        `idempotent=False` retries a dropped connection only when the request cannot have
        reached the server (connect errors). `describe` may replace a 4xx error by one with a
        more specific message (e.g. quoting the JQL back).
        """
        url = self.url(path)
        where = _path_only(url)
        attempt = 0
        while True:
            response: requests.Response | None = None
            failure: Exception | None = None
            with self.limiter.slot():
                if self.gate is not None:
                    self.stats.add(waited_seconds=self.gate.admit())
                elif self.bucket is not None:
                    self.stats.add(waited_seconds=self.bucket.acquire())
                self.stats.add(requests=1)
                try:
                    response = self._send(method, url, params, json, data, headers)
                except requests.exceptions.SSLError as exc:
                    raise TrackerError(
                        f"{self.name}: TLS verification of {self.base_url} failed ({exc}); install "
                        "the site's CA certificate, or set verify_tls: false for this source",
                        method=method,
                        path=where,
                    ) from None
                except _TRANSIENT_EXCEPTIONS as exc:
                    failure = exc
            if response is not None and response.status_code < 400:
                self._observe(response)
                return response
            if response is not None and response.status_code not in RETRY_STATUSES:
                error = self._error(response, method, where)
                raise describe(error) if describe else error
            if failure is not None and not (idempotent or isinstance(failure, _CONNECT_ERRORS)):
                raise RetriesExhausted(
                    f"{self.name}: {method} {where}: connection lost after the request was sent; "
                    "not repeated because the call is not idempotent",
                    method=method,
                    path=where,
                ) from None
            wait, reason = self._plan_retry(response, failure, attempt)
            attempt += 1
            if attempt >= self.policy.max_attempts or wait is None:
                status = response.status_code if response is not None else None
                raise RetriesExhausted(
                    f"{self.name}: {method} {where} failed after {attempt} attempt(s): {reason}",
                    status=status,
                    method=method,
                    path=where,
                ) from None
            log.info("%s: %s %s: %s; retrying in %.1f s", self.name, method, where, reason, wait)
            self.stats.add(retries=1, waited_seconds=wait)

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json: Any,
        data: Any,
        headers: Mapping[str, str] | None,
    ) -> requests.Response:
        """What `Session.request` does, less its per-call merging of settings that are fixed for
        this client (environment, cookie jar copies, typing-protocol checks): ~10% of the CPU
        of a small call, which is what write-back spends most of its time on."""
        session = self.session
        merged = CaseInsensitiveDict(session.headers)
        if headers:
            merged.update(headers)
        prepared = requests.PreparedRequest()
        prepared.prepare(
            method=method.upper(),
            url=url,
            headers={key: value for key, value in merged.items() if value is not None},
            params=params,
            json=json,
            data=data,
            auth=session.auth,
            cookies=session.cookies,
            hooks=session.hooks,
        )
        return session.send(
            prepared,
            timeout=self.timeout,
            allow_redirects=True,
            proxies=session.proxies,
            stream=session.stream,
            verify=session.verify,
            cert=session.cert,
        )

    def _plan_retry(
        self, response: requests.Response | None, failure: Exception | None, attempt: int
    ) -> tuple[float | None, str]:
        """How long to wait before the next attempt (None: give up) and why; waits happen here."""
        backoff = self.policy.backoff(attempt, self._rng)
        if response is None:
            self.stats.add(dropped=1)
            self.clock.sleep(backoff)
            return backoff, f"connection failed ({type(failure).__name__})"
        status = response.status_code
        reason = f"{status} {response.reason or ''}".strip()
        if status not in THROTTLE_STATUSES:
            self.stats.add(server_errors=1)
            self.clock.sleep(backoff)
            return backoff, reason
        self.stats.add(throttled=int(status == 429), unavailable=int(status == 503))
        self._throttled()
        retry_after = retry_after_seconds(response.headers, self.clock.time())
        if retry_after is None:
            self.limiter.pause(backoff)
            return backoff, reason
        if retry_after > self.policy.max_retry_after:
            return None, f"{reason}, and the tracker asks to wait {retry_after:.0f} s"
        # Never less than Retry-After; past the first retry, at least the exponential backoff; the
        # sub-second spread keeps workers from all returning in the same instant.
        wait = max(retry_after, backoff if attempt else 0.0) + self._rng.uniform(0, 0.5)
        self.limiter.pause(wait)
        return wait, f"{reason} (Retry-After {retry_after:g} s)"

    def _observe(self, response: requests.Response) -> None:
        headers = response.headers
        if _near_limit(headers):
            self.stats.add(near_limit=1)
            self._throttled()
            retry_after = retry_after_seconds(headers, self.clock.time())
            if retry_after and "Retry-After" in headers:
                self.limiter.pause(min(retry_after, self.policy.max_retry_after))
        else:
            self.limiter.succeeded()

    def _throttled(self) -> None:
        self.limiter.throttled()
        self.stats.lowest_concurrency = self.limiter.lowest

    def _error(self, response: requests.Response, method: str, where: str) -> TrackerError:
        status = response.status_code
        kind, summary = _STATUS_ERRORS.get(status, (TrackerError, f"unexpected status {status}"))
        detail = error_detail(response)
        message = f"{self.name}: {method} {where}: {summary}"
        if detail:
            message += f": {detail}"
        return kind(message, status=status, method=method, path=where, detail=detail)

    def close(self) -> None:
        self.session.close()


_CONNECT_ERRORS = (requests.exceptions.ConnectTimeout,)


def _json(response: requests.Response) -> Any:
    """The JSON body, parsed by orjson: several times faster than `Response.json()`, which
    matters because parsing runs in fetch threads that share the GIL with mapping and loading."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise TrackerError(
            f"{_path_only(response.url)}: the tracker answered {response.status_code} with a "
            f"body that is not JSON ({exc})",
            status=response.status_code,
        ) from None


def _path_only(url: str) -> str:
    """The URL without scheme, host or query: enough to name the call, nothing sensitive."""
    return urlsplit(url).path or "/"


# --- pagination -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OffsetPaginator:
    """Offset paging: ask for `size` items from an offset until a page comes back short.

    Azure DevOps spells the parameters `$top`/`$skip`, Jira Data Center `maxResults`/`startAt`.
    """

    size: int
    limit_param: str
    offset_param: str

    def pages(self, fetch: Callable[[dict[str, int]], list[Any]]) -> Iterator[list[Any]]:
        """`fetch(params)` returns one page; pages are yielded until one is short."""
        offset = 0
        while True:
            page = fetch({self.limit_param: self.size, self.offset_param: offset})
            yield page
            if len(page) < self.size:
                return
            offset += len(page)


@dataclass(frozen=True)
class KeyBatches:
    """Bulk reads by key in batches of at most `size` keys (Azure DevOps `workitemsbatch`: 200)."""

    size: int

    def batches(self, keys: Sequence[Any]) -> Iterator[list[Any]]:
        return self.across([keys])

    def across(self, runs: Iterable[Sequence[Any]]) -> Iterator[list[Any]]:
        """Batches of keys that arrive in runs (e.g. one per listing window): full batches run
        across the ends of runs, so there are as many as for one long list."""
        waiting: list[Any] = []
        for run in runs:
            waiting += run
            full = len(waiting) - len(waiting) % self.size
            for start in range(0, full, self.size):
                yield waiting[start : start + self.size]
            waiting = waiting[full:]
        if waiting:
            yield waiting


class TooManyResults(TrackerError):
    """A query matched more results than the tracker returns at once (it must be narrowed)."""


@dataclass(frozen=True)
class TimeWindow:
    """A half-open time range [start, end); None is unbounded on that side."""

    start: datetime | None
    end: datetime | None

    def halves(self, now: datetime, anchor: datetime) -> tuple[TimeWindow, TimeWindow]:
        """Split in the middle; an open start counts from `anchor`, an open end from `now`."""
        low = self.start or anchor
        high = self.end or now
        middle = low + (high - low) / 2
        if not low < middle < high or high - low < timedelta(milliseconds=2):
            raise TrackerError(
                f"more results than the tracker lists at once changed within one millisecond "
                f"({low.isoformat()}); narrow the scope"
            )
        return TimeWindow(self.start, middle), TimeWindow(middle, self.end)


@dataclass(frozen=True)
class WindowSplitter:
    """Lists a result-capped query (no paging) by halving its time range until each window fits.

    `query(window)` raises `TooManyResults` when the window holds too much; windows come back
    oldest first, so a caller may resume from the last instant it delivered.
    """

    anchor: datetime
    """Where halving starts for a window without a start (older than anything in scope)."""

    def windows(
        self,
        window: TimeWindow,
        query: Callable[[TimeWindow], Any],
        now: Callable[[], datetime],
        earliest: Callable[[], datetime | None] | None = None,
    ) -> Iterator[Any]:
        """Results per window. `earliest()`, asked once when a window without a start must be
        split, may name the oldest instant in scope: halving then starts there, not at `anchor`,
        which saves a refused query per halving of the empty years in between."""
        anchor: datetime | None = None
        todo = [window]
        while todo:
            current = todo.pop()
            try:
                result = query(current)
            except TooManyResults:
                if anchor is None:
                    found = earliest() if earliest and current.start is None else None
                    anchor = found if found is not None else self.anchor
                first, second = current.halves(now(), anchor)
                log.info("query window too large; halving it at %s", first.end)
                todo += [second, first]
                continue
            yield result


# --- pipelines --------------------------------------------------------------------------------


_END = object()


class _Stopped(Exception):
    """The consumer went away; the producer stops quietly."""


class Pipeline:
    """Tasks on a bounded pool, results handed back in submission order.

    A producer thread submits tasks (it may itself make requests, e.g. the id pass); at most
    `window` results wait to be taken (default `workers * 3`; 0: no bound), which bounds memory
    however large the site, and the next pages download while the consumer maps and loads the
    current one.
    """

    def __init__(self, workers: int, window: int | None = None, name: str = "fetch") -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._queue: queue.Queue[Any] = queue.Queue(workers * 3 if window is None else window)
        self._stop = threading.Event()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future = self._pool.submit(fn, *args)
        self._put(future)
        return future

    def put_result(self, value: Any) -> None:
        done: Future[Any] = Future()
        done.set_result(value)
        self._put(done)

    def _put(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue
        raise _Stopped

    def _produce(self, producer: Callable[[Pipeline], Any]) -> None:
        try:
            producer(self)
            self._put(_END)
        except _Stopped:
            return
        except BaseException as exc:  # handed to the consumer, which raises it
            try:
                self._put(exc)
            except _Stopped:
                return

    def run(self, producer: Callable[[Pipeline], Any]) -> Iterator[Any]:
        thread = threading.Thread(target=self._produce, args=(producer,), daemon=True)
        thread.start()
        try:
            while True:
                item = self._queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item.result()
        finally:
            self._stop.set()
            self._pool.shutdown(wait=True, cancel_futures=True)
            thread.join()


def read_ahead(source: Iterable[T], name: str) -> Iterator[T]:
    """The items of `source`, produced on a thread of their own as fast as it goes (no bound:
    for small items, such as the id lists of a listing), so a query per item runs while the
    consumer works on the items before it."""

    def produce(pipe: Pipeline) -> None:
        for item in source:
            pipe.put_result(item)

    return Pipeline(1, window=0, name=name).run(produce)
