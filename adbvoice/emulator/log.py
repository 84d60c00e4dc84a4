"""What crossed the wire: one record per ADB message, in the order the phone saw them.

Tests and benchmarks read this to prove how a client behaved (how many round trips a
backup needed, which services it opened, how many bytes it moved) without a packet
capture. Host messages are recorded when the phone receives them (after the link's
delay), device messages when the phone sends them, so the order is the phone's view.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

from adbvoice.phone import wire


@dataclass(frozen=True)
class PacketRecord:
    """One ADB message. `service` is the destination of an OPEN, None for others."""

    t: float
    conn: int
    direction: str  # "host" (host -> device) or "device" (device -> host)
    command: str
    arg0: int
    arg1: int
    length: int
    service: str | None = None


class PacketLog:
    """A thread-safe, append-only list of PacketRecord with a few summaries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[PacketRecord] = []

    def append(self, record: PacketRecord) -> None:
        with self._lock:
            self._records.append(record)

    def records(self, conn: int | None = None) -> list[PacketRecord]:
        """A snapshot, optionally of one connection only."""
        with self._lock:
            snapshot = list(self._records)
        if conn is None:
            return snapshot
        return [r for r in snapshot if r.conn == conn]

    def __iter__(self) -> Iterator[PacketRecord]:
        return iter(self.records())

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def __getitem__(self, index: int) -> PacketRecord:
        with self._lock:
            return self._records[index]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def count(self, command: str, direction: str | None = None, conn: int | None = None) -> int:
        """How many `command` messages ("OPEN", "WRTE", ...), optionally one way only."""
        return sum(
            1
            for r in self.records(conn)
            if r.command == command and (direction is None or r.direction == direction)
        )

    def services(self, conn: int | None = None) -> list[str]:
        """The destinations the host opened, in order (e.g. "sync:", "shell,v2,raw:ls")."""
        return [r.service for r in self.records(conn) if r.service is not None]

    def bytes_on_wire(self, conn: int | None = None) -> int:
        """Header plus payload bytes of every message, both directions."""
        return sum(wire.HEADER.size + r.length for r in self.records(conn))

    def round_trips(self, conn: int | None = None) -> int:
        """Turns in which the host had to hear from the phone before it could go on.

        Per connection, a turn is a maximal run of consecutive host->device messages (one
        that starts the connection or follows a device->host message); it counts when the
        phone answers it, i.e. at least one device->host message follows before the
        host's next message or the end of the log. A host that pipelines ten requests in
        one go and reads ten answers costs one round trip; one that asks, waits, asks
        again costs ten. With `conn=None` the connections' counts are added up.
        """
        per_conn: dict[int, tuple[int, bool]] = {}
        for r in self.records(conn):
            trips, host_waiting = per_conn.get(r.conn, (0, False))
            if r.direction == "host":
                per_conn[r.conn] = (trips, True)
            elif host_waiting:
                per_conn[r.conn] = (trips + 1, False)
        return sum(trips for trips, _ in per_conn.values())
