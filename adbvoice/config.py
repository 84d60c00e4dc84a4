"""Settings of one run, resolved once by the CLI and frozen."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from adbvoice.device import ConnectOptions
from adbvoice.layout import DEFAULT_LAYOUT, Layout

DEFAULT_ARCHIVE = Path("~/WhatsApp Voice Notes")
DEFAULT_ADB_KEY = Path("~/.android/adbkey")


@dataclass(frozen=True)
class BackupConfig:
    archive: Path
    connect: ConnectOptions
    include_audio: bool = False
    layout: Layout = field(default_factory=lambda: Layout(DEFAULT_LAYOUT))
    dry_run: bool = False
