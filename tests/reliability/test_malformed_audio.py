"""Whatever is inside a voice-note file — nothing, half a note, a web page, noise, a tag
block of megabytes, a length that cannot be — it is archived byte for byte, flagged in the
catalog when its audio cannot be read, and the backup never crashes on it."""

from __future__ import annotations

import io
import json
import random
import shutil
from pathlib import Path

from mutagen.ogg import OggPage
from mutagen.oggopus import OggOpus

from adbvoice.emulator import EmulatedPhone
from adbvoice.emulator.phonetree import FIXTURES, build_phone_tree
from tests.conftest import archived_files, run_cli
from tests.reliability.conftest import archive_state, sha256


def pages_of(data: bytes) -> list[OggPage]:
    stream, pages = io.BytesIO(data), []
    while stream.tell() < len(data):
        pages.append(OggPage(stream))
    return pages


def huge_tags(path: Path) -> None:
    """A real note carrying a 4 MB comment: readable, only big."""
    shutil.copyfile(FIXTURES / "voice-4s.opus", path)
    note = OggOpus(path)
    note["comment"] = ["x" * 4_000_000]
    note.save()


def endless(path: Path) -> None:
    """A real note whose last page claims the largest granule position there is."""
    pages = pages_of((FIXTURES / "voice-1s.opus").read_bytes())
    pages[-1].position = 2**63 - 1
    path.write_bytes(b"".join(page.write() for page in pages))


MALFORMED = {  # name -> (how to make it, flagged as unreadable?)
    "PTT-20240301-WA0001.opus": (lambda p: shutil.copyfile(FIXTURES / "truncated.opus", p), True),
    "PTT-20240301-WA0002.opus": (lambda p: p.write_bytes(b""), True),
    "PTT-20240301-WA0003.opus": (lambda p: shutil.copyfile(FIXTURES / "not-audio.opus", p), True),
    "PTT-20240301-WA0004.opus": (lambda p: p.write_bytes(b"OggS" + random.Random(4).randbytes(5000)), True),
    "PTT-20240301-WA0005.m4a": (lambda p: shutil.copyfile(FIXTURES / "garbage.m4a", p), True),
    "PTT-20240301-WA0006.amr": (lambda p: shutil.copyfile(FIXTURES / "audio.amr", p), True),
    "PTT-20240301-WA0007.opus": (huge_tags, False),
    "PTT-20240301-WA0008.opus": (endless, None),  # readable or not: archived either way
    "PTT-20240301-WA0009.opus": (lambda p: shutil.copyfile(FIXTURES / "audio.mp3", p), None),  # MP3 named .opus
}


def test_malformed_audio_is_archived_flagged_and_never_crashes_the_backup(tmp_path, archive, figures):
    tree = build_phone_tree(tmp_path / "sdcard", notes=2, business=False, legacy=False, broken=False, audio=False)
    folder = next(n.local_path.parent for n in tree.notes if n.is_note)
    for name, (make, _) in MALFORMED.items():
        make(folder / name)
    made = {name: sha256((folder / name).read_bytes()) for name in MALFORMED}

    with EmulatedPhone(tree.root) as phone:
        result = run_cli("backup", archive, "--tcp", phone.address)
    rows = {r["sha256"]: r for r in json.loads(run_cli("ls", archive, "--json").stdout)}
    state = archive_state(archive, set(made.values()) | {n.sha256 for n in tree.notes})

    row = figures.row("Malformed audio")
    for name, (_, unreadable) in MALFORMED.items():
        note = rows.get(made[name])
        row.case(fired=note is not None and (unreadable is None or bool(note["audio_error"]) == unreadable),
                 lost=int(note is None))
    row.measured(partial=len(state.partial))
    row.notes["flagged unreadable"] = sum(1 for r in rows.values() if r["audio_error"])

    assert result.exit_code == 3 and "Traceback" not in result.stderr, result.stderr
    assert state.clean and set(made.values()) <= set(state.copies), state  # byte for byte, and verify agrees
    for name, (_, unreadable) in MALFORMED.items():
        note = rows[made[name]]
        assert unreadable is None or bool(note["audio_error"]) == unreadable, (name, note["audio_error"])
        assert f"{note['archive_path']}: archived, but the audio is unreadable" in result.stderr or not note["audio_error"]
    assert abs(rows[made["PTT-20240301-WA0007.opus"]]["duration_s"] - 4) < 1
    assert len(archived_files(archive)) == 2 + len(MALFORMED)
