"""Run a fake tracker on 127.0.0.1: `with serve("jira", items=5000) as sb: ...`.

A thread per connection (HTTP/1.1 keep-alive) serves the API, so `--latency` delays calls
without serialising them. Every API call passes auth, the rate limiter and the fault injector
before the tracker API sees it, and is counted in `stats()`. Control endpoints under
`/_sandbox/` (no auth, no faults) expose ground truth, stats, faults and the mutator, so tests
can drive a sandbox started in another process by `lpm sandbox serve`.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import socket
import ssl
import sys
import threading
import traceback
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from sandbox.ado_api import AdoApi
from sandbox.ado_site import ORG, PROJECT
from sandbox.faults import FaultConfig, Faults
from sandbox.jira_api import JiraApi
from sandbox.mutator import Mutator
from sandbox.portfolio import Portfolio
from sandbox.truth import TruthItem, ground_truth
from sandbox.web import Api, Request, Response, json_response

Kind = Literal["jira", "azure_devops"]
Deployment = Literal["cloud", "datacenter"]
CONTROL = "/_sandbox/"


class Sandbox:
    """A running fake tracker: its URL, credentials, ground truth, faults and mutator."""

    def __init__(
        self,
        kind: Kind = "jira",
        *,
        items: int = 1000,
        seed: int = 0,
        port: int = 0,
        fault_rate: float = 0.0,
        rate_limit: float | None = None,
        latency_ms: float = 0.0,
        drop_rate: float = 0.0,
        deployment: Deployment = "cloud",
        anchor: datetime | None = None,
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
    ):
        if kind not in ("jira", "azure_devops"):
            raise ValueError(f"kind must be jira or azure_devops, not {kind!r}")
        if deployment not in ("cloud", "datacenter"):
            raise ValueError(f"deployment must be cloud or datacenter, not {deployment!r}")
        self.kind: Kind = kind
        self.deployment: Deployment = deployment if kind == "jira" else "cloud"
        self.seed = seed
        self.portfolio = Portfolio.generate(kind, items, seed, anchor)
        self.email = "lpm-sync@example.com"
        self.token = secrets.token_urlsafe(24)
        self.pat = secrets.token_urlsafe(32)
        self.faults = Faults(
            FaultConfig(fault_rate, rate_limit, latency_ms, drop_rate), kind=kind, seed=seed
        )
        self.mutator = Mutator(self.portfolio, seed)
        self._stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()
        self._in_flight = 0
        self._env_names: dict[str, dict[str, str]] = {}
        self._httpd = _Server((host, port), _Handler)
        self._httpd.sandbox = self
        self._httpd.tls = tls
        self.host, self.port = host, self._httpd.server_address[1]
        self.server_url = f"{'https' if tls else 'http'}://{host}:{self.port}"
        self.api: Api
        if kind == "jira":
            self.url = self.server_url
            self.api = JiraApi(
                self.portfolio,
                self.url,
                deployment=self.deployment,
                email=self.email,
                token=self.token,
                pat=self.pat,
            )
        else:
            self.url = f"{self.server_url}/{ORG}"
            self.api = AdoApi(self.portfolio, self.server_url, pat=self.pat)
        self.organization = ORG if kind == "azure_devops" else None
        self.project = PROJECT if kind == "azure_devops" else None
        self._thread: threading.Thread | None = None
        self._apply_rank_faults()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Sandbox:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=f"sandbox-{self.kind}", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self.mutator.stop()
        self.api.close()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Sandbox:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ faults & stats
    def set_faults(self, **changes: Any) -> FaultConfig:
        """Change fault_rate, rate_limit, latency_ms or drop_rate while serving."""
        config = self.faults.configure(**changes)
        self._apply_rank_faults()
        return config

    def _apply_rank_faults(self) -> None:
        if isinstance(self.api, JiraApi):
            self.api.rank_fault_rate = self.faults.config.fault_rate

    def count(self, *keys: str) -> None:
        with self._stats_lock:
            for key in keys:
                self._stats[key] += 1

    def flight(self, delta: int) -> None:
        """Track API calls being served at once (latency must not serialise them)."""
        with self._stats_lock:
            self._in_flight += delta
            if self._in_flight > self._stats["max_in_flight"]:
                self._stats["max_in_flight"] = self._in_flight

    def stats(self) -> dict[str, Any]:
        """Request counts: total, by status code, injected faults (429/500/503/drop) and the
        most calls served at once."""
        with self._stats_lock:
            snap = dict(self._stats)
        by_status = {
            k.removeprefix("status:"): v for k, v in snap.items() if k.startswith("status:")
        }
        injected = {
            k.removeprefix("injected:"): v for k, v in snap.items() if k.startswith("injected:")
        }
        return {
            "requests": snap.get("requests", 0),
            "by_status": dict(sorted(by_status.items())),
            "injected": dict(sorted(injected.items())),
            "errors": snap.get("errors", 0),
            "max_in_flight": snap.get("max_in_flight", 0),
        }

    # ------------------------------------------------------------------ truth & config
    def ground_truth(self) -> list[TruthItem]:
        return ground_truth(self.portfolio)

    def _names(self, name: str) -> dict[str, str]:
        slug = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").upper() or "SANDBOX"
        if self.kind == "jira" and self.deployment == "cloud":
            names = {"email": f"{slug}_EMAIL", "token": f"{slug}_API_TOKEN"}
        else:
            names = {"token": f"{slug}_PAT"}
        self._env_names[name] = names
        return names

    def env(self, name: str | None = None) -> dict[str, str]:
        """Values of the env vars `source_config` refers to (every name used so far by default)."""
        names = [name] if name else list(self._env_names) or [_default_name(self.kind)]
        out: dict[str, str] = {}
        for n in names:
            refs = self._names(n)
            if "email" in refs:
                out[refs["email"]] = self.email
                out[refs["token"]] = self.token
            else:
                out[refs["token"]] = self.pat
        return out

    def source_config(self, name: str | None = None) -> dict[str, Any]:
        """A ready-to-use `sources` entry of lpm.yaml for this sandbox (secrets as env refs)."""
        name = name or _default_name(self.kind)
        refs = self._names(name)
        auth = {key: {"env": env} for key, env in refs.items()}
        if self.kind == "jira":
            keys = ", ".join(["PORT", *(a.key for a in self.portfolio.arts)])
            return {
                "name": name,
                "kind": "jira",
                "url": self.url,
                "auth": auth,
                "scope": f"project in ({keys})",
                "levels": {
                    "Strategic Theme": "theme",
                    "Portfolio Epic": "epic",
                    "Capability": "capability",
                    "Feature": "feature",
                    "Story": "story",
                    "Bug": "story",
                    "Enabler": "story",
                },
                "objective_types": ["PI Objective"],
                "fields": {
                    "estimate": "Story point estimate",
                    "business_value": "Business Value",
                    "time_criticality": "Time Criticality",
                    "risk_reduction": "Risk Reduction",
                    "job_size": "Job Size",
                    "planned_value": "Planned Business Value",
                    "actual_value": "Actual Business Value",
                    "team": "Team",
                    "art": "Agile Release Train",
                    "increment": "Program Increment",
                    "category": "Investment Category",
                    "flagged": "Flagged",
                    "start_date": "Start date",
                    "target_date": "Target end",
                    "rank": "Rank",
                    **(
                        {"epic_link": "Epic Link", "parent_link": "Parent Link"}
                        if self.deployment == "datacenter"
                        else {}
                    ),
                },
                "statuses": {"Cancelled": "removed", "Won't Do": "removed", "Retired": "removed"},
                "categories": {"Enabler": "enabler"},
                "writeback": {
                    "wsjf": "WSJF",
                    "health": "Portfolio Health",
                    "progress": "Portfolio Progress",
                    "rank": True,
                },
            }
        return {
            "name": name,
            "kind": "azure_devops",
            "url": self.url,
            "project": PROJECT,
            "auth": auth,
            "scope": "[System.WorkItemType] IN "
            "('Epic', 'Feature', 'User Story', 'Bug', 'PI Objective')",
            "levels": {"Epic": "epic", "Feature": "feature", "User Story": "story", "Bug": "story"},
            "objective_types": ["PI Objective"],
            "fields": {
                "estimate": "Microsoft.VSTS.Scheduling.StoryPoints",
                "business_value": "Microsoft.VSTS.Common.BusinessValue",
                "time_criticality": "Microsoft.VSTS.Common.TimeCriticality",
                "risk_reduction": "Custom.RiskReduction",
                "job_size": "Microsoft.VSTS.Scheduling.Effort",
                "planned_value": "Custom.PlannedBusinessValue",
                "actual_value": "Custom.ActualBusinessValue",
                "team": "System.AreaPath",
                "increment": "System.IterationPath",
                "category": "Custom.InvestmentCategory",
                "portfolio_state": "System.BoardColumn",
                "flagged": "Microsoft.VSTS.CMMI.Blocked",
                "start_date": "Microsoft.VSTS.Scheduling.StartDate",
                "target_date": "Microsoft.VSTS.Scheduling.TargetDate",
                "rank": "Microsoft.VSTS.Common.StackRank",
                "theme": "Custom.StrategicTheme",
            },
            "writeback": {
                "wsjf": "Custom.WSJF",
                "health": "Custom.PortfolioHealth",
                "progress": "Custom.PortfolioProgress",
                "rank": True,
            },
        }

    # ------------------------------------------------------------------ control API
    def control(self, r: Request) -> Response:
        path = r.path.removeprefix(CONTROL).strip("/")
        if path == "truth" and r.method == "GET":
            return json_response(200, [t.to_json() for t in self.ground_truth()])
        if path == "stats" and r.method == "GET":
            return json_response(200, self.stats())
        if path == "faults":
            if r.method == "POST":
                try:
                    self.set_faults(**(r.json() or {}))
                except (ValueError, TypeError) as exc:
                    return json_response(400, {"error": str(exc)})
            return json_response(200, self.faults.config.as_dict())
        if path == "mutate" and r.method == "POST":
            body = r.json() or {}
            done = self.mutator.step(int(body.get("n", 1)))
            return json_response(200, [m.to_json() for m in done])
        if path == "mutations" and r.method == "GET":
            return json_response(200, [m.to_json() for m in self.mutator.log])
        if path == "mutator" and r.method == "POST":
            body = r.json() or {}
            if body.get("running", True):
                self.mutator.start(float(body.get("interval_s", 1.0)))
            else:
                self.mutator.stop()
            return json_response(200, {"running": self.mutator.running})
        if path == "config" and r.method == "GET":
            name = r.arg("name") or _default_name(self.kind)
            return json_response(200, {"source": self.source_config(name), "env": self.env(name)})
        if path == "info" and r.method == "GET":
            p = self.portfolio
            return json_response(
                200,
                {
                    "kind": self.kind,
                    "deployment": self.deployment,
                    "url": self.url,
                    "items": p.n,
                    "seed": self.seed,
                    "increments": [
                        {"name": pi.name, "start": pi.start.isoformat(), "end": pi.end.isoformat()}
                        for pi in p.increments
                    ],
                },
            )
        return json_response(404, {"error": f"no control endpoint {r.method} {r.path}"})

    # ------------------------------------------------------------------ one call
    def dispatch(self, r: Request) -> tuple[Response, bool]:
        """Answer one API call; the flag asks the transport to drop the connection mid-body."""
        self.count("requests")
        if not self.api.authenticate(r):
            response = self.api.unauthorized()
            self.count(f"status:{response.status}")
            return response, False
        injected, limit_headers = self.faults.admit()
        if injected is not None:
            response = (
                self.api.server_error(injected.status)
                if injected.status >= 500
                else json_response(429, _rate_limited_body(self.kind))
            )
            response.headers.update(injected.headers)
            self.count(f"status:{response.status}", f"injected:{injected.status}")
            return response, False
        try:
            response = self.api.handle(r)
        except Exception:  # a sandbox bug: say so loudly, answer like a broken server would
            traceback.print_exc(file=sys.stderr)
            self.count("errors")
            response = self.api.server_error(500)
        response.headers.update(limit_headers)
        self.count(f"status:{response.status}")
        drop = self.faults.drop()
        if drop:
            self.count("injected:drop")
        return response, drop


def _default_name(kind: str) -> str:
    return "jira" if kind == "jira" else "ado"


def _rate_limited_body(kind: str) -> dict[str, Any]:
    if kind == "jira":
        return {"errorMessages": ["Rate limit exceeded."], "errors": {}}
    return {
        "$id": "1",
        "innerException": None,
        "message": "TF400733: The request has been blocked because it exceeded the usage of "
        "resource 'Core'.",
        "typeName": "Microsoft.TeamFoundation.Framework.Server.RequestBlockedException, "
        "Microsoft.TeamFoundation.Framework.Server",
        "typeKey": "RequestBlockedException",
        "errorCode": 0,
        "eventId": 3000,
    }


class _Headers(Mapping[str, str]):
    """Case-insensitive read-only view of the request headers."""

    def __init__(self, message: Message[str, str]):
        self._m = message

    def __getitem__(self, key: str) -> str:
        value = self._m.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        return self._m.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._m.keys())

    def __len__(self) -> int:
        return len(self._m)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    sandbox: Sandbox
    tls: ssl.SSLContext | None

    def get_request(self) -> tuple[socket.socket, Any]:
        """With TLS, each connection is wrapped here and shakes hands on its own thread."""
        connection, address = super().get_request()
        if self.tls is None:
            return connection, address
        return self.tls.wrap_socket(
            connection, server_side=True, do_handshake_on_connect=False
        ), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client refusing the certificate aborts its handshake: no traceback for that."""
        if not isinstance(sys.exc_info()[1], ssl.SSLError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()
        super().setup()
        # Headers and body go out in two writes; without NODELAY, Nagle holds a small body
        # until the client's delayed ACK (40 ms on Linux) and every small call takes 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a sandbox under load must not spend its time printing access logs."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        sandbox = self.server.sandbox
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request.build(self.command, self.path, _Headers(self.headers), body)
        if request.path.startswith(CONTROL):
            self._send(sandbox.control(request))
            return
        sandbox.flight(+1)
        try:
            delay = sandbox.faults.latency()
            if delay:
                threading.Event().wait(delay)
            response, drop = sandbox.dispatch(request)
        finally:
            sandbox.flight(-1)
        self._send(response, drop=drop)
        if response.after is not None and not drop:
            try:
                response.after()
            except Exception:  # a failed read-ahead only costs the next request its cache hit
                traceback.print_exc(file=sys.stderr)

    def _send(self, response: Response, *, drop: bool = False) -> None:
        body = response.body
        self.send_response(response.status)
        if response.content_type and body:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if drop:
            self.send_header("Connection", "close")
        self.end_headers()
        if drop:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if body and self.command != "HEAD":
            self.wfile.write(body)
            self.wfile.flush()


@contextmanager
def serve(
    kind: Kind = "jira",
    *,
    items: int = 1000,
    seed: int = 0,
    port: int = 0,
    fault_rate: float = 0.0,
    rate_limit: float | None = None,
    latency_ms: float = 0.0,
    drop_rate: float = 0.0,
    deployment: Deployment = "cloud",
    anchor: datetime | None = None,
    tls: ssl.SSLContext | None = None,
) -> Iterator[Sandbox]:
    """Run a sandbox in a background thread on 127.0.0.1 (port 0: a free port)."""
    sandbox = Sandbox(
        kind,
        items=items,
        seed=seed,
        port=port,
        fault_rate=fault_rate,
        rate_limit=rate_limit,
        latency_ms=latency_ms,
        drop_rate=drop_rate,
        deployment=deployment,
        anchor=anchor,
        tls=tls,
    )
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.close()
