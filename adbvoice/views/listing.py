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
from adbvoice.whatsapp import kinds_named

FORMATS = ("table", "json", "csv")
# note_json's keys, in order: the catalog's columns, with the raw phone path as hex.
# `transcript` is the newest transcript: an object in JSON, its text in CSV.
JSON_FIELDS = [f for f in NoteRow.__dataclass_fields__ if f != "phone_path_raw"] + ["phone_path_hex", "transcript"]
_DAY = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_DURATION = re.compile(r"^(?:(\d+):)?(\d+(?:\.\d+)?)s?$")


@dataclass(frozen=True)
class NoteFilter:
    """What `ls` keeps; every bound is inclusive, and an empty filter keeps everything."""

    since: date | None = None
    until: date | None = None
    devices: tuple[str, ...] = ()  # model or serial, any case
    sources: frozenset[str] = frozenset()  # the catalog's source words (whatsapp.kinds_named)
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
        if self.sources and note.source not in self.sources:
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
    return NoteFilter(
        since=parse_day(since, "--since", end=False) if since else None,
        until=parse_day(until, "--until", end=True) if until else None,
        devices=tuple(d.lower() for d in devices),
        sources=frozenset().union(*map(kinds_named, sources)),
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


_NOTE, _AUDIO = 6, 7  # the columns that may be long: a name of 255 bytes, why audio is unreadable
_KEPT = 40  # a NOTE cell is never cut below this: the default layout's paths are 35 characters


def table_lines(notes: Sequence[NoteRow], *, header: bool, width: int | None = None) -> list[str]:
    """Aligned columns, one line per note; the header only when a person is reading.
    With `width` (a terminal's), every line fits it: the NOTE and AUDIO cells that are too
    long lose their middle to an ellipsis (the date, time, length and size never do), so
    no line wraps; without it (a pipe) each line is whole."""
    rows = [[value(n) for _, value, _ in _TABLE] for n in notes]
    if header:
        rows.insert(0, [title for title, _, _ in _TABLE])
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(len(_TABLE))]
    if width is not None:
        _fit(widths, width)
    last = len(_TABLE) - 1
    return [
        "  ".join(
            cell.rjust(widths[i]) if right else (cell if i == last else cell.ljust(widths[i]))
            for i, (cell, (_, _, right)) in enumerate(zip(_shortened(row, widths), _TABLE))
        )
        for row in rows
    ]


def _fit(widths: list[int], width: int) -> None:
    """Narrow the NOTE and AUDIO columns until a line fits in `width - 1` columns (a line
    as wide as the terminal wraps on some): AUDIO first, to a third of the room left (never
    below its header), then NOTE, never below _KEPT characters: on a terminal too narrow
    for those, lines wrap rather than lose the names that tell notes apart."""
    room = width - 1 - sum(w for i, w in enumerate(widths) if i not in (_NOTE, _AUDIO)) - 2 * (len(widths) - 1)
    if widths[_NOTE] + widths[_AUDIO] <= room:
        return
    audio = min(widths[_AUDIO], max(room // 3, len("AUDIO")))
    note = min(widths[_NOTE], max(room - audio, _KEPT))
    widths[_NOTE], widths[_AUDIO] = note, min(widths[_AUDIO], max(room - note, audio))


def _shortened(row: list[str], widths: list[int]) -> list[str]:
    return [middle_ellipsis(cell, widths[i]) if i in (_NOTE, _AUDIO) else cell for i, cell in enumerate(row)]


def middle_ellipsis(text: str, width: int) -> str:
    """`text` in `width` characters: its start and its end (a note's extension) around "…"."""
    if len(text) <= width:
        return text
    tail = (width - 1) // 2
    return text[: width - 1 - tail] + "…" + (text[-tail:] if tail else "")


def note_json(note: NoteRow) -> dict:
    data = asdict(note)
    raw = data.pop("phone_path_raw")
    data["phone_path_hex"] = raw.hex() if raw is not None else None
    return data


# A spreadsheet runs a cell starting with one of these as a formula (OWASP, "CSV Injection"):
# a phone's model or a note's name could be `=HYPERLINK(...)`.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A text cell a spreadsheet shows as text: a leading ' where it would start a formula."""
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_STARTS) else value


def notes_csv(notes: Sequence[NoteRow], said: dict[str, TranscriptRow]) -> str:
    """The JSON fields as CSV columns, an empty cell for null, a transcript as its text, no
    cell a formula."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=JSON_FIELDS, lineterminator="\n")
    writer.writeheader()
    for note in notes:
        found = said.get(note.sha256)
        row = {**note_json(note), "transcript": found.text if found else None}
        writer.writerow({key: csv_cell(value) for key, value in row.items()})
    return out.getvalue()
