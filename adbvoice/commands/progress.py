"""Showing a run's events: a tqdm bar on a terminal, plain lines otherwise, nothing when quiet.

Everything here goes to stderr; stdout is kept for results (the summary, --json, ls).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from adbvoice.display import printable
from adbvoice.events import Event

if TYPE_CHECKING:
    from tqdm import tqdm


class EventPrinter:
    def __init__(self, *, quiet: bool, verbose: bool, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._quiet = quiet
        self._verbose = verbose
        self._tty = self._stream.isatty() and not quiet
        self._bar: tqdm | None = None
        self._planned_files = 0
        self._done_files = 0

    def __call__(self, event: Event) -> None:
        if event.kind == "prompt":
            self._line(event.message)  # the user must act on the phone, even in quiet mode
        elif event.kind == "planned":
            if self._tty and event.files:
                from tqdm import tqdm  # only on a terminal: importing it costs cron runs 16 ms

                self.close()  # a task of several stages: one bar each
                self._done_files = 0

                self._bar = tqdm(
                    total=event.bytes, unit="B", unit_scale=True, file=self._stream,
                    desc=f"0/{event.files} notes", leave=False, dynamic_ncols=True,
                )
                self._planned_files = event.files
            elif self._verbose:
                self._line(event.message)
        elif event.kind == "bytes":
            if self._bar is not None:
                self._bar.update(event.bytes)
        elif event.kind == "note":
            if self._bar is not None:
                self._done_files += 1
                self._bar.set_description_str(f"{self._done_files}/{self._planned_files} notes")
            if self._verbose:
                self._line(f"archived {event.message}")
        elif self._verbose:
            self._line(event.message)

    def _line(self, text: str) -> None:
        text = printable(text)  # warnings and -v lines carry the phone's names and model
        if self._bar is not None:
            self._bar.write(text, file=self._stream)
        else:
            print(text, file=self._stream, flush=True)

    def warn(self, text: str) -> None:
        if not self._quiet:
            self._line(f"warning: {text}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
