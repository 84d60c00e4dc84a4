"""Reading the archive back: which notes (`ls` filters) and how to show them (table, JSON, CSV).

Filtering happens here in Python over the catalog's rows: even 10,000 notes are a few
megabytes, and one place that decides "matches" keeps `ls`, `stats` and `export` agreeing.
"""

from __future__ import annotations

import csv
import io
import re
from calendar import monthrange
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path

from adbvoice.archive.catalog import NoteRow, TranscriptRow, reading
from adbvoice.archive.folder import Archive
from adbvoice.display import human_bytes
from adbvoice.errors import UsageError
from adbvoice.whatsapp import AUDIO_SOURCES, SOURCE_FAMILIES, VOICE_SOURCES

FORMATS = ("table", "json", "csv")
# note_json's keys, in order: the catalog's columns, with the raw phone path as hex.
# `transcript` is the newest transcript: an object in JSON, its text in CSV.
JSON_FIELDS = [f for f in NoteRow.__dataclass_fields__ if f != "phone_path_raw"] + ["phone_path_hex", "transcript"]
_FAMILY_OF_KIND = {s.kind: s.family for s in VOICE_SOURCES + AUDIO_SOURCES}
_DAY = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_DURATION = re.compile(r"^(?:(\d+):)?(\d+(?:\.\d+)?)s?$")


@dataclass(frozen=True)
class NoteFilter:
    """What `ls` keeps; every bound is inclusive, and an empty filter keeps everything."""

    since: date | None = None
    until: date | None = None
    devices: tuple[str, ...] = ()  # model or serial, any case
    families: tuple[str, ...] = ()  # personal, business, legacy, audio
    min_duration: float | None = None
    max_duration: float | None = None
    unreadable: bool = False

    def matches(self, note: NoteRow) -> bool:
        day = note.recorded_on or ""
        if self.since and day < self.since.isoformat():  # an undated note ("") is before any day
            return False
        if self.until and not (day and day <= self.until.isoformat()):
            return False
        if self.devices and not {(note.device_model or "").lower(), (note.device_serial or "").lower()} & set(self.devices):
            return False
        if self.families and source_family(note.source) not in self.families:
            return False
        if self.unreadable and note.audio_error is None:
            return False
        if self.min_duration is not None or self.max_duration is not None:
            if note.duration_s is None:
                return False
            if self.min_duration is not None and note.duration_s < self.min_duration:
                return False
            if self.max_duration is not None and note.duration_s > self.max_duration:
                return False
        return True


def make_filter(
    *,
    since: str | None = None,
    until: str | None = None,
    devices: Sequence[str] = (),
    sources: Sequence[str] = (),
    min_duration: str | None = None,
    max_duration: str | None = None,
    unreadable: bool = False,
) -> NoteFilter:
    """A NoteFilter from the command line's words; UsageError names the bad one."""
    families = tuple(s.lower() for s in sources)
    for family in families:
        if family not in SOURCE_FAMILIES:
            raise UsageError(f"--source {family!r}: use one of {', '.join(SOURCE_FAMILIES)}")
    return NoteFilter(
        since=parse_day(since, "--since", end=False) if since else None,
        until=parse_day(until, "--until", end=True) if until else None,
        devices=tuple(d.lower() for d in devices),
        families=families,
        min_duration=parse_duration(min_duration, "--min-duration") if min_duration else None,
        max_duration=parse_duration(max_duration, "--max-duration") if max_duration else None,
        unreadable=unreadable,
    )


def parse_day(text: str, option: str, *, end: bool) -> date:
    """`2021-03-07`, `2021-03` or `2021`; a month or year means its first day, or its
    last with `end` (so `--since 2021-03 --until 2021-03` is all of March)."""
    match = _DAY.match(text.strip())
    try:
        if not match:
            raise ValueError
        year = int(match[1])
        month = int(match[2]) if match[2] else (12 if end else 1)
        day = int(match[3]) if match[3] else (monthrange(year, month)[1] if end else 1)
        return date(year, month, day)
    except ValueError:
        raise UsageError(f"{option} {text!r}: use a date such as 2021-03-07, 2021-03 or 2021") from None


