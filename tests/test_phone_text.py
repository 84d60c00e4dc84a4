"""Text a phone controls — its model and serial, file names, audio tags — cannot paint the
terminal or split a message: every line adbvoice shows passes it through one function
that escapes control characters, what the catalog stores of it is capped, and a CSV cell
never starts a spreadsheet formula."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3

from mutagen.oggopus import OggOpus

from adbvoice.display import printable
from adbvoice.emulator import EmulatedPhone
from adbvoice.emulator.phonetree import build_phone_tree
from tests.conftest import run_cli

# A title-setting OSC, a screen clear, red text, a C1 CSI and a right-to-left override.
PAINT = "\x1b]0;pwned\x07\x1b[2J\x1b[31m\x9b1m\u202e"
MODEL = "=HYPERLINK(1)" + PAINT + "Pixel"


def shown(*outputs: str) -> str:
    text = "".join(outputs)
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in text, (raw, text)
    return text


def test_escape_sequences_from_the_phone_never_reach_the_terminal_and_each_message_is_one_line(
    tmp_path, archive
):
    tree = build_phone_tree(tmp_path / "sdcard", notes=4, business=False, legacy=False, broken=False, audio=False)
    week = next(n.local_path.parent for n in tree.notes if n.kind == "voice" and n.is_note)
    sample = next(n.local_path for n in tree.notes if n.kind == "voice" and n.is_note)
    tagged = week / "PTT-20240501-WA0999.opus"
    shutil.copy(sample, tagged)
    audio = OggOpus(tagged)
    audio.tags.vendor = PAINT + "v" * 100_000  # the vendor tag was once stored at 100 KB
    audio.tags["title"] = [PAINT + "title"]
    audio.save()
    with open(os.path.join(os.fsencode(week), b"new\nline\x1b[2J.opus"), "wb") as handle:
        handle.write(sample.read_bytes() + b"x")
    log = tmp_path / "runs.log"

    with EmulatedPhone(tree.root, model=MODEL, serial="EMU" + PAINT) as phone:
        backup = run_cli("backup", archive, "--tcp", phone.address, "-v", "--log-file", log)

    assert backup.exit_code == 3, backup.stderr  # the renamed note is a warning
    warnings = [line for line in shown(backup.stderr).splitlines() if line.startswith("warning: ")]
    named = [line for line in warnings if "/new\\nline\\x1b[2J.opus: " in line]  # one line, the name escaped
    assert len(named) == 1 and "; archived as " in named[0], warnings
    assert "\\x1b]0;pwned\\x07" in backup.stderr  # the model, escaped, on the -v "connected" line
    shown(log.read_text())

    listed = run_cli("ls", archive)
    stats = run_cli("stats", archive)
    note = next(n for n in json.loads(run_cli("ls", archive, "--json").stdout) if n["archive_path"].endswith("WA0999.opus"))
    info = run_cli("info", note["archive_path"], "--archive", archive)
    for result in (listed, stats, info):
        assert result.exit_code == 0, result.stderr
        shown(result.stdout, result.stderr)
    assert printable(MODEL)[:40] in listed.stdout

    with sqlite3.connect(archive / ".adbvoice" / "catalog.sqlite") as db:
        longest = db.execute("SELECT max(length(vendor)), max(length(device_model)), max(length(device_serial)) "
                             "FROM notes").fetchone()
    assert max(longest) <= 200, longest

    rows = list(csv.DictReader(io.StringIO(run_cli("ls", archive, "--format", "csv").stdout)))
    assert {row["device_model"] for row in rows} == {"'" + MODEL}  # a spreadsheet shows it, never runs it


def test_printable_escapes_what_a_terminal_would_act_on_and_keeps_everything_else():
    assert printable("PTT-20240501-WA0001.opus") == "PTT-20240501-WA0001.opus"
    assert printable("Grüße 👋 ünïcödé") == "Grüße 👋 ünïcödé"
    assert printable("a\nb\rc\td\x1b[31me\x7ff\x9bg\u202eh\u2028i") == (
        "a\\nb\\rc\\td\\x1b[31me\\x7ff\\x9bg\\u202eh\\u2028i"
    )
