"""What crossed the emulated link during one measurement, from the phone's packet log.

Counts that machine noise barely moves: round trips (PacketLog.round_trips, after the
connection's handshake), messages, bytes. Shell output is the exception: adbd sends what
the command has written by the time the host acknowledges the previous WRTE, so a command
that writes in small pieces costs more round trips the faster the link. Throughput for
"the bulk of the copy" is taken over the middle 80 % of the bytes that went the way most
bytes went (the phone's for a pull or a backup, the host's for a push): what the phone
sent at the times the link finished serializing it (recomputed with LinkProfile.transit,
the formula the emulator's delay line applies), what the host sent at the times the phone
received it, so a saturated link reads as exactly its bandwidth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from adbvoice.emulator import LinkProfile, PacketLog, PacketRecord
from adbvoice.phone import wire

BULK_FROM, BULK_TO = 0.10, 0.90


@dataclass(frozen=True)
class WireStats:
    turns: int  # round trips after the handshake (adb pull's connection predates the pull)
    messages: int
    wire_bytes: int  # headers and payloads, both ways
    device_payload: int  # payload bytes the phone sent
    largest_device_write: int
    bulk_bytes_per_s: float | None


def after_handshake(records: Sequence[PacketRecord]) -> list[PacketRecord]:
    """Each connection's records after the phone's CNXN (all of them if it has none here)."""
    last_cnxn = {r.conn: i for i, r in enumerate(records) if r.direction == "device" and r.command == "CNXN"}
    return [r for i, r in enumerate(records) if i > last_cnxn.get(r.conn, -1)]


def round_trips(records: Sequence[PacketRecord]) -> int:
    log = PacketLog()
    for record in records:
        log.append(record)
    return log.round_trips()


def bulk_rate(records: Sequence[PacketRecord], profile: LinkProfile) -> float | None:
    """Bytes per second over the middle of what went the busier way, as the link delivered it."""
    sent = {way: sum(r.length for r in records if r.direction == way) for way in ("device", "host")}
    busier = max(sent, key=sent.__getitem__)
    ends: list[tuple[float, int]] = []
    line_free: dict[int, float] = {}
    for r in records:
        if r.direction != busier:
            continue
        size = wire.HEADER.size + r.length
        if busier == "host":  # logged when the phone received it: already the link's time
            ends.append((r.t, size))
            continue
        end, _arrival = profile.transit(size, r.t, line_free.get(r.conn, 0.0))
        line_free[r.conn] = end
        ends.append((end, size))
    ends.sort()
    total = sum(size for _, size in ends)
    if not total:
        return None
    cumulative, marks = 0, []
    for end, size in ends:
        cumulative += size
        if not marks and cumulative >= BULK_FROM * total or len(marks) == 1 and cumulative >= BULK_TO * total:
            marks.append((end, cumulative))
    (t0, c0), (t1, c1) = marks[0], marks[-1]
    return (c1 - c0) / (t1 - t0) if t1 > t0 else None


def wire_stats(records: Sequence[PacketRecord], profile: LinkProfile) -> WireStats:
    device_writes = [r.length for r in records if r.direction == "device" and r.command == "WRTE"]
    return WireStats(
        turns=round_trips(after_handshake(records)),
        messages=len(records),
        wire_bytes=sum(wire.HEADER.size + r.length for r in records),
        device_payload=sum(r.length for r in records if r.direction == "device"),
        largest_device_write=max(device_writes, default=0),
        bulk_bytes_per_s=bulk_rate(records, profile),
    )


def service_kind(service: str) -> str:
    """`shell` for "shell,v2,raw:find ...", `sync` for "sync:": enough to tell streams apart."""
    return service.split(":", 1)[0].split(",", 1)[0]


def explain_turns(records: Sequence[PacketRecord], most: int) -> list[str]:
    """One line per counted round trip after the handshake, at most `most` and then how many
    more: what the host sent, and what the phone answered before the host spoke again."""
    opened = [r for r in records if r.service is not None]
    services = {(r.conn, r.arg0): f"{service_kind(r.service)}#{n}" for n, r in enumerate(opened, 1)}

    def describe(run: Sequence[PacketRecord]) -> str:
        groups: list[list] = []  # [command, service, count, bytes]
        for r in run:
            service = services.get((r.conn, r.arg0 if r.direction == "host" else r.arg1), "")
            if groups and groups[-1][:2] == [r.command, service]:
                groups[-1][2] += 1
                groups[-1][3] += r.length
            else:
                groups.append([r.command, service, 1, r.length])
        return ", ".join(
            f"{command}[{service}]" + (f" x{count}" if count > 1 else "") + (f" {size:,} B" if size and command == "WRTE" else "")
            for command, service, count, size in groups
        )

    lines: list[str] = []
    counted = 0
    host_run: list[PacketRecord] = []
    answer: list[PacketRecord] = []
    for r in [*after_handshake(records), None]:
        if r is None or (r.direction == "host" and answer):
            if host_run and answer:
                counted += 1
                if counted <= most:
                    lines.append(f"{counted:3d}. host {describe(host_run)}  ->  phone {describe(answer)}")
            host_run, answer = [], []
        if r is None:
            break
        if r.direction == "host":
            host_run.append(r)
        elif host_run:
            answer.append(r)
    if counted > most:
        lines.append(f"... and {counted - most:,} more")
    return lines
