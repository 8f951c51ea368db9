"""An HTTPS server on 127.0.0.1 with a self-signed certificate made on the spot (sandbox/tls.py).

It answers every request 401 in Jira's shape and counts the requests that got through the TLS
handshake, so a test can tell "refused at the handshake" from "reached the server".
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sandbox.tls import self_signed, server_context


@dataclass
class TlsServer:
    url: str
    cert: Path
    authorizations: list[str] = field(default_factory=list)
    """The Authorization header of every request that completed the handshake."""


@contextmanager
def https_server(directory: Path) -> Iterator[TlsServer]:
    cert, key = self_signed(directory)
    context = server_context(cert, key)
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            body = b'{"errorMessages":["Client must be authenticated to access this resource."]}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = _answer

        def log_message(self, format: str, *args: Any) -> None:
            return

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def get_request(self) -> Any:
            sock, address = super().get_request()
            return context.wrap_socket(sock, server_side=True), address

        def handle_error(self, request: Any, client_address: Any) -> None:
            return  # a client refusing the certificate aborts the handshake: expected

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield TlsServer(f"https://127.0.0.1:{server.server_address[1]}", cert, seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
