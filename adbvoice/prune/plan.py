"""Which files on the phone a prune may delete, and why each other one stays: pure.

A file is a candidate only when it is a regular, audio-named file in a voice-note folder,
recorded before the cut-off day, and this very phone showed this very path with this size
and mtime to a backup that archived it (a sighting): so the catalog knows which archived
note holds its bytes. Being a candidate is not enough to be deleted: the archived copy
must still read back to its hash, and the phone's own hash of the file must equal it
(run.py checks both, now).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from adbvoice import errors
from adbvoice.archive.catalog import NoteRow, SightingRow
from adbvoice.phone.sync import RemoteEntry
from adbvoice.whatsapp import Source, is_audio_name

DEFAULT_AGE_DAYS = 90
"""Notes of the last three months stay on the phone: those are the ones people play again
in the chat, and a phone that is short of space gains most from the years before."""

NOT_A_NOTE = "not a voice note (only audio files are notes; .nomedia and the like stay)"
LINK = "a symbolic link: never followed, never deleted"
NOT_REGULAR = "not a regular file"
NOT_ARCHIVED = "not in the archive: back it up first"
CHANGED = "changed on the phone since it was archived (its size or time differ)"
OTHER_SOURCE = "in a source not chosen with --source"
ARCHIVE_MISSING = "its archived copy is missing (run adbvoice verify)"
ARCHIVE_DAMAGED = "its archived copy no longer reads back to the archived bytes (run adbvoice verify)"
PHONE_DIFFERS = "the phone's own hash of it differs from the archived copy's"
PHONE_UNHASHED = "the phone could not hash it"
CHANGED_AT_DELETION = "its bytes changed on the phone right before the deletion"
GONE_AT_DELETION = "no longer a regular file on the phone at the deletion"
NOT_DELETED = "the phone could not delete it"

_AGE = re.compile(r"^(\d+)([dwy]?)$")
_UNIT_DAYS = {"": 1, "d": 1, "w": 7, "y": 365}


def parse_age(text: str) -> int:
    """`90d`, `12w`, `2y` (or a bare number of days) as days; UsageError otherwise."""
    match = _AGE.match(text.strip().lower())
    if not match:
        raise errors.UsageError(f"--older-than {text!r}: use days, weeks or years, such as 90d, 12w or 1y")
    return int(match[1]) * _UNIT_DAYS[match[2]]


def too_recent(days: int) -> str:
    return f"recorded within the last {days:,} days"


@dataclass(frozen=True)
class Decision:
    """One file in a voice-note folder: deletable (`reason` None) or kept, and why."""

    path: bytes
    size: int
    note: NoteRow | None = None
    reason: str | None = None

    @property
    def deletable(self) -> bool:
        return self.reason is None

    def kept(self, reason: str) -> Decision:
        return Decision(self.path, self.size, self.note, reason)


def plan(
    entries: Sequence[RemoteEntry],
    sources: Sequence[Source],
    chosen: Sequence[Source],
    sightings: Mapping[bytes, SightingRow],
    notes: Mapping[int, NoteRow],
    cutoff: date,
    days: int,
) -> list[Decision]:
    """Every file below the voice-note `sources`, in path order, each deletable or kept
    with its reason; `chosen` are the sources the user asked to prune."""
    decisions = []
    for entry in sorted(entries, key=lambda e: e.path):
        source = next((s for s in sources if entry.path.startswith(s.path.encode() + b"/")), None)
        if source is None:
            continue
        decisions.append(_decide(entry, source in chosen, sightings, notes, cutoff, days))
    return decisions


def _decide(
    entry: RemoteEntry,
    chosen: bool,
    sightings: Mapping[bytes, SightingRow],
    notes: Mapping[int, NoteRow],
    cutoff: date,
    days: int,
) -> Decision:
    decision = Decision(entry.path, entry.stat.size)
    if entry.stat.is_link:
        return decision.kept(LINK)
    name = entry.path.rsplit(b"/", 1)[-1].decode("utf-8", "replace")
    if not is_audio_name(name):
        return decision.kept(NOT_A_NOTE)
    if not entry.stat.is_file:
        return decision.kept(NOT_REGULAR)
    if not chosen:
        return decision.kept(OTHER_SOURCE)
    seen = sightings.get(entry.path)
    note = notes.get(seen.note_id) if seen else None
    if seen is None or note is None:
        return decision.kept(NOT_ARCHIVED)
    decision = Decision(entry.path, entry.stat.size, note)
    if (seen.size, seen.mtime) != (entry.stat.size, entry.stat.mtime) or note.size != entry.stat.size:
        return decision.kept(CHANGED)
    if day_of(note, seen) >= cutoff:
        return decision.kept(too_recent(days))
    return decision


def day_of(note: NoteRow, seen: SightingRow) -> date:
    """The note's day as the archive files it; the phone's time where the catalog has none."""
    if note.recorded_on:
        return date.fromisoformat(note.recorded_on)
    return datetime.fromtimestamp(seen.mtime).date()


def cutoff_for(days: int, today: date) -> date:
    """Notes recorded before this day are old enough."""
    return today - timedelta(days=days)
