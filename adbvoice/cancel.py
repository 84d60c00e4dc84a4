"""Stopping a run cleanly on Ctrl-C or SIGTERM.

The CLI's signal handler calls `request()`. That raises at once, which also breaks out of
a read blocked on a silent phone, except inside `deferred()`: there it is only
remembered, and raised by the next `check()`. Waiting for the publisher thread is
deferred, so a group of notes handed to it is published whole, never lost on the way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from adbvoice.errors import InterruptedRun

MESSAGE = "interrupted; what was archived is complete, and the next run copies the rest"


class CancelToken:
    def __init__(self) -> None:
        self.requested = False
        self._deferring = 0

    def request(self) -> None:
        self.requested = True
        if not self._deferring:
            raise InterruptedRun(MESSAGE)

    def check(self) -> None:
        if self.requested:
            raise InterruptedRun(MESSAGE)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
