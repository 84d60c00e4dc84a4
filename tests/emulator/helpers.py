"""What the emulated phone's tests share: Google's adb (Debian's 29 and platform-tools 36)
with a private server, a minimal raw ADB host for what adb and adb-shell never do, and
sync/shell byte parsers."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from adbvoice.emulator import EmulatedPhone
from adbvoice.phone import wire

TOOLS = ("adb", "bwrap", "mksh", "toybox")
FIVE_MB = 5 * 1000 * 1000
# Google's adb as users have it: Debian's 29.0.6, and today's platform-tools 36.0.0, which
# .ci/install-adb36 puts beside this interpreter (a test tool, never a dependency).
GOOGLE_ADBS = {
    "adb29": "adb",
    "adb36": os.environ.get("ADBVOICE_TEST_ADB36") or str(Path(sys.executable).with_name("adb36")),
}


def require_tools() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run .ci/install-tools", pytrace=False)
    if not os.access(GOOGLE_ADBS["adb36"], os.X_OK):
        pytest.fail(f"missing Google's adb 36 at {GOOGLE_ADBS['adb36']}: run .ci/install-adb36", pytrace=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Adb:
    """Google's adb with its own server (own port, own HOME and so its own key)."""

    def __init__(self, home: Path, version: str = "adb29") -> None:
        self.version = version
        self.binary = GOOGLE_ADBS[version]
        self.home = home
        self.env = {
            **os.environ,
            "HOME": str(home),
            "ANDROID_ADB_SERVER_PORT": str(free_port()),
            "ADB_VENDOR_KEYS": "",
            "TERM": "xterm",  # adb passes it on: shell,v2,TERM=xterm,raw:CMD
        }
        self.env.pop("ANDROID_SDK_HOME", None)

    def run(self, *args: str, timeout: float = 60, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [self.binary, *args], env=self.env, input=stdin, capture_output=True, timeout=timeout,
            check=False, stdin=None if stdin is not None else subprocess.DEVNULL,
        )

    @property
    def public_key(self) -> str:
        return (self.home / ".android" / "adbkey.pub").read_text()

    def state(self, serial: str) -> str | None:
        """The state `adb devices` shows for serial ("device", "unauthorized", ...)."""
        for line in self.run("devices").stdout.decode().splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 2 and fields[0] == serial:
                return fields[1]
        return None

    def wait_state(self, serial: str, wanted: str, timeout: float = 15) -> str | None:
        deadline = time.monotonic() + timeout
        state = self.state(serial)
        while state != wanted and time.monotonic() < deadline:
            time.sleep(0.1)
            state = self.state(serial)
        return state

    def connect(self, phone: EmulatedPhone, wanted: str = "device") -> None:
        result = self.run("connect", phone.address)
        # What adb says of a phone that has not allowed its key yet.
        expected = b"failed to authenticate" if wanted == "unauthorized" else b"connected to"
        assert expected in result.stdout, result
        assert self.wait_state(phone.address, wanted) == wanted

    def disconnect(self, phone: EmulatedPhone) -> None:
        self.run("disconnect", phone.address)


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under root (relative), with file contents; None for folders."""
    return {
        str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes())
        for p in sorted(root.rglob("*"))
    }


def bwrap_children() -> list[int]:
    """Our bwrap processes still alive (what a leaking shell would leave)."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                comm = Path(f"/proc/{entry}/comm").read_text().strip()
            except OSError:
                continue
            if int(fields[1]) == me and comm == "bwrap" and fields[0] != "Z":
                found.append(int(entry))
    return found


