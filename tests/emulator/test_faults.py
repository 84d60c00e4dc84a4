"""Each fault the phone can stage fires when asked, and says so in faults_fired."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from adb_shell.adb_device import AdbDeviceTcp
from adb_shell.exceptions import AdbCommandFailureException, AdbTimeoutError

from adbvoice.emulator import EmulatedPhone, Faults
from adbvoice.phone import wire
from tests.emulator.helpers import (
    FIVE_MB,
    Adb,
    RawHostFactory,
    parse_sync_replies,
    sync_request,
)

W = wire
NOTES = "/sdcard/Android/media/com.whatsapp/WhatsApp/Media/WhatsApp Voice Notes/202418"
BIG = f"{NOTES}/PTT-20240501-WA0001.opus"
SMALL = f"{NOTES}/PTT-20240502-WA0002.opus"


def device(phone: EmulatedPhone) -> AdbDeviceTcp:
    d = AdbDeviceTcp("127.0.0.1", phone.port, default_transport_timeout_s=5)
    d.connect(read_timeout_s=3)
    return d


def on_disk(phone: EmulatedPhone, phone_path: str) -> Path:
    return phone.root / phone_path.removeprefix("/sdcard/")


def test_drop_closes_the_connection_mid_file_once(phone_dir: Path, tmp_path: Path) -> None:
    with EmulatedPhone(phone_dir, faults=Faults(drop_after_bytes=1_000_000)) as phone:
        d = device(phone)
        with pytest.raises((AdbTimeoutError, OSError)):
            d.pull(BIG, str(tmp_path / "first"), read_timeout_s=0.5)
        assert phone.faults_fired["drop"] == 1
        assert phone.file_bytes_sent == 1_000_000
        # The phone is still there, and the fault does not fire again.
        d = device(phone)
        d.pull(BIG, str(tmp_path / "second"))
        assert (tmp_path / "second").read_bytes() == on_disk(phone, BIG).read_bytes()
        assert phone.faults_fired["drop"] == 1
        assert phone.connections_accepted == 2


def test_stall_goes_silent_but_keeps_the_socket_open(raw_host: RawHostFactory, phone_dir: Path) -> None:
    with EmulatedPhone(phone_dir, faults=Faults(stall_after_bytes=100_000)) as phone:
        host = raw_host(phone)
        host.connect()
        local, remote = host.open(b"sync:")
        host.send(W.A_WRTE, local, remote, sync_request(W.ID_RECV_V1, BIG.encode()))
        assert host.recv().name == "OKAY"
        received = bytearray()
        host.sock.settimeout(0.5)
        try:
            while True:
                msg = host.recv()
                assert msg.name == "WRTE"
                received += msg.data
                host.send(W.A_OKAY, local, remote)
        except TimeoutError:
            pass
        payload = sum(len(c) for c in _data_chunks(bytes(received)))
        assert payload == 100_000 == phone.file_bytes_sent
        assert phone.faults_fired["stall"] == 1
        host.send(W.A_OPEN, 999, 0, b"sync:\0")  # read and ignored
        with pytest.raises(TimeoutError):
            host.recv()
        host.close()
        deadline = time.monotonic() + 5
        while phone.connections_open and time.monotonic() < deadline:  # the phone notices the close
            time.sleep(0.05)
        assert phone.connections_open == 0


def _data_chunks(data: bytes) -> list[bytes]:
    chunks, i = [], 0
    while i < len(data):
        ident, length = W.SYNC_REQUEST.unpack_from(data, i)
        assert ident == W.ID_DATA
        chunks.append(data[i + 8 : i + 8 + length])
        i += 8 + length
    return chunks


def test_fail_paths_refuse_recv_every_time_but_not_stat_or_list(
    raw_host: RawHostFactory, phone_dir: Path, adb: Adb, tmp_path: Path
) -> None:
    with EmulatedPhone(phone_dir, faults=Faults(fail_paths="*/PTT-20240502-*")) as phone:
        d = device(phone)
        with pytest.raises(AdbCommandFailureException, match="open failed: Permission denied"):
            d.pull(SMALL, str(tmp_path / "x"))
        assert d.stat(SMALL)[1] == on_disk(phone, SMALL).stat().st_size
        assert "PTT-20240502-WA0002.opus" in [bytes(f.filename).decode() for f in d.list(NOTES)]
        d.pull(BIG, str(tmp_path / "big"))
        d.close()
        host = raw_host(phone)
        host.connect()
        local, remote = host.open(b"sync:")
        host.send(W.A_WRTE, local, remote, sync_request(W.ID_RECV_V2, SMALL.encode()) + W.SYNC_RECV_V2.pack(W.ID_RECV_V2, 0))
        assert host.recv().name == "OKAY"
        answer = parse_sync_replies(host.read_until_close(local, remote), [W.ID_RECV_V2])
        assert answer == [("FAIL", "open failed: Permission denied")]
        adb.connect(phone)
        pulled = adb.run("-s", phone.address, "pull", SMALL, str(tmp_path / "y"))
        assert pulled.returncode == 1, pulled
        assert b"remote open failed: Permission denied" in pulled.stdout + pulled.stderr, pulled
        adb.disconnect(phone)
        assert phone.faults_fired["fail_path"] == 3


def test_grow_appends_to_a_note_while_it_is_sent(phone_dir: Path, tmp_path: Path) -> None:
    faults = Faults(grow_paths="*/PTT-20240501-*", grow_bytes=4096, grow_times=1)
    with EmulatedPhone(phone_dir, faults=faults) as phone:
        note = on_disk(phone, BIG)
        before = note.stat()
        original = note.read_bytes()
        d = device(phone)
        d.pull(BIG, str(tmp_path / "growing"))
        after = note.stat()
        assert after.st_size == before.st_size + 4096
        assert after.st_mtime >= before.st_mtime + 1
        assert (tmp_path / "growing").read_bytes() == original + bytes(4096)
        d.pull(BIG, str(tmp_path / "stable"))
        assert note.stat().st_size == after.st_size  # grew only once
        assert (tmp_path / "stable").read_bytes() == note.read_bytes()
        d.pull(SMALL, str(tmp_path / "other"))
        assert phone.faults_fired["grow"] == 1
        assert len(original) == FIVE_MB and os.path.getsize(tmp_path / "other") == 3004


def test_lie_size_claims_an_absurd_size_in_list_and_stat_but_sends_the_real_bytes(
    phone_dir: Path, tmp_path: Path
) -> None:
    with EmulatedPhone(phone_dir, faults=Faults(lie_size_paths="*/PTT-20240502-*", lie_size=2**40)) as phone:
        d = device(phone)
        listed = {bytes(f.filename).decode(): f.size for f in d.list(NOTES)}
        assert listed["PTT-20240502-WA0002.opus"] == 2**40 & 0xFFFFFFFF  # sync v1 carries 32 bits
        assert listed["PTT-20240501-WA0001.opus"] == FIVE_MB
        d.pull(SMALL, str(tmp_path / "small"))
        assert (tmp_path / "small").read_bytes() == on_disk(phone, SMALL).read_bytes()
        assert phone.faults_fired["lie_size"] >= 1


def test_corrupt_flips_a_byte_in_transit_and_leaves_the_file_on_the_phone_alone(
    phone_dir: Path, tmp_path: Path
) -> None:
    with EmulatedPhone(phone_dir, faults=Faults(corrupt_paths="*/PTT-20240502-*", corrupt_times=1)) as phone:
        original = on_disk(phone, SMALL).read_bytes()
        d = device(phone)
        d.pull(SMALL, str(tmp_path / "garbled"))
        d.pull(SMALL, str(tmp_path / "clean"))
        garbled = (tmp_path / "garbled").read_bytes()
        assert len(garbled) == len(original)
        assert sum(a != b for a, b in zip(garbled, original)) == 1
        assert (tmp_path / "clean").read_bytes() == original == on_disk(phone, SMALL).read_bytes()
        assert phone.faults_fired["corrupt"] == 1
