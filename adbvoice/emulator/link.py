"""The cable between host and phone: latency and bandwidth, the same for every client.

Each direction is a delay line. A message handed to it at time `now` starts to go out
at `max(now, end of the previous message)`, takes `bytes / bandwidth_Bps` to serialize
and arrives `rtt_s / 2` after that. Messages in flight overlap (the line never sleeps a
full delay per message), so a client that pipelines gains exactly what it would on a
real link, and one that waits for each answer pays a full round trip each time.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")


@dataclass(frozen=True)
class LinkProfile:
    """Round-trip time in seconds and bandwidth in BYTES per second (None: unlimited)."""

    rtt_s: float = 0.0
    bandwidth_Bps: float | None = None

    def __post_init__(self) -> None:
        if self.rtt_s < 0:
            raise ValueError("rtt_s must be >= 0")
        if self.bandwidth_Bps is not None and self.bandwidth_Bps <= 0:
            raise ValueError("bandwidth_Bps must be > 0 or None")

    @classmethod
    def loopback(cls) -> LinkProfile:
        """No shaping: whatever the machine's loopback does."""
        return cls()

    @classmethod
    def usb2(cls) -> LinkProfile:
        """USB-2-like: about 35 MB/s (what adb pull reaches on USB 2.0), 0.3 ms round trip."""
        return cls(rtt_s=0.0003, bandwidth_Bps=35e6)

    @classmethod
    def wifi(cls) -> LinkProfile:
        """Wi-Fi-like (adb over TCP on a home network): about 6 MB/s, 8 ms round trip."""
        return cls(rtt_s=0.008, bandwidth_Bps=6e6)

    @property
    def shaped(self) -> bool:
        return self.rtt_s > 0 or self.bandwidth_Bps is not None

    def transit(self, nbytes: int, now: float, prev_end: float) -> tuple[float, float]:
        """(end of serialization, arrival time) of `nbytes` handed over at `now`."""
        start = max(now, prev_end)
        end = start + (nbytes / self.bandwidth_Bps if self.bandwidth_Bps else 0.0)
        return end, end + self.rtt_s / 2


class DelayLine(Generic[Item]):
    """One direction of the link: a FIFO whose items are delivered, in order, by one
    thread at their arrival time. Closing it discards what is still in flight."""

    def __init__(self, profile: LinkProfile, deliver: Callable[[Item], None], name: str) -> None:
        self._profile = profile
        self._deliver = deliver
        self._queue: deque[tuple[float, Item]] = deque()
        self._cv = threading.Condition()
        self._prev_end = 0.0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, item: Item, nbytes: int) -> None:
        with self._cv:
            if self._closed:
                return
            self._prev_end, due = self._profile.transit(nbytes, time.monotonic(), self._prev_end)
            self._queue.append((due, item))
            self._cv.notify()

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._queue.clear()
            self._cv.notify()

    def join(self, timeout: float) -> None:
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._closed:
                    if self._queue:
                        wait = self._queue[0][0] - time.monotonic()
                        if wait <= 0:
                            break
                        self._cv.wait(wait)
                    else:
                        self._cv.wait()
                if self._closed:
                    return
                _, item = self._queue.popleft()
            self._deliver(item)
