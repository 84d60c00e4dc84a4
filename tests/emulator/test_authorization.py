"""A phone that asks "Allow USB debugging?": hosts with a trusted key get in at once,
others wait as unauthorized, and the user's answer (allow later, deny) is honoured.
Checked with Google's adb and with the adb-shell library."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from adb_shell.adb_device import AdbDeviceTcp
from adb_shell.auth.keygen import keygen
from adb_shell.auth.sign_pythonrsa import PythonRSASigner
from adb_shell.exceptions import AdbTimeoutError, TcpTimeoutException

from adbvoice.emulator import AuthPolicy, EmulatedPhone
from adbvoice.emulator.auth import parse_public_key
from tests.emulator.helpers import Adb


@pytest.fixture(scope="session")
def signers(tmp_path_factory: pytest.TempPathFactory) -> list[PythonRSASigner]:
    """Two adb-shell keys, as two different computers would have."""
    out = []
    for name in ("alice", "bob"):
        path = tmp_path_factory.mktemp("keys") / f"{name}_adbkey"
        keygen(str(path))
        out.append(PythonRSASigner.FromRSAKeyPath(str(path)))
    return out


def pub(signer: PythonRSASigner) -> str:
    return signer.GetPublicKey().decode() if isinstance(signer.GetPublicKey(), bytes) else signer.GetPublicKey()


def connect(
    phone: EmulatedPhone, keys: list[PythonRSASigner], auth_timeout_s: float = 2.0, read_timeout_s: float = 2.0
) -> AdbDeviceTcp:
    device = AdbDeviceTcp("127.0.0.1", phone.port, default_transport_timeout_s=5)
    # adb-shell polls a closed socket until read_timeout_s: keep that short.
    device.connect(rsa_keys=keys, auth_timeout_s=auth_timeout_s, read_timeout_s=read_timeout_s)
    return device


def host_auth_types(phone: EmulatedPhone, conn: int) -> list[int]:
    return [r.arg0 for r in phone.log.records(conn) if r.command == "AUTH" and r.direction == "host"]


def test_adb_with_a_listed_key_gets_in_and_an_unlisted_one_stays_unauthorized(
    adb: Adb, phone_dir: Path
) -> None:
    with EmulatedPhone(phone_dir, auth=AuthPolicy("keys", keys=(adb.public_key,))) as phone:
        adb.connect(phone, "device")
        assert adb.run("-s", phone.address, "shell", "echo in").stdout == b"in\n"
        assert {parse_public_key(k).blob for k in phone.trusted_keys} == {parse_public_key(adb.public_key).blob}
        adb.disconnect(phone)
    with EmulatedPhone(phone_dir, auth=AuthPolicy("keys", keys=())) as phone:
        adb.connect(phone, "unauthorized")
        refused = adb.run("-s", phone.address, "shell", "echo in")
        assert refused.returncode != 0 and b"unauthorized" in refused.stderr
        assert phone.trusted_keys == set()
        adb.disconnect(phone)


def test_adb_becomes_a_device_once_the_user_allows_the_key(adb: Adb, phone_dir: Path) -> None:
    with EmulatedPhone(phone_dir, auth=AuthPolicy("pending", pending_seconds=1.5)) as phone:
        started = time.monotonic()
        adb.connect(phone, "unauthorized")
        assert adb.wait_state(phone.address, "device", timeout=15) == "device"
        assert time.monotonic() - started >= 1.0
        assert adb.run("-s", phone.address, "shell", "echo allowed").stdout == b"allowed\n"
        assert len(phone.trusted_keys) == 1
        adb.disconnect(phone)


def test_adb_shell_connects_without_auth_and_with_any_key(phone_dir: Path, signers: list[PythonRSASigner]) -> None:
    with EmulatedPhone(phone_dir) as phone:
        device = connect(phone, [])
        assert device.shell("echo none") == "none\n"
        device.close()
        assert phone.log.count("AUTH") == 0
    with EmulatedPhone(phone_dir, auth=AuthPolicy("any")) as phone:
        device = connect(phone, [signers[1]])
        assert device.shell("echo any") == "any\n"
        device.close()
        assert host_auth_types(phone, 1) == [2]  # one signature, accepted


def test_a_failed_signature_gets_a_fresh_token_and_the_next_key_is_tried(
    phone_dir: Path, signers: list[PythonRSASigner]
) -> None:
    alice, bob = signers
    with EmulatedPhone(phone_dir, auth=AuthPolicy("keys", keys=(pub(bob),))) as phone:
        device = connect(phone, [alice, bob])
        assert device.shell("echo bob") == "bob\n"
        device.close()
        tokens = [r for r in phone.log.records(1) if r.command == "AUTH" and r.direction == "device"]
        assert len(tokens) == 2 and all(r.arg0 == 1 and r.length == 20 for r in tokens)
        assert host_auth_types(phone, 1) == [2, 2]
        assert phone.trusted_keys == {pub(bob).strip()}


def test_an_unlisted_key_waits_and_a_refusing_phone_hangs_up(
    phone_dir: Path, signers: list[PythonRSASigner]
) -> None:
    alice, bob = signers
    with EmulatedPhone(phone_dir, auth=AuthPolicy("keys", keys=(pub(bob),))) as phone:
        with pytest.raises(TcpTimeoutException):  # nobody taps Allow
            connect(phone, [alice], auth_timeout_s=0.5)
        assert host_auth_types(phone, 1) == [2, 3]  # signature, then the public key
        assert phone.trusted_keys == set()
    with EmulatedPhone(phone_dir, auth=AuthPolicy("refuse")) as phone:
        with pytest.raises((AdbTimeoutError, OSError)):  # hung up on
            connect(phone, [bob], read_timeout_s=0.5)
        assert phone.trusted_keys == set()
        assert phone.log.records(1)[-1].command == "AUTH"  # no CNXN ever


def test_a_key_allowed_after_waiting_is_trusted_by_later_connections(
    phone_dir: Path, signers: list[PythonRSASigner]
) -> None:
    alice, _ = signers
    with EmulatedPhone(phone_dir, auth=AuthPolicy("pending", pending_seconds=1.0)) as phone:
        started = time.monotonic()
        device = connect(phone, [alice], auth_timeout_s=10)
        assert time.monotonic() - started >= 0.9
        assert device.shell("echo first") == "first\n"
        device.close()
        assert phone.trusted_keys == {pub(alice).strip()}
        started = time.monotonic()
        device = connect(phone, [alice], auth_timeout_s=10)
        assert time.monotonic() - started < 0.9
        assert host_auth_types(phone, 2) == [2]  # signed once, CNXN at once
        device.close()
