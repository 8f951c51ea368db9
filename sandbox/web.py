"""HTTP plumbing shared by the fake trackers: requests, responses and errors as plain data.

The APIs are pure functions from `Request` to `Response`, which keeps them testable without a
socket and lets `sandbox.server` wrap every call with auth, faults, latency and statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson

JSON = "application/json;charset=UTF-8"


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes = b""

    @classmethod
    def build(
        cls, method: str, target: str, headers: Mapping[str, str], body: bytes = b""
    ) -> Request:
        path, _, qs = target.partition("?")
        return cls(
            method.upper(), unquote(path), parse_qs(qs, keep_blank_values=True), headers, body
        )

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def json(self) -> Any:
        if not self.body.strip():
            return None
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise BadJson(str(exc)) from None


class BadJson(ValueError):
    pass


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = JSON
    after: Callable[[], object] | None = None
    """Work to do once the response is sent (read-ahead of the page the client asks next)."""


def json_response(status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, orjson.dumps(obj), headers or {})


def empty(status: int = 204) -> Response:
    return Response(status, b"", {}, None)


class HttpError(Exception):
    """Raised inside a handler to answer with `status` and a tracker-shaped error body."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}

    def response(self) -> Response:
        return json_response(self.status, self.body, self.headers)


class Api:
    """A tracker API: `handle` answers one request; subclasses register routes."""

    kind: str = ""

    def handle(self, request: Request) -> Response:  # pragma: no cover - interface
        raise NotImplementedError

    def authenticate(self, request: Request) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def unauthorized(self) -> Response:  # pragma: no cover - interface
        raise NotImplementedError

    def server_error(self, status: int) -> Response:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        """Release background helpers (read-ahead threads)."""
