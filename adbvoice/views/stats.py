"""`stats`: what the archive holds, summed from its catalog, and its backup history."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from math import ceil
from pathlib import Path

from adbvoice.archive.catalog import NoteRow, RunRow, reading
from adbvoice.display import human_bytes, human_duration
from adbvoice.views.listing import catalog_notes

_BARS = "▁▂▃▄▅▆▇█"
_MONTH_LETTERS = "J F M A M J J A S O N D"


@dataclass
class Tally:
    notes: int = 0
    bytes: int = 0
    seconds: float = 0.0

    def add(self, note: NoteRow) -> None:
        self.notes += 1
        self.bytes += note.size
        self.seconds += note.duration_s or 0.0

    def words(self) -> str:
        noun = "note" if self.notes == 1 else "notes"
        return f"{self.notes:,} {noun}, {human_bytes(self.bytes)}, {human_duration(self.seconds)}"


@dataclass
class ArchiveStats:
    archive: str
    total: Tally = field(default_factory=Tally)
    unreadable: int = 0
    pruned: int = 0  # deleted from the phone by `prune`; the archive keeps them
    devices: dict[tuple[str | None, str | None], Tally] = field(default_factory=dict)  # (serial, model)
    months: dict[str, Tally] = field(default_factory=dict)  # "2021-03"; "unknown" when undated
    first: NoteRow | None = None
    last: NoteRow | None = None
    runs: int = 0
    last_run: RunRow | None = None

    def years(self) -> dict[str, Tally]:
        years: dict[str, Tally] = {}
        for month, tally in self.months.items():
            year = years.setdefault(month[:4] if month != "unknown" else month, Tally())
            year.notes += tally.notes
            year.bytes += tally.bytes
            year.seconds += tally.seconds
        return years

    def to_json(self) -> dict:
        def edge(note: NoteRow | None) -> dict | None:
            return None if note is None else {"id": note.id, "archive_path": note.archive_path, "recorded_on": note.recorded_on}

        return {
            "archive": self.archive,
            "notes": self.total.notes,
            "unreadable": self.unreadable,
            "pruned": self.pruned,
            "bytes": self.total.bytes,
            "seconds": round(self.total.seconds, 3),
            "devices": [
                {"serial": serial, "model": model, **_rounded(tally)} for (serial, model), tally in self.devices.items()
            ],
            "years": [{"year": year, **_rounded(tally)} for year, tally in self.years().items()],
            "months": [{"month": month, **_rounded(tally)} for month, tally in self.months.items()],
            "first": edge(self.first),
            "last": edge(self.last),
            "runs": {"count": self.runs, "last": asdict(self.last_run) if self.last_run else None},
        }


def _rounded(tally: Tally) -> dict:
    return {"notes": tally.notes, "bytes": tally.bytes, "seconds": round(tally.seconds, 3)}


def archive_stats(root: Path) -> ArchiveStats:
    archive, notes = catalog_notes(root)
    with reading(archive.catalog_path) as catalog:
        runs = catalog.runs()
    stats = ArchiveStats(str(archive.root), runs=len(runs), last_run=runs[-1] if runs else None)
    for note in notes:  # in recording order
        stats.total.add(note)
        stats.unreadable += note.audio_error is not None
        stats.pruned += note.pruned_at is not None
        stats.devices.setdefault((note.device_serial, note.device_model), Tally()).add(note)
        month = note.recorded_on[:7] if note.recorded_on else "unknown"
        stats.months.setdefault(month, Tally()).add(note)
    stats.months = dict(sorted(stats.months.items()))
    stats.first, stats.last = (notes[0], notes[-1]) if notes else (None, None)
    return stats


def stats_lines(stats: ArchiveStats, *, histogram: bool) -> list[str]:
    """The summary for a person; `histogram` (on a terminal) draws the months as one
    compact row of bars per year instead of a line per year and per month."""
    total = stats.total
    lines = [f"Archive     {stats.archive}"]
    if not total.notes:
        lines.append("Notes       none yet")
    else:
        unreadable = f" ({stats.unreadable:,} unreadable)" if stats.unreadable else ""
        lines += [
            f"Notes       {total.notes:,}{unreadable}",
            f"Size        {human_bytes(total.bytes)}",
            f"Listening   {human_duration(total.seconds)}",
            *([f"On phone    no longer, for {stats.pruned:,} (deleted by prune; kept here)"] if stats.pruned else []),
            f"First note  {stats.first.recorded_on}  {stats.first.archive_path}",
            f"Last note   {stats.last.recorded_on}  {stats.last.archive_path}",
        ]
    lines.append(f"Runs        {_runs_line(stats)}")
    if not total.notes:
        return lines
    lines += ["", "Devices"]
    for (serial, model), tally in stats.devices.items():
        name = f"{model} ({serial})" if model or serial else "unknown (notes catalogued by a rebuild)"
        lines.append(f"  {name}: {tally.words()}")
    lines.append("")
    lines += _histogram(stats) if histogram else _period_lines(stats)
    return lines


def _runs_line(stats: ArchiveStats) -> str:
    run = stats.last_run
    if run is None:
        return "none"
    when = run.started_at.replace("T", " ")[:16] + " UTC"
    outcome = run.outcome or "unfinished"
    message = f" ({run.message})" if run.message else ""
    return f"{stats.runs:,} so far; the last started {when}: {outcome}{message}"


def _period_lines(stats: ArchiveStats) -> list[str]:
    lines = ["By year"]
    lines += [f"  {year}: {tally.words()}" for year, tally in stats.years().items()]
    lines.append("By month")
    lines += [f"  {month}: {tally.words()}" for month, tally in stats.months.items()]
    return lines


def _histogram(stats: ArchiveStats) -> list[str]:
    """Notes per month as bars, one row a year: `2021  ▂▁▃█ ▁▂▄▂▁▁▁▂  24 notes`."""
    peak = max(t.notes for t in stats.months.values())
    lines = [f"Notes a month  {_MONTH_LETTERS}"]
    for year, tally in stats.years().items():
        if year == "unknown":
            lines.append(f"  undated      {'':{len(_MONTH_LETTERS)}}  {tally.notes:,}")
            continue
        cells = []
        for month in range(1, 13):
            count = stats.months.get(f"{year}-{month:02d}", Tally()).notes
            cells.append(_BARS[max(0, ceil(count / peak * len(_BARS)) - 1)] if count else "·")
        lines.append(f"  {year}         {' '.join(cells)}  {tally.notes:,}")
    lines.append(f"  (█ = {peak:,} notes in a month, · = none)")
    return lines
