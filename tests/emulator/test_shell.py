"""The phone's shell is Android's userland in a sandbox: mksh and toybox, getprop, the
/sdcard symlink chain, uid shell, no network; PTY sessions, stdin, and a phone without
a shell that says so the way adbd does."""

from __future__ import annotations

import time
from pathlib import Path

from adb_shell.adb_device import AdbDeviceTcp

from adbvoice.emulator import EmulatedPhone
from adbvoice.phone import wire
from tests.emulator.helpers import (
    Adb,
    RawHost,
    RawHostFactory,
    bwrap_children,
    parse_sync_replies,
    sync_request,
)

W = wire


def packet(ident: int, data: bytes) -> bytes:
    return W.SHELL_HEADER.pack(ident, len(data)) + data


def split_packets(data: bytes) -> dict[int, bytes]:
    """Concatenated payloads per shell-protocol id."""
    out: dict[int, bytes] = {}
    i = 0
    while i < len(data):
        ident, length = W.SHELL_HEADER.unpack_from(data, i)
        i += W.SHELL_HEADER.size
        out[ident] = out.get(ident, b"") + data[i : i + length]
        i += length
    return out


def test_getprop_speaks_like_androids(adb: Adb, phone: EmulatedPhone) -> None:
    adb.connect(phone)
    s = ("-s", phone.address)
    listing = adb.run(*s, "shell", "getprop").stdout.decode().splitlines()
    assert "[ro.product.model]: [Pixel 7]" in listing and "[ro.build.version.sdk]: [34]" in listing
    assert listing == sorted(listing)
    assert adb.run(*s, "shell", "getprop ro.serialno").stdout == b"EMU0001\n"
    assert adb.run(*s, "shell", "getprop no.such.prop fallback").stdout == b"fallback\n"
    assert adb.run(*s, "shell", "getprop no.such.prop").stdout == b"\n"
    assert adb.run(*s, "get-serialno").stdout == phone.address.encode() + b"\n"  # adb's own idea
    adb.disconnect(phone)


def test_the_sandbox_looks_like_a_phone(phone: EmulatedPhone) -> None:
    d = AdbDeviceTcp("127.0.0.1", phone.port, default_transport_timeout_s=5)
    d.connect()
    assert d.shell("readlink /sdcard; readlink /storage/self/primary") == "/storage/self/primary\n/storage/emulated/0\n"
    assert d.shell("id") == "uid=2000(shell) gid=2000(shell) groups=2000(shell)\n"
    assert d.shell("readlink /system/bin/sh; readlink /system/bin/ls") == "/usr/bin/mksh\n/usr/bin/toybox\n"
    assert d.shell("echo $TERM") == "dumb\n"  # adbd's default for shell:
    assert d.shell("cat <<EOF\nhere-doc needs TMPDIR\nEOF") == "here-doc needs TMPDIR\n"
    # No network but loopback.
    assert d.shell("cut -d: -f1 /proc/net/dev | tail -n +3 | sed 's/ //g'") == "lo\n"
    # Writes land in PHONE_DIR; the host's files are not there.
    assert d.shell("echo made on the phone > /sdcard/Download/new.txt; ls /home /root 2>&1 | head -1").startswith("ls:")
    assert (phone.root / "Download" / "new.txt").read_text() == "made on the phone\n"
    d.close()


def test_a_pty_session_gets_window_size_and_an_exit_code(raw_host: RawHostFactory, phone: EmulatedPhone) -> None:
    host = raw_host(phone)
    host.connect()
    local, remote = host.open(b"shell,v2,TERM=xterm-256color,pty:")
    # The shell's prompt may come at any time: one message at a time, answered in turn.
    output = bytearray()
    for request in (packet(W.SHELL_WINDOW_SIZE_CHANGE, b"30x100,0x0\0"),
                    packet(W.SHELL_STDIN, b"echo $LINES:$COLUMNS:$TERM; exit 4\n")):
        host.send(W.A_WRTE, local, remote, request)
        while (msg := host.recv()).name != "OKAY":
            output += msg.data
            host.send(W.A_OKAY, local, remote)
    out = split_packets(bytes(output) + host.read_until_close(local, remote))
    assert b"30:100:xterm-256color\r\n" in out[W.SHELL_STDOUT]  # a cooked PTY: \r\n
    assert b"controlling tty" not in out[W.SHELL_STDOUT]  # the PTY is its terminal
    assert out[W.SHELL_EXIT] == b"\x04"


