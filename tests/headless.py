"""Debian's Chromium, headless, driven over the DevTools protocol with the standard library.

`--remote-debugging-pipe` speaks the protocol as NUL-terminated JSON on file descriptors
3 (commands in) and 4 (replies and events out): no websocket, no port, no extra package.
Every page's console errors, uncaught exceptions and requests are recorded, so a test can
say "loaded with no errors" and "asked for nothing but local files".
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# Without the networking switches Chromium phones home at start, and this machine's closed
# network refuses it; GPU and sandbox are unavailable to root in a container.
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--mute-audio", "--remote-debugging-pipe",
]
REPLY_TIMEOUT = 60.0  # seconds without a word from Chromium before the test fails (not a timing check)


class ChromiumError(RuntimeError):
    pass


@dataclass
class Page:
    browser: Chromium
    session: str
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, failed loads
    requests: list[str] = field(default_factory=list)  # every URL the page asked for

    def call(self, method: str, **params: object) -> dict:
        return self.browser.call(method, params, session=self.session)

    def open(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self.call("Page.navigate", url=url)
        self.browser.wait_for("Page.loadEventFired", self.session)

    def evaluate(self, expression: str) -> object:
        """The value of a JavaScript expression; a promise is awaited."""
        reply = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in reply:
            raise ChromiumError(f"{expression!r} threw: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def viewport(self, width: int, height: int, *, mobile: bool) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=2 if mobile else 1, mobile=mobile)

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))

    def key(self, key: str, code: int, text: str = "") -> None:
        """Press and release a key, as a person would (focus moves, buttons activate)."""
        self.call("Input.dispatchKeyEvent", type="keyDown", key=key, code=key, windowsVirtualKeyCode=code, text=text)
        self.call("Input.dispatchKeyEvent", type="keyUp", key=key, code=key, windowsVirtualKeyCode=code)

    def type_text(self, text: str) -> None:
        self.call("Input.insertText", text=text)

    def record(self, message: dict) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            self.errors.append(json.dumps(params.get("exceptionDetails", {}))[:500])
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            self.errors.append(params["entry"].get("text", ""))
        elif method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            self.errors.append(f"failed to load: {params.get('errorText')}")


class Chromium:
    """One headless browser; `page()` opens a tab that records its errors and requests."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("chromium")
        if binary is None:
            pytest.fail("Debian's chromium is not installed: run .ci/install-tools")
        self._log = open(workdir / "chromium.log", "wb")
        profile = tempfile.mkdtemp(prefix="profile-", dir=workdir)
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()
        # Chromium's ends go above 3 and 4 first, so that placing one cannot clobber the other.
        child_ends = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (commands_read, replies_write)]
        for fd in (commands_read, replies_write):
            os.close(fd)

        def wire_pipes() -> None:  # in the child: the protocol's fixed descriptors 3 and 4
            os.dup2(child_ends[0], 3)
            os.dup2(child_ends[1], 4)

        self._process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            preexec_fn=wire_pipes, pass_fds=(3, 4),
        )
        for fd in child_ends:
            os.close(fd)
        self._buffer = b""
        self._next_id = 0
        self._pages: dict[str, Page] = {}
        self._pending: list[dict] = []

    def page(self) -> Page:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = self._pages[session] = Page(self, session)
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.call(f"{domain}.enable")
        return page

    def call(self, method: str, params: dict | None = None, *, session: str | None = None) -> dict:
        self._next_id += 1
        message: dict = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._commands, data):]
        while True:
            reply = self._receive()
            if reply.get("id") == message["id"]:
                if "error" in reply:
                    raise ChromiumError(f"{method}: {reply['error']}")
                return reply["result"]

    def wait_for(self, event: str, session: str) -> dict:
        for i, seen in enumerate(self._pending):
            if seen.get("method") == event and seen.get("sessionId") == session:
                return self._pending.pop(i)
        while True:
            message = self._receive()
            if message.get("method") == event and message.get("sessionId") == session:
                self._pending.remove(message)
                return message

    def _receive(self) -> dict:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._replies], [], [], REPLY_TIMEOUT)
            chunk = os.read(self._replies, 1 << 20) if ready else b""
            if not chunk:
                raise ChromiumError(f"Chromium stopped answering; see {self._log.name}")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message = json.loads(raw)
        if "method" in message:
            page = self._pages.get(message.get("sessionId", ""))
            if page is not None:
                page.record(message)
            self._pending.append(message)
            del self._pending[:-200]  # events nobody waits for: keep the recent ones only
        return message

    def close(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._commands)
        os.close(self._replies)
        self._log.close()
