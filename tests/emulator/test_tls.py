"""Wireless debugging's TLS port on the emulated phone, held to Google's adb 36: STLS after
CNXN, TLS 1.3 with the host's adbkey certificate, CNXN inside TLS; only trusted keys get in,
and trust survives the phone's restart."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from adbvoice.emulator import AuthPolicy, EmulatedPhone
from adbvoice.phone import wire
from adbvoice.phone.keys import load_signer
from adbvoice.phone.tls import client_context
from tests.emulator.helpers import Adb, RawHost, tree

STLS = wire.pack_message(wire.A_STLS, wire.A_STLS_VERSION, 0)


@pytest.fixture(scope="module")
def adb36(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Adb]:
    """Google's adb 36 (the one with TLS) with its own server, home and so its own key."""
    server = Adb(tmp_path_factory.mktemp("adb36-home"), "adb36")
    assert server.run("start-server").returncode == 0
    yield server
    server.run("kill-server")


@pytest.fixture
def tls_phone(phone_dir: Path, tmp_path: Path) -> Iterator[EmulatedPhone]:
    """A phone whose port is a Wireless-debugging one, trusting no key yet."""
    with EmulatedPhone(phone_dir, auth=AuthPolicy(mode="keys"), tls=True, state_dir=tmp_path / "state") as phone:
        yield phone


@pytest.fixture
def host_key(tmp_path: Path) -> Path:
    key = tmp_path / "host" / "adbkey"
    load_signer(key)
    return key


def test_adb36_connects_over_tls_and_pulls_byte_identical_files(
    adb36: Adb, tls_phone: EmulatedPhone, tmp_path: Path
) -> None:
    tls_phone.trust_key(adb36.public_key)  # what pairing does
    adb36.connect(tls_phone)
    s = ("-s", tls_phone.address)
    shell = adb36.run(*s, "shell", "echo over tls; getprop ro.serialno; exit 4")
    assert (shell.stdout, shell.returncode) == (b"over tls\nEMU0001\n", 4)
    pulled = adb36.run(*s, "pull", "/sdcard/", str(tmp_path / "out"))
    assert pulled.returncode == 0, pulled
    assert tree(tmp_path / "out") == tree(tls_phone.root)
    commands = [r.command for r in tls_phone.log]
    assert commands[:2] == ["CNXN", "STLS"] and "AUTH" not in commands
    assert tls_phone.protocol_violations == []
    adb36.disconnect(tls_phone)


def test_adb36_with_a_key_the_phone_does_not_trust_is_refused(adb36: Adb, tls_phone: EmulatedPhone) -> None:
    connected = adb36.run("connect", tls_phone.address)
    assert adb36.wait_state(tls_phone.address, "device", timeout=3) != "device", connected
    shell = adb36.run("-s", tls_phone.address, "shell", "echo should not run", timeout=20)
    assert shell.returncode != 0 and b"should not run" not in shell.stdout
    assert "OPEN" not in [r.command for r in tls_phone.log]
    assert tls_phone.trusted_keys == set()
    adb36.disconnect(tls_phone)


