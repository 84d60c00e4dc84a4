"""What a backup tells the person (or cron) who started it, once it ends: a RunReport.
Pure values; the CLI decides how to show them (events.py carries what happens meanwhile)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from adbvoice.display import human_bytes, human_duration
from adbvoice.errors import EXIT_OK, EXIT_SOME_FAILED, EXIT_WARNINGS


@dataclass(frozen=True)
class NewNote:
    archive_path: str
    phone_path: str
    size: int
    duration_s: float | None
    audio_error: str | None


@dataclass(frozen=True)
class PlannedCopy:
    phone_path: str
    archive_path: str
    size: int


@dataclass
class RunReport:
    device: str | None = None
    device_serial: str | None = None
    device_model: str | None = None
    listed_by: str | None = None
    dry_run: bool = False
    new_notes: list[NewNote] = field(default_factory=list)
    planned: list[PlannedCopy] = field(default_factory=list)
    already: int = 0
    duplicates: int = 0  # copied, then found to be a note already archived (moved or renamed)
    bytes_copied: int = 0
    warnings: list[str] = field(default_factory=list)  # told by this run: exit 3
    known_warnings: list[str] = field(default_factory=list)  # lasting, told by an earlier run: not again
    errors: list[str] = field(default_factory=list)
    # Warnings about the phone's lasting state found by this run, told or known: what the
    # catalog records as told (Catalog.remember_reported).
    lasting: list[str] = field(default_factory=list, repr=False)

    @property
    def audio_seconds(self) -> float:
        return sum(n.duration_s or 0.0 for n in self.new_notes)

    @property
    def exit_code(self) -> int:
        if self.errors:
            return EXIT_SOME_FAILED
        return EXIT_WARNINGS if self.warnings else EXIT_OK

    @property
    def outcome(self) -> str:
        if self.dry_run:
            return "dry-run"
        return {EXIT_OK: "ok", EXIT_WARNINGS: "warnings", EXIT_SOME_FAILED: "some-failed"}[self.exit_code]

    def summary_line(self) -> str:
        """One line for cron mail and logs: `12 new voice notes (3.1 MB, 14 min of audio), …`."""
        already = self.already + self.duplicates
        tail = f"{already:,} already archived, {_plural(len(self.warnings), 'warning')}"
        if self.known_warnings:
            tail += f" ({len(self.known_warnings):,} told before, -v shows them)"
        if self.errors:
            tail += f", {_plural(len(self.errors), 'error')}"
        if self.dry_run:
            size = human_bytes(sum(p.size for p in self.planned))
            return f"dry run: would copy {_plural(len(self.planned), 'voice note')} ({size}), {tail}"
        count = len(self.new_notes)
        if not count:
            return f"no new voice notes, {tail}"
        audio = human_duration(self.audio_seconds)
        return f"{_plural(count, 'new voice note')} ({human_bytes(self.bytes_copied)}, {audio} of audio), {tail}"

    def to_json(self) -> dict:
        data = asdict(self)
        del data["lasting"]
        data.update(
            exit_code=self.exit_code,
            outcome=self.outcome,
            audio_seconds=round(self.audio_seconds, 3),
            summary=self.summary_line(),
        )
        return data


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"
