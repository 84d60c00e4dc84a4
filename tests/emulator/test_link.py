"""The link profile slows every client alike: a request that waits for its answer pays
a round trip, pipelined requests share one, and bandwidth caps transfers. Bounds are
generous: these prove the shaping happens, they do not benchmark."""

from __future__ import annotations

import time
from pathlib import Path

from adbvoice.emulator import EmulatedPhone, LinkProfile
from adbvoice.phone import wire
from tests.emulator.helpers import RawHost, parse_sync_replies, sync_request

W = wire
N = 10


def sync_stream(phone: EmulatedPhone) -> tuple[RawHost, int, int]:
    host = RawHost(phone.port)
    host.connect()
    local, remote = host.open(b"sync:")
    return host, local, remote


def one_by_one(host: RawHost, local: int, remote: int) -> float:
    started = time.monotonic()
    for _ in range(N):
        host.send(W.A_WRTE, local, remote, sync_request(W.ID_STAT_V2, b"/sdcard/Download"))
        assert host.recv().name == "OKAY"
        host.read_stream(local, remote, W.SYNC_STAT_V2.size)
    return time.monotonic() - started


def pipelined(host: RawHost, local: int, remote: int) -> float:
    started = time.monotonic()
    host.send(W.A_WRTE, local, remote, sync_request(W.ID_STAT_V2, b"/sdcard/Download") * N)
    assert host.recv().name == "OKAY"
    replies = parse_sync_replies(host.read_stream(local, remote, N * W.SYNC_STAT_V2.size), [W.ID_STAT_V2] * N)
    assert len(replies) == N
    return time.monotonic() - started


def test_presets_are_usb2_and_wifi_like() -> None:
    assert LinkProfile.loopback() == LinkProfile()
    assert LinkProfile.usb2() == LinkProfile(rtt_s=0.0003, bandwidth_Bps=35e6)
    assert LinkProfile.wifi() == LinkProfile(rtt_s=0.008, bandwidth_Bps=6e6)


def test_each_waited_for_answer_costs_a_round_trip_and_pipelining_shares_one(phone_dir: Path) -> None:
    rtt = 0.03
    with EmulatedPhone(phone_dir, link=LinkProfile(rtt_s=rtt)) as phone:
        host, local, remote = sync_stream(phone)
        phone.log.clear()
        slow = one_by_one(host, local, remote)
        trips_slow = phone.log.round_trips()
        phone.log.clear()
        fast = pipelined(host, local, remote)
        trips_fast = phone.log.round_trips()
        host.close()
    assert slow >= N * rtt * 0.9, slow
    assert fast < slow / 3, (fast, slow)
    # One by one: each request waits for its answer, and each answer's OKAY goes alone.
    assert trips_slow >= N and trips_fast <= 2, (trips_slow, trips_fast)


def test_bandwidth_caps_a_transfer(phone_dir: Path) -> None:
    path = b"/sdcard/Android/media/com.whatsapp/WhatsApp/Media/WhatsApp Voice Notes/202418/PTT-20240501-WA0001.opus"
    bandwidth = 10e6
    with EmulatedPhone(phone_dir, link=LinkProfile(bandwidth_Bps=bandwidth)) as phone:
        host, local, remote = sync_stream(phone)
        started = time.monotonic()
        host.send(W.A_WRTE, local, remote, sync_request(W.ID_RECV_V1, path) + sync_request(W.ID_QUIT, b""))
        assert host.recv().name == "OKAY"
        data = host.read_until_close(local, remote)
        elapsed = time.monotonic() - started
        host.close()
    assert len(data) > 5_000_000
    assert elapsed >= len(data) / bandwidth * 0.9, elapsed


def test_round_trips_count_turns_of_the_conversation() -> None:
    from adbvoice.emulator.log import PacketLog, PacketRecord

    log = PacketLog()
    for direction, command in [("host", "CNXN"), ("device", "CNXN"), ("host", "OPEN"), ("host", "OPEN"),
                               ("device", "OKAY"), ("device", "OKAY"), ("host", "WRTE"), ("device", "OKAY"),
                               ("device", "WRTE"), ("host", "OKAY")]:
        log.append(PacketRecord(0.0, 1, direction, command, 0, 0, 0))
    log.append(PacketRecord(0.0, 2, "host", "CNXN", 0, 0, 10))
    assert log.round_trips(conn=1) == 3  # CNXN, the two OPENs, the WRTE; the last OKAY is unanswered
    assert log.round_trips() == 3
    assert log.bytes_on_wire(conn=2) == 34
    assert log.count("OKAY", direction="device") == 3
