"""The settings of one backup, resolved once (unattended/settings.py) and frozen."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from adbvoice.archive.layout import DEFAULT_LAYOUT, Layout
from adbvoice.phone.connect import ConnectOptions


@dataclass(frozen=True)
class BackupConfig:
    archive: Path
    connect: ConnectOptions
    include_audio: bool = False
    layout: Layout = field(default_factory=lambda: Layout(DEFAULT_LAYOUT))
    dry_run: bool = False
    # The serial the phone must have (a remembered Wi-Fi phone): another one at its address is refused.
    expect_serial: str | None = None

