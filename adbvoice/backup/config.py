"""Settings of one run, resolved once by the CLI and frozen."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from adbvoice.archive.layout import DEFAULT_LAYOUT, Layout
from adbvoice.phone.device import ConnectOptions, parse_tcp_address
from adbvoice.unattended.settings import Settings


@dataclass(frozen=True)
class BackupConfig:
    archive: Path
    connect: ConnectOptions
    include_audio: bool = False
    layout: Layout = field(default_factory=lambda: Layout(DEFAULT_LAYOUT))
    dry_run: bool = False


def backup_config(
    settings: Settings, *, dry_run: bool = False, auth_timeout_s: float = 60.0, io_timeout_s: float = 30.0
) -> BackupConfig:
    """The frozen config a backup runs with, from settings already checked by `resolve`."""
    return BackupConfig(
        archive=settings["archive"],
        connect=ConnectOptions(
            tcp=parse_tcp_address(settings["tcp"]) if settings["tcp"] else None,
            serial=settings["serial"],
            adb_key=settings["adb_key"],
            auth_timeout_s=auth_timeout_s,
            io_timeout_s=io_timeout_s,
        ),
        include_audio=settings["include_audio"],
        layout=Layout.parse(settings["layout"]),
        dry_run=dry_run,
    )
