"""The clients under test, each run as a child process and timed with its peak memory.

adbvoice runs as a user runs it (`python -m adbvoice backup ARCHIVE --tcp ... --quiet`).
Google's adb, as users have it (Debian's 29.0.6 and platform-tools 36.0.0, which
.ci/install-adb36 puts beside the interpreter), gets a server of its own for each version
(its own port and HOME, started in the foreground so we know its pid), connected before
any timing starts, as a user's would be; since the server does the copying, its peak RSS
(VmHWM, reset before each pull or push through /proc/PID/clear_refs) and CPU time are
counted with the client's.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

LAUNCHER = Path(__file__).with_name("launch.py")
ADBVOICE_OK = (0, 3)  # 3: completed with warnings (the tree holds broken notes on purpose)
GOOGLE_ADBS = {
    "adb 29": "adb",
    "adb 36": os.environ.get("ADBVOICE_TEST_ADB36") or str(Path(sys.executable).with_name("adb36")),
}


class BenchError(Exception):
    """A client failed: the benchmark cannot go on with a wrong number."""


@dataclass(frozen=True)
class ChildRun:
    seconds: float
    peak_rss_kb: int
    exit_code: int
    output: str
    cpu_seconds: float  # user + system


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_child(argv: Sequence[str], env: dict[str, str], timeout: float = 3600) -> ChildRun:
    """Run to completion through bench/launch.py: wall time and the child's own peak RSS."""
    with tempfile.TemporaryDirectory() as scratch:
        result = Path(scratch) / "result"
        with open(Path(scratch) / "output", "w+b") as out:
            completed = subprocess.run(
                [sys.executable, "-I", "-S", str(LAUNCHER), str(result), *argv], env=env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False,
            )
            out.seek(0)
            text = out.read().decode("utf-8", "replace")
        if not result.exists():
            raise BenchError(f"could not run {argv[0]} (exit {completed.returncode}): {text.strip()[-2000:]}")
        seconds, peak_kb, code, cpu = result.read_text().split()
    return ChildRun(float(seconds), int(peak_kb), int(code), text, float(cpu))


class Adbvoice:
    """`adbvoice backup` against one phone address, with its own HOME and adb key."""

    def __init__(self, home: Path) -> None:
        from adbvoice.phone.keys import load_signer

        self.key = home / ".android" / "adbkey"
        load_signer(self.key)  # RSA key generation is not what we measure
        self.env = {**os.environ, "HOME": str(home), "ANDROID_ADB_SERVER_PORT": str(free_port())}

    def backup(self, archive: Path, address: str, server_port: int | None = None) -> ChildRun:
        """Straight to the phone over TCP, or through the adb server on `server_port`."""
        argv = [sys.executable, "-m", "adbvoice", "backup", str(archive), "--quiet", "--adb-key", str(self.key)]
        env = self.env
        if server_port is None:
            argv += ["--tcp", address]
        else:
            argv += ["--serial", address]
            env = {**env, "ANDROID_ADB_SERVER_PORT": str(server_port)}
        run = run_child(argv, env)
        if run.exit_code not in ADBVOICE_OK:
            raise BenchError(f"adbvoice backup exited {run.exit_code}: {run.output.strip()[-2000:]}")
        return run

    def startup(self) -> ChildRun:
        """The interpreter and imports alone: what every run pays before touching the phone."""
        return run_child([sys.executable, "-m", "adbvoice", "--help"], self.env)


class AdbServer:
    """One version of Google's adb with an isolated server, killed by close()."""

    def __init__(self, home: Path, version: str) -> None:
        self.version = version
        self.binary = GOOGLE_ADBS[version]
        if shutil.which(self.binary) is None:
            raise BenchError(f"{version} is not installed at {self.binary} (run .ci/install-tools and .ci/install-adb36)")
        home.mkdir(parents=True, exist_ok=True)
        self.home = home  # its adb key is home/.android/adbkey, made when the server starts
        self.port = free_port()
        self.env = {**os.environ, "HOME": str(home), "ANDROID_ADB_SERVER_PORT": str(self.port), "ADB_VENDOR_KEYS": ""}
        self.env.pop("ANDROID_SDK_HOME", None)
        self._log = open(home / "adb-server.log", "wb")  # noqa: SIM115 - lives as long as the server
        self._server = subprocess.Popen(
            [self.binary, "-P", str(self.port), "nodaemon", "server"], env=self.env,
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while self._adb("devices").returncode != 0:
            if time.monotonic() > deadline or self._server.poll() is not None:
                self.close()
                raise BenchError("the adb server did not start")
            time.sleep(0.1)

    def _adb(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.binary, *args], env=self.env, capture_output=True, text=True, timeout=120,
                              check=False)

    def describe(self) -> str:
        """`adb version`'s first two lines, as one."""
        return ", ".join(self._adb("version").stdout.splitlines()[:2])

    def connect(self, address: str) -> None:
        """`adb connect`, then wait until the server calls the phone a "device"."""
        result = self._adb("connect", address)
        if "connected to" not in result.stdout:
            raise BenchError(f"adb connect {address}: {result.stdout.strip()} {result.stderr.strip()}")
        deadline = time.monotonic() + 20
        while self._adb("-s", address, "get-state").stdout.strip() != "device":
            if time.monotonic() > deadline:
                raise BenchError(f"adb never saw {address} as a device")
            time.sleep(0.05)

    def disconnect(self, address: str) -> None:
        self._adb("disconnect", address)

    def pull(self, address: str, remote: Sequence[str], into: Path) -> ChildRun:
        """`adb pull REMOTE... INTO`; peak RSS is the server's plus the client's."""
        into.mkdir(parents=True)
        return self._timed("pull", [*remote, str(into)], address)

    def push(self, address: str, local: Sequence[Path], remote: str) -> ChildRun:
        """`adb push LOCAL... REMOTE` (REMOTE a folder that exists); counted as pull is."""
        return self._timed("push", [*map(str, local), remote], address)

    def _timed(self, verb: str, args: list[str], address: str) -> ChildRun:
        clear_refs = Path(f"/proc/{self._server.pid}/clear_refs")
        clear_refs.write_text("5")  # resets VmHWM (proc(5))
        cpu_before = self._server_cpu()
        run = run_child([self.binary, "-s", address, verb, *args], self.env)
        if run.exit_code != 0:
            raise BenchError(f"{self.version} {verb} exited {run.exit_code}: {run.output.strip()[-2000:]}")
        return ChildRun(run.seconds, run.peak_rss_kb + self._server_peak_kb(), run.exit_code, run.output,
                        run.cpu_seconds + self._server_cpu() - cpu_before)

    def _server_peak_kb(self) -> int:
        for line in Path(f"/proc/{self._server.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0

    def _server_cpu(self) -> float:
        """User + system seconds the server has used so far (proc(5): stat fields 14, 15)."""
        fields = Path(f"/proc/{self._server.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self._adb("kill-server")
        try:
            self._server.wait(10)
        except subprocess.TimeoutExpired:
            self._server.kill()
            self._server.wait()
        self._log.close()
