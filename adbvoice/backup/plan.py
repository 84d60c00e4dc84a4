"""Deciding what to copy: pure, from the phone's listing and what the catalog has seen.

A file is "already archived" when this phone showed the same path with the same size
and mtime to an earlier run; nothing archived is re-read or re-hashed to decide. Anything
else is copied and then deduplicated by content, so a note moved or renamed on the phone
ends up in the archive once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import PurePosixPath

from adbvoice.archive.layout import Layout, safe_name
from adbvoice.display import text_path
from adbvoice.phone.sync import RemoteEntry
from adbvoice.phone.wire import SYNC_PATH_MAX
from adbvoice.whatsapp import Source, date_from_name, is_audio_name


@dataclass(frozen=True)
class Candidate:
    """A file on the phone that is not archived yet."""

    path: bytes
    size: int
    mtime: int
    source: Source
    name: str  # safe local name
    renamed: bool  # the phone's name could not be used as it is
    day: date
    wanted: PurePosixPath  # where the layout puts it (before collision suffixes)


@dataclass
class Plan:
    copy: list[Candidate] = field(default_factory=list)
    already: int = 0
    notices: list[str] = field(default_factory=list)  # warnings about files we will not copy

    @property
    def bytes_to_copy(self) -> int:
        return sum(c.size for c in self.copy)


def source_of(path: bytes, sources: Sequence[Source]) -> Source | None:
    for source in sources:
        prefix = source.path.encode() + b"/"
        if path.startswith(prefix):
            return source
    return None


def note_day(name: str, mtime: int) -> date:
    """The recording day: from `PTT-YYYYMMDD-…` when the name has one, else the phone's
    mtime in this computer's local time."""
    return date_from_name(name) or datetime.fromtimestamp(mtime).date()


def make_plan(
    entries: Sequence[RemoteEntry],
    sources: Sequence[Source],
    seen: dict[bytes, tuple[int, int]],
    layout: Layout,
    device: str,
) -> Plan:
    plan = Plan()
    for entry in entries:
        source = source_of(entry.path, sources)
        raw_name = entry.path.rsplit(b"/", 1)[-1]
        name = safe_name(raw_name, portable_names=layout.portable_names)
        if source is None:
            continue
        shown = text_path(entry.path)
        if entry.stat.is_link:  # whatever its name: a linked folder may hold notes
            plan.notices.append(f"{shown}: a symbolic link, not followed")
            continue
        if not is_audio_name(name.name):
            continue
        if not entry.stat.is_file:
            plan.notices.append(f"{shown}: not a regular file, skipped")
            continue
        if len(entry.path) > SYNC_PATH_MAX:
            plan.notices.append(f"{shown}: the path is longer than adb can transfer ({len(entry.path)} bytes)")
            continue
        if seen.get(entry.path) == (entry.stat.size, entry.stat.mtime):
            plan.already += 1
            continue
        day = note_day(name.name, entry.stat.mtime)
        wanted = layout.render(day=day, name=name.name, source=source.kind, device=device)
        plan.copy.append(
            Candidate(entry.path, entry.stat.size, entry.stat.mtime, source, name.name, name.changed, day, wanted)
        )
    plan.copy.sort(key=lambda c: (c.day, c.path))
    return plan
