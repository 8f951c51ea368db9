"""Faults on demand: 5xx with Retry-After, 429 with rate-limit headers, latency, cut bodies."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
import requests

from sandbox.server import serve


def test_fault_rate_answers_500_and_503_with_retry_after() -> None:
    with serve("jira", items=200, seed=1, fault_rate=1.0) as sb:
        http = requests.Session()
        http.auth = (sb.email, sb.token)
        seen: Counter[int] = Counter()
        retry_after = 0
        for _ in range(40):
            r = http.get(f"{sb.url}/rest/api/3/myself")
            seen[r.status_code] += 1
            retry_after += "Retry-After" in r.headers
            assert r.json()["errorMessages"]
        assert set(seen) == {500, 503} and retry_after > 0
        stats = sb.stats()
        assert stats["injected"]["500"] + stats["injected"]["503"] == 40
        sb.set_faults(fault_rate=0.0)
        assert http.get(f"{sb.url}/rest/api/3/myself").status_code == 200


@pytest.mark.parametrize("kind", ["jira", "azure_devops"])
def test_rate_limit_answers_429_with_vendor_headers(kind: str) -> None:
    with serve(kind, items=200, seed=2, rate_limit=5) as sb:  # type: ignore[arg-type]
        http = requests.Session()
        if kind == "jira":
            http.auth = (sb.email, sb.token)
            url = f"{sb.url}/rest/api/3/myself"
        else:
            http.auth = ("", sb.pat)
            url = f"{sb.url}/Fabrikam/_apis/wit/workitems/1?api-version=7.1"
        responses = [http.get(url) for _ in range(12)]
        limited = [r for r in responses if r.status_code == 429]
        assert limited, "a burst over the limit is throttled"
        first = limited[0]
        assert int(first.headers["Retry-After"]) >= 1
        assert first.headers["X-RateLimit-Limit"] == "5"
        assert first.headers["X-RateLimit-Remaining"] == "0"
        if kind == "jira":
            assert first.headers["RateLimit-Reason"] == "jira-burst-based"
            assert any(r.headers.get("X-RateLimit-NearLimit") == "true" for r in responses if r.ok)
        else:
            assert first.headers["X-RateLimit-Resource"] == "Core"
            assert float(first.headers["X-RateLimit-Delay"]) > 0
        assert sb.stats()["injected"]["429"] == len(limited)


def test_latency_does_not_serialise_calls() -> None:
    with serve("jira", items=200, seed=3, latency_ms=300) as sb:
        statuses: list[int] = []

        def call() -> None:
            r = requests.get(f"{sb.url}/rest/api/3/myself", auth=(sb.email, sb.token), timeout=30)
            statuses.append(r.status_code)

        threads = [threading.Thread(target=call) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses == [200] * 4
        assert sb.stats()["max_in_flight"] >= 2, "calls overlap while they wait"


def test_drop_cuts_the_body_mid_way() -> None:
    with serve("jira", items=200, seed=4, drop_rate=1.0) as sb:
        with pytest.raises(requests.exceptions.RequestException):
            requests.get(
                f"{sb.url}/rest/api/3/search/jql",
                params={"jql": "project = PORT", "fields": "*all"},
                auth=(sb.email, sb.token),
                timeout=30,
            ).json()
        assert sb.stats()["injected"]["drop"] == 1
        sb.set_faults(drop_rate=0.0)
        ok = requests.get(f"{sb.url}/rest/api/3/myself", auth=(sb.email, sb.token), timeout=30)
        assert ok.status_code == 200


def test_rank_partial_failures_under_faults() -> None:
    with serve("jira", items=300, seed=5) as sb:
        epics = [t for t in sb.ground_truth() if t.level == "epic" and not t.deleted]
        sb.set_faults(fault_rate=0.0)
        sb.api.rank_fault_rate = 1.0  # type: ignore[attr-defined]
        r = requests.put(
            f"{sb.url}/rest/agile/1.0/issue/rank",
            json={"issues": [epics[1].key], "rankBeforeIssue": epics[0].key},
            auth=(sb.email, sb.token),
            timeout=30,
        )
        assert r.status_code == 207
        assert r.json()["entries"][0]["status"] == 503


def test_control_endpoints_drive_a_sandbox_over_http() -> None:
    with serve("azure_devops", items=300, seed=6) as sb:
        base = f"{sb.server_url}/_sandbox"
        truth = requests.get(f"{base}/truth", timeout=30).json()
        assert len(truth) == 300 and {"external_id", "status_category", "deleted"} <= set(truth[0])
        done = requests.post(f"{base}/mutate", json={"n": 5}, timeout=30).json()
        assert len(done) == 5 and len(requests.get(f"{base}/mutations", timeout=30).json()) == 5
        faults = requests.post(f"{base}/faults", json={"latency_ms": 5}, timeout=30).json()
        assert faults["latency_ms"] == 5
        bad = requests.post(f"{base}/faults", json={"nonsense": 1}, timeout=30)
        assert bad.status_code == 400
        config = requests.get(f"{base}/config", params={"name": "ado-sb"}, timeout=30).json()
        assert config["source"]["auth"] == {"token": {"env": "ADO_SB_PAT"}}
        assert config["env"] == {"ADO_SB_PAT": sb.pat}
        stats = requests.get(f"{base}/stats", timeout=30).json()
        assert stats["requests"] == 0, "control calls are not API calls"
        running = requests.post(f"{base}/mutator", json={"interval_s": 0.01}, timeout=30).json()
        assert running == {"running": True}
        stopped = requests.post(f"{base}/mutator", json={"running": False}, timeout=30).json()
        assert stopped == {"running": False}


def test_fault_rates_are_spread_evenly_over_calls() -> None:
    with serve("jira", items=200, seed=7, fault_rate=0.1) as sb:
        http = requests.Session()
        http.auth = (sb.email, sb.token)
        codes = [http.get(f"{sb.url}/rest/api/3/myself").status_code for _ in range(60)]
        failures = sum(code >= 500 for code in codes)
        assert 3 <= failures <= 9, "about 60 x 10% of the calls fail, never none"
        assert codes[:4].count(200) == 4, "the first fault comes after about 1/rate calls"
