"""A desktop session for the notification tests, from Debian's own parts: a session bus
(`dbus-daemon --session`, with a config of its own so nothing is started on demand), an
X server (Xvfb) and a real freedesktop notification server on it (dunst).

What was shown is read from dunst itself: a dunst rule runs a script for every
notification it displays, which appends the app name, summary, body and urgency dunst
received to a file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

WAIT_S = 30.0

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""

DUNSTRC = """[global]
    font = DejaVu Sans 8
[record_everything]
    summary = "*"
    script = {script}
"""

RECORDER = """#!/bin/sh
# dunst runs this for each notification it shows: appname summary body icon urgency
printf '%s\\037%s\\037%s\\037%s\\n' "$1" "$2" "$3" "$5" >> {shown}
"""


@dataclass(frozen=True)
class Shown:
    app: str
    summary: str
    body: str
    urgency: str  # dunst's word: LOW, NORMAL, CRITICAL


def _need(program: str) -> str:
    found = shutil.which(program)
    assert found, f"{program} is needed for the notification tests: run .ci/install-tools"
    return found


class DesktopSession:
    """Its bus socket is `runtime/bus`, where a systemd user session keeps it."""

    def __init__(self) -> None:
        # A socket path must fit in 108 bytes: a short folder of its own, not tmp_path.
        self.runtime = Path(tempfile.mkdtemp(prefix="adbvoice-run-"))
        self.socket = self.runtime / "bus"
        self.address = f"unix:path={self.socket}"
        self._shown_file = self.runtime / "shown"
        self._processes: list[subprocess.Popen] = []

    def start_bus(self) -> None:
        config = self.runtime / "bus.conf"
        config.write_text(BUS_CONFIG.format(socket=self.socket))
        self._spawn([_need("dbus-daemon"), f"--config-file={config}", "--nofork"])
        self._wait(self.socket.is_socket, "the session bus")

    def start_notification_server(self) -> None:
        xvfb = subprocess.Popen([_need("Xvfb"), "-displayfd", "1", "-nolisten", "tcp"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        self._processes.append(xvfb)
        display = xvfb.stdout.readline().strip()
        assert display, "Xvfb did not start"
        script = self.runtime / "record"
        script.write_text(RECORDER.format(shown=self._shown_file))
        script.chmod(0o700)
        rc = self.runtime / "dunstrc"
        rc.write_text(DUNSTRC.format(script=script))
        env = {**os.environ, "DISPLAY": f":{display}", "DBUS_SESSION_BUS_ADDRESS": self.address}
        self._spawn([_need("dunst"), "-config", str(rc)], env=env)
        self._wait(self._server_on_bus, "dunst on the session bus")

    def _server_on_bus(self) -> bool:
        asked = subprocess.run(
            [_need("dbus-send"), f"--bus={self.address}", "--print-reply", "--dest=org.freedesktop.DBus", "/",
             "org.freedesktop.DBus.NameHasOwner", "string:org.freedesktop.Notifications"],
            capture_output=True, text=True, timeout=10,
        )
        return "boolean true" in asked.stdout

    def shown(self) -> list[Shown]:
        if not self._shown_file.exists():
            return []
        return [Shown(*line.split("\x1f")) for line in self._shown_file.read_text().splitlines()]

    def wait_shown(self, count: int) -> list[Shown]:
        """Once `count` were shown, and a moment more in which no other one came."""
        self._wait(lambda: len(self.shown()) >= count, f"{count} notifications, saw {self.shown()}")
        time.sleep(0.3)
        return self.shown()

    def _spawn(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self._processes.append(subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL))

    @staticmethod
    def _wait(condition, what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not condition():
            assert time.monotonic() < deadline, f"gave up waiting for {what}"
            time.sleep(0.02)

    def stop(self) -> None:
        for process in reversed(self._processes):
            process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.runtime, ignore_errors=True)