class TlsHost:
    """A raw host that answers STLS in a chosen order, as adb 36's two threads may."""

    def __init__(self, phone: EmulatedPhone, key: Path) -> None:
        self.raw = RawHost(phone.port)
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = client_context(key).wrap_bio(self._in, self._out)

    def switch(self, order: str) -> wire.Message:
        """CNXN, the phone's STLS, then ours and the handshake in `order`; the phone's CNXN."""
        stls = self.raw.connect()
        assert (stls.name, stls.arg0) == ("STLS", wire.A_STLS_VERSION)
        sock = self.raw.sock
        if order == "stls, then hello":
            sock.sendall(STLS)
        self._step()
        if order == "hello, then stls":
            sock.sendall(STLS)
        while not self._step():
            pass
        if order == "hello, stls inside tls":
            self.tls.write(STLS)
            sock.sendall(self._out.read())
        return self.recv()

    def _step(self) -> bool:
        """One handshake step: whether it is done; what TLS wrote goes out."""
        try:
            self.tls.do_handshake()
            done = True
        except ssl.SSLWantReadError:
            done = False
        self.raw.sock.sendall(self._out.read())
        if not done and self._in.pending == 0 and self._out.pending == 0:
            self._feed()
        return done

    def _feed(self) -> None:
        data = self.raw.sock.recv(65536)
        if not data:
            raise EOFError("the phone closed the connection")
        self._in.write(data)

    def send(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        self.tls.write(wire.pack_message(command, arg0, arg1, data, version=wire.A_VERSION))
        self.raw.sock.sendall(self._out.read())

    def recv(self) -> wire.Message:
        header = self._read(wire.HEADER.size)
        command, arg0, arg1, length, _check = wire.unpack_header(header)
        return wire.Message(command, arg0, arg1, self._read(length) if length else b"")

    def _read(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            try:
                data += self.tls.read(size - len(data))
            except ssl.SSLWantReadError:
                self._feed()
        return data


@pytest.mark.parametrize("order", ["stls, then hello", "hello, then stls", "hello, stls inside tls"])
def test_the_phone_takes_the_hosts_stls_and_clienthello_in_every_order_adb_sends_them(
    tls_phone: EmulatedPhone, host_key: Path, order: str
) -> None:
    tls_phone.trust_key(Path(f"{host_key}.pub").read_text())
    host = TlsHost(tls_phone, host_key)
    try:
        cnxn = host.switch(order)
        assert cnxn.name == "CNXN" and cnxn.data.startswith(b"device::")
        host.send(wire.A_OPEN, 7, 0, b"sync:\0")
        assert host.recv().name == "OKAY"
    finally:
        host.raw.close()
    # The phone's STLS, then the host's: plain, or inside TLS after the phone's CNXN.
    expected = ["CNXN", "STLS", "CNXN", "STLS"] if "inside" in order else ["CNXN", "STLS", "STLS", "CNXN"]
    assert [r.command for r in tls_phone.log][:4] == expected
    assert tls_phone.protocol_violations == []


def test_an_unknown_key_gets_tls_alert_and_the_connection_closes(tls_phone: EmulatedPhone, host_key: Path) -> None:
    host = TlsHost(tls_phone, host_key)
    try:
        with pytest.raises((ssl.SSLError, EOFError)):  # TLS 1.3: the handshake ends well, the first read fails
            host.switch("stls, then hello")
    finally:
        host.raw.close()
    assert "CNXN" not in [r.command for r in tls_phone.log if r.direction == "device"]


def test_a_trusted_key_stays_trusted_when_the_phone_restarts(phone_dir: Path, tmp_path: Path, host_key: Path) -> None:
    state = tmp_path / "state"
    key_line = Path(f"{host_key}.pub").read_text().strip()
    with EmulatedPhone(phone_dir, auth=AuthPolicy(mode="keys"), tls=True, state_dir=state) as phone:
        phone.trust_key(key_line)
    with EmulatedPhone(phone_dir, auth=AuthPolicy(mode="keys"), tls=True, state_dir=state) as again:
        assert again.trusted_keys == {key_line}
        host = TlsHost(again, host_key)
        try:
            assert host.switch("stls, then hello").name == "CNXN"
        finally:
            host.raw.close()
    assert (state / "data" / "misc" / "adb" / "adb_keys").read_text() == key_line + "\n"


def test_a_plain_tcp_host_that_never_answers_stls_gets_nothing(tls_phone: EmulatedPhone) -> None:
    host = RawHost(tls_phone.port, timeout=2)
    try:
        assert host.connect().name == "STLS"
        host.send(wire.A_OPEN, 1, 0, b"shell:echo hi\0")  # not TLS: the phone cannot read it as a record
        with pytest.raises((EOFError, socket.timeout, ConnectionResetError)):
            host.recv()
    finally:
        host.close()
    assert "OKAY" not in [r.command for r in tls_phone.log]