def parse_duration(text: str, option: str) -> float:
    """Seconds: `90`, `90s`, `1:30`."""
    match = _DURATION.match(text.strip())
    if not match:
        raise UsageError(f"{option} {text!r}: use seconds (90) or minutes:seconds (1:30)")
    return int(match[1] or 0) * 60 + float(match[2])


def source_family(kind: str | None) -> str | None:
    return _FAMILY_OF_KIND.get(kind or "")


def catalog_notes(root: Path) -> tuple[Archive, list[NoteRow]]:
    """Every catalogued note, in recording order (day, then the phone's time)."""
    archive = Archive.open(root, create=False)
    with reading(archive.catalog_path) as catalog:
        notes = list(catalog.notes())
    notes.sort(key=lambda n: (n.recorded_on or "", n.phone_mtime or 0, n.archive_path))
    return archive, notes


def list_archive(root: Path, keep: NoteFilter | None = None) -> list[NoteRow]:
    _, notes = catalog_notes(root)
    return [n for n in notes if keep is None or keep.matches(n)]


def latest_transcripts(root: Path) -> dict[str, TranscriptRow]:
    """sha256 → the newest transcript of those bytes (`ls --json` and the page show it)."""
    archive = Archive.open(root, create=False)
    with reading(archive.catalog_path) as catalog:
        return catalog.latest_transcripts()


def transcript_json(found: TranscriptRow | None) -> dict | None:
    if found is None:
        return None
    return {
        "model": found.model, "language": found.language, "language_probability": found.language_probability,
        "language_how": found.language_how, "text": found.text,
        "segments": [{"start_s": start, "end_s": end, "text": text} for start, end, text in found.segments],
        "transcribed_at": found.transcribed_at,
    }


def minutes_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-:--"
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def clock_time(mtime: int | None) -> str:
    """The phone's time of the note, HH:MM in this computer's time zone."""
    return datetime.fromtimestamp(mtime).strftime("%H:%M") if mtime is not None else "--:--"


def audio_status(note: NoteRow) -> str:
    return f"unreadable: {note.audio_error}" if note.audio_error else (note.codec or "?")


_TABLE = (  # header, value, right-aligned
    ("DATE", lambda n: n.recorded_on or "?", False),
    ("TIME", lambda n: clock_time(n.phone_mtime), False),
    ("LENGTH", lambda n: minutes_seconds(n.duration_s), True),
    ("SIZE", lambda n: human_bytes(n.size), True),
    ("SOURCE", lambda n: n.source or "?", False),
    ("DEVICE", lambda n: n.device_model or "?", False),
    ("NOTE", lambda n: n.archive_path, False),
    ("AUDIO", audio_status, False),
)


def table_lines(notes: Sequence[NoteRow], *, header: bool) -> list[str]:
    """Aligned columns, one line per note; the header only when a person is reading."""
    rows = [[value(n) for _, value, _ in _TABLE] for n in notes]
    if header:
        rows.insert(0, [title for title, _, _ in _TABLE])
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(len(_TABLE))]
    last = len(_TABLE) - 1
    return [
        "  ".join(
            cell.rjust(widths[i]) if right else (cell if i == last else cell.ljust(widths[i]))
            for i, (cell, (_, _, right)) in enumerate(zip(row, _TABLE))
        )
        for row in rows
    ]


def note_json(note: NoteRow) -> dict:
    data = asdict(note)
    raw = data.pop("phone_path_raw")
    data["phone_path_hex"] = raw.hex() if raw is not None else None
    return data


def notes_csv(notes: Sequence[NoteRow], said: dict[str, TranscriptRow]) -> str:
    """The JSON fields as CSV columns, an empty cell for null, a transcript as its text."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=JSON_FIELDS, lineterminator="\n")
    writer.writeheader()
    for note in notes:
        found = said.get(note.sha256)
        writer.writerow({**note_json(note), "transcript": found.text if found else None})
    return out.getvalue()
