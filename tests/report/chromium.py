"""Headless Chromium for the report tests: the DOM as `--dump-dom` prints it, and a page load
watched over the DevTools protocol (console errors, uncaught exceptions, failed loads, every
network request) with a full-page screenshot.

Debian's `chromium` is used as installed (.ci/run installs it). Without it the browser tests
skip with the reason, except in CI (CI=true), where a missing browser is a failure.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars",
    "--window-size=1400,900",
)
TIMEOUT = 60.0


def chromium_path() -> str:
    """The browser binary, or skip (fail in CI) saying why there is none."""
    path = os.environ.get("LPM_CHROMIUM") or shutil.which("chromium")
    if path:
        return path
    reason = "Debian's chromium is not installed (apt-get install chromium; .ci/run does it)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI requires the browser tests to run")
    pytest.skip(reason)


def dump_dom(url: str) -> str:
    """The DOM after load, serialised by Chromium's `--dump-dom`."""
    with tempfile.TemporaryDirectory(prefix="lpm-chromium-", ignore_cleanup_errors=True) as profile:
        completed = subprocess.run(
            [chromium_path(), *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=True,
        )
    return completed.stdout


@dataclass
class PageLoad:
    """What happened while a page loaded."""

    errors: list[str] = field(default_factory=list)
    """Console errors and assertions, uncaught exceptions and error log entries."""
    requests: list[str] = field(default_factory=list)
    """Every URL the page requested, the page itself included."""
    height: int = 0


class _DevTools:
    """A minimal DevTools protocol client: commands by id, events kept in arrival order."""

    def __init__(self, socket: ClientConnection):
        self.socket = socket
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, **extra: Any) -> Any:
        self.next_id += 1
        ident = self.next_id
        self.socket.send(
            json.dumps({"id": ident, "method": method, "params": params or {}, **extra})
        )
        deadline = time.monotonic() + TIMEOUT
        while True:
            message = json.loads(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str) -> None:
        if any(event.get("method") == method for event in self.events):
            return
        deadline = time.monotonic() + TIMEOUT
        while True:
            message = json.loads(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            self.events.append(message)
            if message.get("method") == method:
                return

    def drain(self, seconds: float) -> None:
        """Collect the events of the next `seconds` (late errors after the load event)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self.events.append(json.loads(self.socket.recv(timeout=left)))
            except TimeoutError:
                return


@contextmanager
def _browser() -> Iterator[str]:
    """A headless Chromium with the DevTools endpoint on loopback; yields its WebSocket URL."""
    binary = chromium_path()
    with tempfile.TemporaryDirectory(prefix="lpm-chromium-", ignore_cleanup_errors=True) as profile:
        process = subprocess.Popen(
            [
                binary,
                *FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + TIMEOUT
            while not port_file.exists() or len(port_file.read_text().splitlines()) < 2:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("chromium did not open its DevTools port")
                time.sleep(0.05)
            port, path = port_file.read_text().splitlines()[:2]
            yield f"ws://127.0.0.1:{port}{path}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def load_page(url: str, screenshot: Path | None = None) -> PageLoad:
    """Open `url`, wait for the load event and a short settle; optionally save a full-page PNG."""
    with _browser() as endpoint, connect(endpoint, max_size=None, open_timeout=TIMEOUT) as ws:
        tools = _DevTools(ws)
        target = tools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Runtime", "Log", "Network", "Page"):
            tools.send(f"{domain}.enable", sessionId=session)
        tools.send("Page.navigate", {"url": url}, sessionId=session)
        tools.wait_for("Page.loadEventFired")
        tools.drain(0.5)
        metrics = tools.send("Page.getLayoutMetrics", sessionId=session)
        height = int(metrics["cssContentSize"]["height"])
        if screenshot is not None:
            tools.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": 1400, "height": height, "deviceScaleFactor": 1, "mobile": False},
                sessionId=session,
            )
            shot = tools.send(
                "Page.captureScreenshot",
                {"format": "png", "captureBeyondViewport": True},
                sessionId=session,
            )
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        return _page_load(tools.events, height)


def _page_load(events: list[dict[str, Any]], height: int) -> PageLoad:
    load = PageLoad(height=height)
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            texts = [str(arg.get("value", arg.get("description", ""))) for arg in params["args"]]
            load.errors.append("console: " + " ".join(texts))
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            description = details.get("exception", {}).get("description") or details.get("text")
            load.errors.append(f"exception: {description}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            load.errors.append(f"log: {entry['text']} {entry.get('url', '')}".strip())
        elif method == "Network.requestWillBeSent":
            load.requests.append(params["request"]["url"])
    return load
