"""Our side of the ADB connection keeps the phone sending while we are busy with what
already arrived, and never lets unread data grow past its read-ahead."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from adbvoice.emulator import EmulatedPhone
from adbvoice.phone import wire
from adbvoice.phone.connection import AdbLink, AdbStream, LinkTimeout, TcpPipe

BIG = 6 * 1024 * 1024


def sent_to(phone: EmulatedPhone, stream: AdbStream) -> int:
    """Payload bytes the phone has sent on `stream` so far."""
    return sum(r.length for r in phone.log.records() if r.direction == "device" and r.command == "WRTE"
               and r.arg1 == stream.local_id)


def settled(measure, seconds: float = 0.3) -> int:  # noqa: ANN001 - a zero-argument counter
    """The value of `measure` once it stopped changing for `seconds`."""
    last, since = measure(), time.monotonic()
    while time.monotonic() - since < seconds:
        time.sleep(0.02)
        now = measure()
        if now != last:
            last, since = now, time.monotonic()
    return last


def receive_file(stream: AdbStream) -> bytes:
    data = bytearray()
    while True:
        ident, length = wire.SYNC_REQUEST.unpack(stream.read_exact(wire.SYNC_REQUEST.size))
        if ident == wire.ID_DONE:
            return bytes(data)
        assert ident == wire.ID_DATA
        data += stream.read_exact(length)


def test_a_busy_reader_keeps_the_phone_sending_up_to_the_read_ahead_and_no_further(tmp_path: Path) -> None:
    (tmp_path / "Download").mkdir()
    note = os.urandom(BIG)
    (tmp_path / "Download" / "big.opus").write_bytes(note)
    with EmulatedPhone(tmp_path) as phone:
        link = AdbLink(TcpPipe("127.0.0.1", phone.port, 5, 10), io_timeout=10)
        try:
            link.connect([], 5, lambda: None)
            stream = link.open("sync:")
            path = b"/sdcard/Download/big.opus"
            stream.write(wire.SYNC_REQUEST.pack(wire.ID_RECV_V1, len(path)) + path)

            # We read nothing yet (busy elsewhere): what arrives is acknowledged all the
            # same until READ_AHEAD bytes wait unread, then the phone is held back.
            held = settled(lambda: sent_to(phone, stream))
            assert AdbLink.READ_AHEAD <= held <= AdbLink.READ_AHEAD + link.maxdata

            assert receive_file(stream) == note
            stream.close()
        finally:
            link.close()


def test_a_background_stream_lets_the_phone_gather_its_output_into_one_write(tmp_path: Path) -> None:
    (tmp_path / "Download").mkdir()
    lines = 40
    with EmulatedPhone(tmp_path) as phone:
        link = AdbLink(TcpPipe("127.0.0.1", phone.port, 5, 10), io_timeout=10)
        try:
            link.connect([], 5, lambda: None)
            # A line at a time, as sha1sum prints the hash of each file it has read.
            command = f"for i in $(seq 1 {lines}); do echo line$i; sleep 0.01; done"
            stream = link.open(f"exec:{command}", background=True)

            def writes() -> int:
                return sum(1 for r in phone.log.records()
                           if r.direction == "device" and r.command == "WRTE" and r.arg1 == stream.local_id)

            time.sleep(1.0)  # busy elsewhere while the command runs to its end
            assert writes() == 1  # unread, so unacknowledged: the phone held the rest back

            output = bytearray()
            while part := stream.read(1 << 20):
                output += part
            assert output.decode().split() == [f"line{i}" for i in range(1, lines + 1)]
            assert writes() == 2  # everything else it printed meanwhile, in one
        finally:
            link.close()


def test_a_phone_that_stops_taking_data_ends_a_send_within_the_timeout_not_tcps_quarter_hour() -> None:
    with socket.create_server(("127.0.0.1", 0)) as deaf_phone:  # accepts, never reads
        pipe = TcpPipe("127.0.0.1", deaf_phone.getsockname()[1], 5, send_timeout=0.5)
        pipe.recv_exact(0, None)  # as the reader thread leaves it: blocking, no Python timeout
        started = time.monotonic()
        with pytest.raises(LinkTimeout, match="took no data for 0.5 s"):
            for _ in range(64):  # far more than the socket buffers hold
                pipe.send(b"", bytes(1024 * 1024))
        assert time.monotonic() - started < 5
        pipe.close()
