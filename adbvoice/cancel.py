"""Stopping a run cleanly on Ctrl-C or SIGTERM.

The CLI's signal handler calls `request()`. Outside a shielded section that raises at
once, which also breaks out of a read blocked on a silent phone; inside one (publishing a
group of notes: seal, link, fsync, catalog rows) it is remembered and raised when the
section ends, so the group in flight is finished, never left half-done.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from adbvoice.errors import InterruptedRun

MESSAGE = "interrupted; what was archived is complete, and the next run copies the rest"


class CancelToken:
    def __init__(self) -> None:
        self.requested = False
        self._shields = 0

    def request(self) -> None:
        self.requested = True
        if not self._shields:
            raise InterruptedRun(MESSAGE)

    def check(self) -> None:
        if self.requested:
            raise InterruptedRun(MESSAGE)

    @contextmanager
    def shield(self) -> Iterator[None]:
        self._shields += 1
        try:
            yield
        finally:
            self._shields -= 1
        self.check()
