"""What a long task tells the person watching while it runs: one small value per step.

Backups, verify, and every other task that moves many notes emit these; the CLI turns
them into a progress bar or log lines, so no task ever prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EventKind = Literal["prompt", "connected", "planned", "bytes", "note", "warning", "info"]


@dataclass(frozen=True)
class Event:
    """`prompt` must reach the user even in quiet mode; `bytes` feeds a progress bar."""

    kind: EventKind
    message: str = ""
    files: int = 0
    bytes: int = 0
