"""`adbvoice demo`: the real backup, against an emulated phone built from bundled samples.

For someone with no phone at hand. Needs nothing but Python: without bubblewrap the
emulated phone has no shell, and the backup lists it over the sync protocol instead.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from adbvoice.backup.config import BackupConfig
from adbvoice.backup.report import RunReport
from adbvoice.backup.run import backup
from adbvoice.emulator import EmulatedPhone
from adbvoice.emulator.phonetree import build_demo_phone
from adbvoice.events import Event
from adbvoice.phone.connect import ConnectOptions


def run_demo(folder: Path, on_event: Callable[[Event], None]) -> tuple[RunReport, Path]:
    archive = folder.expanduser().absolute()
    with tempfile.TemporaryDirectory(prefix="adbvoice-demo-phone-") as scratch:
        phone_root = Path(scratch) / "sdcard"
        phone_root.mkdir()
        build_demo_phone(phone_root)
        with EmulatedPhone(phone_root, serial="DEMO0001", model="Demo Phone") as phone:
            config = BackupConfig(
                archive=archive,
                connect=ConnectOptions(tcp=("127.0.0.1", phone.port), serial=None, adb_key=Path(scratch) / "adbkey"),
            )
            return backup(config, on_event), archive
