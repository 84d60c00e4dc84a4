"""The phone as a process and an object: unplugged and plugged back, stopped and started
on the same port, leaving no thread or process behind, and its command line."""

from __future__ import annotations

import gc
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from adb_shell.adb_device import AdbDeviceTcp
from adb_shell.exceptions import AdbTimeoutError

from adbvoice.emulator import EmulatedPhone
from tests.emulator.helpers import RawHost, bwrap_children


def device(port: int) -> AdbDeviceTcp:
    d = AdbDeviceTcp("127.0.0.1", port, default_transport_timeout_s=5)
    d.connect(read_timeout_s=2)
    return d


def test_unplugging_drops_every_connection_and_the_phone_still_answers(phone: EmulatedPhone) -> None:
    first, second = device(phone.port), device(phone.port)
    assert phone.connections_open == 2
    phone.disconnect_all()
    with pytest.raises((AdbTimeoutError, OSError)):
        first.shell("echo gone", read_timeout_s=0.5)
    with pytest.raises((AdbTimeoutError, OSError)):
        second.list("/sdcard", read_timeout_s=0.5)
    again = device(phone.port)
    assert again.shell("echo back") == "back\n"
    assert phone.connections_accepted == 3


def test_stop_and_start_rebind_the_same_port(phone: EmulatedPhone) -> None:
    port = phone.port
    d = device(port)
    assert d.shell("echo before") == "before\n"
    phone.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
    phone.start()
    assert phone.port == port
    assert device(port).shell("echo after") == "after\n"


def test_stop_leaves_no_thread_process_or_temp_dir_behind(
    phone_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # where the phone builds /system
    baseline = threading.active_count()
    phone = EmulatedPhone(phone_dir).start()
    kinds = sorted("state" if p.name.startswith("adbvoice-phone-state-") else "system" for p in temp.iterdir())
    assert kinds == ["state", "system"]  # its /data/local/tmp, and its /system
    d = device(phone.port)
    d.shell("echo warm")
    # A command that would run for a minute, on a stream the host never closes.
    host = RawHost(phone.port)
    host.connect()
    host.open(b"shell,v2,raw:sleep 60; echo never")
    deadline = time.monotonic() + 5
    while not bwrap_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bwrap_children()
    started = time.monotonic()
    phone.stop()
    assert time.monotonic() - started < 3
    host.close()
    deadline = time.monotonic() + 5
    while (bwrap_children() or threading.active_count() > baseline) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bwrap_children() == []
    assert threading.active_count() <= baseline
    # What a phone keeps across a restart (its /data/local/tmp) stays until the phone is gone.
    assert [p.name[:21] for p in temp.iterdir()] == ["adbvoice-phone-state-"]
    del phone
    gc.collect()
    assert list(temp.iterdir()) == []


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adbvoice.emulator", *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def test_the_command_line_serves_until_terminated(phone_dir: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "adbvoice.emulator", str(phone_dir), "--port", "0", "--model", "Pixel 8"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on 127.0.0.1:")
        port = int(line.rsplit(":", 1)[1])
        d = device(port)
        assert d.shell("getprop ro.product.model") == "Pixel 8\n"
        d.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert proc.stderr is not None and proc.stderr.read() == ""
    finally:
        proc.kill()
        proc.wait()


def test_the_command_line_rejects_bad_input_in_one_line(phone_dir: Path, tmp_path: Path) -> None:
    a_file = phone_dir / "Download" / "with space.txt"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = str(busy.getsockname()[1])
        bad_key = tmp_path / "bad.pub"
        bad_key.write_text("not a key\n")
        cases = [
            ((str(tmp_path / "nowhere"), "--port", "0"), 1, "does not exist"),
            ((str(a_file), "--port", "0"), 1, "is not a folder"),
            ((str(phone_dir), "--port", taken), 1, "Address already in use"),
            ((str(phone_dir), "--port", "0", "--auth", "keys", "--auth-key", str(bad_key)), 1, "bad --auth-key"),
            ((str(phone_dir), "--port", "0", "--auth-key", str(tmp_path / "none.pub")), 1, "cannot read key file"),
            ((str(phone_dir), "--port", "0", "--frobnicate"), 2, "unrecognized arguments"),
            ((str(phone_dir), "--port", "http"), 2, "not a port number"),
            ((str(phone_dir),), 2, "--port"),
            ((str(phone_dir), "--port", "0", "--auth", "sometimes"), 2, "invalid choice"),
        ]
        for args, code, message in cases:
            result = run_cli(*args)
            assert result.returncode == code, (args, result)
            assert result.stdout == ""
            lines = result.stderr.splitlines()
            assert len(lines) == 1 and message in lines[0], (args, result.stderr)
            assert "Traceback" not in result.stderr
    help_text = run_cli("--help").stdout
    assert "exit codes" in help_text and "--bandwidth-mbps" in help_text
