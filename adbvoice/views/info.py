"""`info`: one note as the catalog records it, beside what its file says now.

A note is named by its catalog id, by its path inside the archive, or by a path to its
file anywhere on disk (then the archive is the folder above it that holds `.adbvoice/`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from adbvoice import errors
from adbvoice.archive.catalog import NoteRow, SightingRow, TranscriptRow, reading
from adbvoice.archive.folder import Archive
from adbvoice.archive.layout import PRIVATE_DIR
from adbvoice.archive.metadata import AudioInfo, read_audio_info, read_tags
from adbvoice.display import text_path
from adbvoice.views.listing import minutes_seconds, note_json, transcript_json
from adbvoice.whatsapp import is_audio_name


@dataclass(frozen=True)
class NoteInfo:
    archive: Path
    note: NoteRow
    sightings: list[SightingRow]
    now: AudioInfo
    tags: dict[str, list[str]]
    file_size: int | None  # None: the file is missing
    transcripts: list[TranscriptRow]  # newest first, one per model

    def to_json(self) -> dict:
        return {
            "archive": str(self.archive),
            # as `ls --json` shows the note: its newest transcript included
            "catalog": {**note_json(self.note), "transcript": transcript_json(
                next((t for t in self.transcripts if t.error is None), None))},
            "sightings": [
                {**asdict(s), "phone_path": text_path(s.phone_path), "phone_path_hex": _hex_unless_utf8(s.phone_path)}
                for s in self.sightings
            ],
            "now": {**asdict(self.now), "tags": self.tags, "file_size": self.file_size},
            "transcripts": [transcript_json(t) for t in self.transcripts],
        }


def note_info(reference: str, archive: Path | None, *, default_archive: Path) -> NoteInfo:
    root, relpath, note_id = _locate(reference, archive, default_archive)
    opened = Archive.open(root, create=False)
    with reading(opened.catalog_path) as catalog:
        note = catalog.note_by_id(note_id) if note_id is not None else catalog.note_by_path(relpath.as_posix())
        if note is None:
            raise _unknown(reference, opened, relpath)
        sightings = catalog.sightings_of(note.id)
        transcripts = catalog.transcripts_of(note.sha256)
    path = opened.path_of(PurePosixPath(note.archive_path))
    try:
        size: int | None = path.stat().st_size
    except OSError:
        size = None
    return NoteInfo(opened.root, note, sightings, read_audio_info(path), read_tags(path), size, transcripts)


def _locate(reference: str, archive: Path | None, default_archive: Path) -> tuple[Path, PurePosixPath, int | None]:
    """(archive root, archive-relative path, catalog id) that `reference` names."""
    if reference.isdigit():
        return (archive or default_archive), PurePosixPath(), int(reference)
    on_disk = Path(reference).expanduser()
    if on_disk.is_file():
        full = on_disk.absolute()
        root = archive.expanduser().absolute() if archive else _archive_above(full)
        try:
            return root, PurePosixPath(full.relative_to(root).as_posix()), None
        except ValueError:
            raise errors.UnknownNoteError(f"{reference} is not inside the archive {root}") from None
    return (archive or default_archive), PurePosixPath(reference), None


def _archive_above(path: Path) -> Path:
    for folder in path.parents:
        if (folder / PRIVATE_DIR / "catalog.sqlite").is_file():
            return folder
    raise errors.NotAnArchiveError(f"{path} is not inside an adbvoice archive (no {PRIVATE_DIR}/catalog.sqlite above it)")


def _unknown(reference: str, archive: Archive, relpath: PurePosixPath) -> errors.UnknownNoteError:
    catalogable = relpath.parts and relpath.parts[0] != PRIVATE_DIR and is_audio_name(relpath.name)
    if catalogable and archive.path_of(relpath).is_file():
        return errors.UnknownNoteError(
            f"{reference} is in the archive but not in its catalog (`adbvoice catalog rebuild` catalogues it)"
        )
    return errors.UnknownNoteError(f"no note {reference} in the catalog of {archive.root}")


def _hex_unless_utf8(raw: bytes) -> str | None:
    """The exact bytes, as in `ls --json`, only where the text shown lost some."""
    return None if text_path(raw).encode() == raw else raw.hex()


def _when(mtime: int | None) -> str:
    return "" if mtime is None else f"  ({datetime.fromtimestamp(mtime):%Y-%m-%d %H:%M:%S})"


def info_lines(info: NoteInfo) -> list[str]:
    """Every catalog field as `name  value`, where it was seen, then the file as it is now."""
    note = info.note
    lines = [f"{PRIVATE_DIR}/catalog.sqlite of {info.archive}:"]
    for name, value in note_json(note).items():
        shown = "" if value is None else str(value)
        if name == "phone_mtime":
            shown += _when(note.phone_mtime)
        elif name == "duration_s" and value is not None:
            shown += f"  ({minutes_seconds(value)})"
        lines.append(f"  {name:<15} {shown}".rstrip())
    newest = next((t for t in info.transcripts if t.error is None), None)
    lines.append(f"  {'transcript':<15} {newest.text if newest else ''}".rstrip())
    lines.append("seen on the phone at:" if info.sightings else "seen on the phone at: (nowhere recorded)")
    for seen in info.sightings:
        lines.append(
            f"  {seen.device_serial}  {text_path(seen.phone_path)}  ({seen.size:,} bytes, "
            f"modified {datetime.fromtimestamp(seen.mtime):%Y-%m-%d %H:%M:%S}; first seen {seen.first_seen})"
        )
    now = info.now
    lines.append("the file now (read by mutagen):")
    lines.append(f"  {'file':<15} " + (f"{info.file_size:,} bytes" if info.file_size is not None else "missing"))
    for name, value in asdict(now).items():
        lines.append(f"  {name:<15} {'' if value is None else value}".rstrip())
    for key, values in info.tags.items():
        for value in values:
            lines.append(f"  tag {key} = {value}")
    if not info.transcripts:
        lines.append("transcript: none yet (`adbvoice transcribe` makes one)")
    for said in info.transcripts:
        lines += transcript_lines(said)
    return lines


def transcript_lines(said: TranscriptRow) -> list[str]:
    """One model's transcript, a line per sentence with where it starts and ends."""
    if said.error:
        return [f"transcript by {said.model}: none, {said.error}"]
    lines = [f"transcript ({_language_words(said)}; {said.model}, {said.transcribed_at}):"]
    for start, end, text in said.segments:
        lines.append(f"  [{minutes_seconds(start)} → {minutes_seconds(end)}] {text}")
    return lines


def _language_words(said: TranscriptRow) -> str:
    probability = f"{said.language_probability:.0%}" if said.language_probability is not None else "?"
    return {
        "only": f"{said.language}, English-only model",
        "forced": f"{said.language}, as asked",
        "detected": f"{said.language}, detected with {probability}",
        "fallback": f"{said.language}, the first of your languages: detection was unsure ({probability})",
    }.get(said.language_how or "", said.language or "?")
