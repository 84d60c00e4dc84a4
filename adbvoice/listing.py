"""Reading the archive back: the notes the catalog holds, as lines or JSON objects."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from adbvoice.archive import Archive
from adbvoice.catalog import Catalog, NoteRow
from adbvoice.report import human_bytes


def list_archive(root: Path) -> list[NoteRow]:
    archive = Archive.open(root, create=False)
    catalog = Catalog.open(archive.catalog_path, read_only=True)
    try:
        return list(catalog.notes())
    finally:
        catalog.close()


def minutes_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-:--"
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def note_line(note: NoteRow) -> str:
    audio = note.codec or "?" if not note.audio_error else f"unreadable: {note.audio_error}"
    return (
        f"{note.recorded_on or '?':10}  {minutes_seconds(note.duration_s):>6}  {human_bytes(note.size):>9}  "
        f"{note.archive_path}  [{note.source}, {note.device_model}, {audio}]"
    )


def note_json(note: NoteRow) -> dict:
    data = asdict(note)
    raw = data.pop("phone_path_raw")
    data["phone_path_hex"] = raw.hex() if raw is not None else None
    return data
