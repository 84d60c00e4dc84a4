"""`adbvoice verify`: a person checks, years later, that every note is still the one the
backup archived — and is told exactly what rotted, vanished or appeared."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from adbvoice.emulator import EmulatedPhone
from tests.conftest import run_cli


@pytest.fixture
def backed_up(small_tree, archive) -> Path:
    with EmulatedPhone(small_tree.root) as phone:
        assert run_cli("backup", archive, "--tcp", phone.address).exit_code == 3
    return archive


def notes_of(archive: Path) -> list[str]:
    rows = json.loads(run_cli("ls", archive, "--json").stdout)
    return sorted(r["archive_path"] for r in rows if r["size"] > 100)


def everything(archive: Path) -> dict[str, tuple]:
    """Every file of the archive with its bytes, mode and mtime."""
    return {str(p.relative_to(archive)): (p.read_bytes(), p.stat().st_mode, p.stat().st_mtime_ns)
            for p in sorted(archive.rglob("*")) if p.is_file()}


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def forget_in_catalog(archive: Path, relpath: str) -> None:
    """What a lost catalog row looks like: the file stays, the catalog no longer knows it."""
    with sqlite3.connect(archive / ".adbvoice" / "catalog.sqlite") as db:
        (note_id,) = db.execute("SELECT id FROM notes WHERE archive_path = ?", (relpath,)).fetchone()
        db.execute("DELETE FROM sightings WHERE note_id = ?", (note_id,))
        db.execute("DELETE FROM notes WHERE id = ?", (note_id,))
    db.close()


def test_a_healthy_archive_verifies_and_verify_changes_nothing(backed_up):
    before = everything(backed_up)
    full = run_cli("verify", backed_up)
    quick = run_cli("verify", backed_up, "--quick", "--json")

    assert full.exit_code == 0 and quick.exit_code == 0, (full.stderr, quick.stderr)
    assert full.stdout.startswith("checked 11 notes (") and full.stdout.endswith(" read): all match the catalog\n")
    assert json.loads(quick.stdout)["ok"] is True and json.loads(quick.stdout)["bytes_read"] == 0
    after = everything(backed_up)
    # SQLite's read-only connection may leave its -wal/-shm side files; nothing else appears or changes.
    assert {k: v for k, v in after.items() if not k.endswith(("-wal", "-shm"))} == before


def test_verify_finds_every_kind_of_damage(backed_up, figures):
    flipped, truncated, deleted, forgotten = notes_of(backed_up)[:4]
    flip_a_byte(backed_up / flipped)
    with open(backed_up / truncated, "r+b") as handle:
        handle.truncate(100)
    (backed_up / deleted).unlink()
    stray = Path(flipped).parent / "copied-in-by-hand.opus"
    shutil.copyfile(backed_up / truncated, backed_up / stray)
    forget_in_catalog(backed_up, forgotten)

    full = run_cli("verify", backed_up, "--json")
    quick = run_cli("verify", backed_up, "--quick", "--json")
    text = run_cli("verify", backed_up)

    found = json.loads(full.stdout)
    problems = {"changed": {c["archive_path"]: c["reason"] for c in found["changed"]},
                "missing": found["missing"], "unknown": found["unknown"]}
    expected = {"changed": {flipped: "content", truncated: "size"}, "missing": [deleted],
                "unknown": sorted([stray.as_posix(), forgotten])}
    quick_found = json.loads(quick.stdout)
    row = figures.row("Bit rot (verify)")
    for _damage in ("flipped byte", "truncated", "deleted", "stray file", "catalog row deleted"):
        row.case(fired=True)
    row.notes["found by verify"] += found["problems"] if problems == expected else 0
    row.notes["found by --quick (sizes only)"] += quick_found["problems"]

    assert full.exit_code == quick.exit_code == text.exit_code == 29
    assert problems == expected
    assert {c["archive_path"] for c in quick_found["changed"]} == {truncated}  # same size: unseen
    assert quick_found["missing"] == [deleted] and quick_found["unknown"] == expected["unknown"]
    assert f"changed  {flipped}  (SHA-256 " in text.stdout
    assert f"changed  {truncated}  (100 bytes, the catalog says " in text.stdout
    assert f"missing  {deleted}  (in the catalog, no file)" in text.stdout
    assert f"unknown  {forgotten}  (not in the catalog)" in text.stdout
    assert text.stderr == "adbvoice: the archive does not match its catalog: 1 missing, 2 changed, 2 not in the catalog\n"


def test_a_backup_copy_on_a_read_only_disk_can_be_verified(small_tree, small_disk):
    archive = small_disk / "archive"
    subprocess.run(["mount", "-o", "remount,size=20m", str(small_disk)], check=True)
    with EmulatedPhone(small_tree.root) as phone:
        assert run_cli("backup", archive, "--tcp", phone.address).exit_code == 3
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)

    result = run_cli("verify", archive)

    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("checked 11 notes")


def test_verify_needs_an_archive(tmp_path):
    result = run_cli("verify", tmp_path)
    assert result.exit_code == 24 and "not an adbvoice archive" in result.stderr