class RawHost:
    """A minimal ADB host speaking the wire protocol directly, for what adb and
    adb-shell never do (pipelining, misbehaving, half-closing)."""

    def __init__(self, port: int, maxdata: int = wire.MAX_PAYLOAD, timeout: float = 10) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.maxdata = maxdata
        self.version = wire.A_VERSION_MIN  # until connect() settles it
        self._next_id = 100

    def send(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        self.sock.sendall(wire.pack_message(command, arg0, arg1, data, version=self.version))

    def recv(self) -> wire.Message:
        header = self._exact(wire.HEADER.size)
        command, arg0, arg1, length, check = wire.unpack_header(header)
        data = self._exact(length)
        expected = wire.payload_checksum(data) if self.version < wire.A_VERSION_SKIP_CHECKSUM else 0
        assert check == expected, "the phone fills in checksums below A_VERSION_SKIP_CHECKSUM only"
        return wire.Message(command, arg0, arg1, data)

    def _exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError(f"connection closed after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    def connect(self, version: int = wire.A_VERSION) -> wire.Message:
        self.send(wire.A_CNXN, version, self.maxdata, b"host::features=shell_v2,stat_v2,ls_v2")
        self.version = min(version, wire.A_VERSION)  # what the phone's transport now uses
        return self.recv()

    def open(self, service: bytes) -> tuple[int, int]:
        """OPEN and wait for OKAY: (our id, the phone's id)."""
        self._next_id += 1
        local = self._next_id
        self.send(wire.A_OPEN, local, 0, service + b"\0")
        reply = self.recv()
        assert (reply.name, reply.arg1) == ("OKAY", local), reply
        return local, reply.arg0

    def read_stream(self, local: int, remote: int, size: int) -> bytes:
        """Read `size` bytes of the stream's WRTEs, acknowledging each."""
        data = bytearray()
        while len(data) < size:
            msg = self.recv()
            assert (msg.name, msg.arg1) == ("WRTE", local), msg
            data += msg.data
            self.send(wire.A_OKAY, local, remote)
        return bytes(data)

    def read_until_close(self, local: int, remote: int) -> bytes:
        data = bytearray()
        while True:
            msg = self.recv()
            if msg.name == "CLSE":
                return bytes(data)
            assert (msg.name, msg.arg1) == ("WRTE", local), msg
            data += msg.data
            self.send(wire.A_OKAY, local, remote)

    def close(self) -> None:
        self.sock.close()


RawHostFactory = Callable[..., RawHost]


def sync_request(ident: bytes, path: bytes) -> bytes:
    return wire.SYNC_REQUEST.pack(ident, len(path)) + path


def parse_sync_replies(data: bytes, requests: list[bytes]) -> list[object]:
    """Split the phone's sync answers to `requests` (their ids, in order).

    STAT/STA2/LST2 -> the struct's fields; LIST/LIS2 -> [(fields, name), ...];
    RECV/RCV2 -> the file's bytes; a FAIL -> ("FAIL", message), and nothing follows it.
    """
    out: list[object] = []
    i = 0

    def take(struct_: struct.Struct) -> tuple:
        nonlocal i
        fields = struct_.unpack_from(data, i)
        i += struct_.size
        return fields

    for request in requests:
        if data[i : i + 4] == wire.ID_FAIL:
            (length,) = struct.unpack_from("<I", data, i + 4)
            out.append(("FAIL", data[i + 8 : i + 8 + length].decode()))
            i += 8 + length
            break
        if request == wire.ID_LSTAT_V1:
            out.append(take(wire.SYNC_STAT_V1)[1:])
        elif request in (wire.ID_STAT_V2, wire.ID_LSTAT_V2):
            out.append(take(wire.SYNC_STAT_V2)[1:])
        elif request in (wire.ID_LIST_V1, wire.ID_LIST_V2):
            dent = wire.SYNC_DENT_V2 if request == wire.ID_LIST_V2 else wire.SYNC_DENT_V1
            entries = []
            while True:
                fields = take(dent)
                if fields[0] == wire.ID_DONE:
                    break
                entries.append((fields[1:-1], data[i : i + fields[-1]]))
                i += fields[-1]
            out.append(entries)
        elif request in (wire.ID_RECV_V1, wire.ID_RECV_V2):
            content = bytearray()
            while True:
                ident, length = take(wire.SYNC_REQUEST)
                if ident == wire.ID_DONE:
                    break
                assert ident == wire.ID_DATA, ident
                content += data[i : i + length]
                i += length
            out.append(bytes(content))
        else:
            raise AssertionError(f"no parser for {request!r}")
    assert i == len(data), f"{len(data) - i} unexpected bytes after the answers"
    return out