def test_stdin_and_its_close_reach_the_command(raw_host: RawHostFactory, phone: EmulatedPhone) -> None:
    host = raw_host(phone)
    host.connect()
    local, remote = host.open(b"shell,v2,raw:wc -c; echo done >&2")
    host.send(W.A_WRTE, local, remote, packet(W.SHELL_STDIN, b"x" * 100_000))
    assert host.recv().name == "OKAY"
    host.send(W.A_WRTE, local, remote, packet(W.SHELL_CLOSE_STDIN, b""))
    assert host.recv().name == "OKAY"
    out = split_packets(host.read_until_close(local, remote))
    assert out == {W.SHELL_STDOUT: b"100000\n", W.SHELL_STDERR: b"done\n", W.SHELL_EXIT: b"\0"}


def test_closing_the_stream_hangs_up_the_shell_as_adbd_does(raw_host: RawHostFactory, phone: EmulatedPhone) -> None:
    """adbd sends the shell SIGHUP when the host closes (shell_service.cpp); the shell
    dies of it, and what it would have run next never runs."""
    d = AdbDeviceTcp("127.0.0.1", phone.port, default_transport_timeout_s=5)
    d.connect()
    host = raw_host(phone)
    host.connect()
    local, remote = host.open(b"shell,v2,raw:echo started $$; sleep 30; echo > /sdcard/still-running")
    started = host.recv()
    assert started.name == "WRTE" and b"started" in started.data
    pid = split_packets(started.data)[W.SHELL_STDOUT].split()[1].decode()
    assert "sh -c echo started" in d.shell(f"ps -o ARGS -p {pid}")  # seen from another shell
    assert len(bwrap_children()) == 1  # the phone's namespaces, one for all its commands
    host.send(W.A_OKAY, local, remote)
    host.send(W.A_CLSE, local, remote)
    assert host.recv().name == "CLSE"
    deadline = time.monotonic() + 5
    while d.shell(f"kill -0 {pid} 2>/dev/null && echo alive") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert d.shell(f"kill -0 {pid} 2>/dev/null || echo gone") == "gone\n"
    assert not (phone.root / "still-running").exists()
    d.close()


def test_a_phone_without_a_shell_says_so_like_adbd_and_still_syncs(adb: Adb, phone_dir: Path) -> None:
    with EmulatedPhone(phone_dir, shell=False) as phone:
        assert not phone.shell_available
        adb.connect(phone)
        s = ("-s", phone.address)
        result = adb.run(*s, "shell", "echo hi")
        assert result.returncode == 126
        assert result.stderr == b"error: exec '/system/bin/sh' failed: No such file or directory\n"
        d = AdbDeviceTcp("127.0.0.1", phone.port, default_transport_timeout_s=5)
        d.connect()
        assert d.shell("echo hi") == "error: exec '/system/bin/sh' failed: No such file or directory\n"
        host = RawHost(phone.port)
        host.connect()
        local, remote = host.open(b"sync:")
        host.send(W.A_WRTE, local, remote, sync_request(W.ID_RECV_V1, b"/sdcard/Download/with space.txt"))
        assert host.recv().name == "OKAY"
        size = W.SYNC_REQUEST.size * 2 + len("a file name with a space\n")
        assert parse_sync_replies(host.read_stream(local, remote, size), [W.ID_RECV_V1]) == [b"a file name with a space\n"]
        host.close()
        adb.disconnect(phone)


def test_shell_available_reflects_the_tools(phone: EmulatedPhone) -> None:
    assert phone.shell_available
    started = time.monotonic()
    d = AdbDeviceTcp("127.0.0.1", phone.port, default_transport_timeout_s=5)
    d.connect()
    for _ in range(5):
        assert d.shell("true") == ""
    assert time.monotonic() - started < 5  # a sandbox per command stays cheap
