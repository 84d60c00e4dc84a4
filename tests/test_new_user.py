"""A new user follows README's order of commands, then lives with a phone that has a
permanent oddity: no false alarm, no warning told twice, and every failure says why."""

from __future__ import annotations

import json
import os

from adbvoice.emulator import EmulatedPhone
from adbvoice.emulator.phonetree import VOICE, build_phone_tree
from tests.conftest import run_cli


def test_readmes_order_backup_ls_export_verify_gives_no_false_alarm(phone, archive):
    assert run_cli("backup", archive, "--tcp", phone.address).exit_code == 3  # broken notes, told once
    assert run_cli("ls", archive).exit_code == 0
    exported = run_cli("export", "--html", archive)
    assert exported.exit_code == 0 and (archive / "voice-notes.html").is_file()
    (archive / ".voice-notes.html.0badc0de.tmp").write_text("an export cut off by a crash")

    verified = run_cli("verify", archive)
    assert verified.exit_code == 0, verified.stdout
    assert verified.stdout.endswith(": all match the catalog\n")

    rebuilt = run_cli("catalog", "rebuild", archive, "-v")
    assert rebuilt.exit_code == 0, rebuilt.stderr
    assert "voice-notes.html" not in rebuilt.stderr
    assert run_cli("verify", archive).exit_code == 0
    assert run_cli("backup", archive, "--tcp", phone.address).exit_code == 0
