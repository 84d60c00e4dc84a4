"""`export --html`: one static page to browse and listen to the archive, offline.

The page is a single file: its style and script are inline, the notes are a JSON block
the script renders a page at a time (a 10,000-note archive opens as fast as a small one),
and each player links to the note's file by a relative URL — so it works from `file://`
with no server, and keeps working when the archive folder moves with the page inside it.
A Content-Security-Policy forbids every network request.
"""

from __future__ import annotations

import html
import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.resources import files
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from adbvoice import __version__, errors
from adbvoice.archive.catalog import NoteRow, TranscriptRow
from adbvoice.archive.folder import FILE_MODE
from adbvoice.archive.layout import PAGE_NAME
from adbvoice.display import human_bytes, human_duration
from adbvoice.views.listing import catalog_notes, clock_time, latest_transcripts

DEFAULT_PAGE = PAGE_NAME


@dataclass(frozen=True)
class Exported:
    path: Path
    notes: int


def export_html(root: Path, output: Path | None) -> Exported:
    """Write the page (0600: it lists private notes) to `output`, by default into the
    archive folder; replaces an earlier export whole, never half."""
    archive, notes = catalog_notes(root)
    target = (output.expanduser() if output else archive.root / DEFAULT_PAGE).absolute()
    if target.is_dir():
        target = target / DEFAULT_PAGE
    to_archive = PurePosixPath(Path(os.path.relpath(archive.root, target.parent)).as_posix())
    page = render_page(notes, to_archive, title=archive.root.name, said=latest_transcripts(archive.root))
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(page)
        os.replace(temp, target)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise errors.ArchiveNotWritableError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return Exported(target, len(notes))


def render_page(
    notes: list[NoteRow], to_archive: PurePosixPath, *, title: str, said: dict[str, TranscriptRow]
) -> str:
    """The page, newest note first; `to_archive` leads from the page's folder to the archive;
    `said` holds the newest transcript of each note's bytes."""
    rows = [_note_data(n, to_archive, said.get(n.sha256)) for n in reversed(notes)]
    data = json.dumps(rows, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    template = files("adbvoice.views").joinpath("page.html").read_text(encoding="utf-8")
    exported = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    values = {
        "{{TITLE}}": html.escape(title),
        "{{TOTALS}}": html.escape(_totals(notes)),
        "{{EXPORTED}}": html.escape(f"Exported {exported} by adbvoice {__version__}."),
        "{{NOTES_JSON}}": data,
    }
    # One pass, so that no value (a folder name, a note's name) is read as a marker.
    return re.sub(r"\{\{[A-Z_]+\}\}", lambda marker: values[marker[0]], template)


def _note_data(note: NoteRow, to_archive: PurePosixPath, said: TranscriptRow | None) -> dict:
    """What the page shows of a note, with short keys (10,000 of these are inlined)."""
    parts = [] if str(to_archive) == "." else list(to_archive.parts)
    url = "/".join(quote(p, safe="") for p in [*parts, *PurePosixPath(note.archive_path).parts])
    return {
        "d": note.recorded_on or "",
        "t": clock_time(note.phone_mtime),
        "s": note.duration_s,
        "b": note.size,
        "u": url,
        "p": note.archive_path,
        "n": PurePosixPath(note.archive_path).name,
        "m": note.device_model or "",
        "f": note.source or "",  # the word ls shows and --source takes
        "c": note.codec or "",
        "e": note.audio_error,
        "o": note.pruned_at[:10] if note.pruned_at else None,  # the day a prune deleted it from the phone
        "l": said.language if said else None,
        "x": [[start, text] for start, _, text in said.segments] if said else None,  # each sentence and its start
    }


def _totals(notes: list[NoteRow]) -> str:
    if not notes:
        return "No notes in the archive yet."
    seconds = sum(n.duration_s or 0.0 for n in notes)
    words = [
        f"{len(notes):,} note{'s' if len(notes) != 1 else ''}",
        f"{human_duration(seconds)} of audio",
        human_bytes(sum(n.size for n in notes)),
        f"{notes[0].recorded_on} to {notes[-1].recorded_on}",
    ]
    unreadable = sum(n.audio_error is not None for n in notes)
    if unreadable:
        words.append(f"{unreadable:,} unreadable")
    return " · ".join(words)
