"""What a prune tells the person who started it: every file's fate, and one summary line."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from adbvoice.display import human_bytes, text_path
from adbvoice.errors import EXIT_OK, EXIT_WARNINGS
from adbvoice.prune import plan
from adbvoice.prune.plan import Decision

# Kept for a reason the user should hear of: something is not as the archive expects.
_WORRYING = {
    plan.CHANGED, plan.ARCHIVE_MISSING, plan.ARCHIVE_DAMAGED, plan.PHONE_DIFFERS, plan.PHONE_UNHASHED,
    plan.CHANGED_AT_DELETION, plan.GONE_AT_DELETION, plan.NOT_DELETED,
}


@dataclass
class PruneReport:
    days: int
    dry_run: bool = False
    device: str | None = None
    hash_tool: str | None = None  # what the phone hashed with: sha256sum, or md5sum
    decisions: list[Decision] = field(default_factory=list)  # every file in the voice-note folders
    deleted: list[Decision] = field(default_factory=list)
    declined: bool = False  # the user said no when asked

    @property
    def deletable(self) -> list[Decision]:
        return [d for d in self.decisions if d.deletable]

    @property
    def kept(self) -> list[Decision]:
        return [d for d in self.decisions if not d.deletable]

    @property
    def freed(self) -> int:
        return sum(d.size for d in self.deleted)

    @property
    def warnings(self) -> list[str]:
        """One line per note kept for a worrying reason; notes not archived yet, counted."""
        lines = [f"{text_path(d.path)}: kept: {d.reason}" for d in self.kept if d.reason in _WORRYING]
        old_unarchived = sum(d.reason == plan.NOT_ARCHIVED for d in self.kept)
        if old_unarchived:
            are, stay = ("s are", "stay") if old_unarchived != 1 else (" is", "stays")
            lines.append(f"{old_unarchived:,} note{are} not in the archive yet and {stay} on the phone: back up first")
        return lines

    @property
    def exit_code(self) -> int:
        return EXIT_WARNINGS if self.warnings else EXIT_OK

    def summary_line(self) -> str:
        """`freed 1.2 GB: 3,412 notes older than 90 days, all verified in the archive`."""
        older = f"older than {self.days:,} days"
        if self.dry_run or self.declined:
            ready = self.deletable
            head = "dry run: would free" if self.dry_run else "nothing deleted (you said no); would have freed"
            return (f"{head} {human_bytes(sum(d.size for d in ready))}: {_notes(len(ready))} {older}, "
                    f"all verified in the archive; {len(self.kept):,} kept")
        if not self.deleted:
            return f"nothing to prune: no note {older} whose bytes the archive holds ({len(self.kept):,} kept)"
        return (f"freed {human_bytes(self.freed)}: {_notes(len(self.deleted))} {older}, all verified in the "
                f"archive; {len(self.kept):,} kept")

    def reasons(self) -> Counter[str]:
        return Counter(d.reason for d in self.kept)

    def to_json(self) -> dict:
        def item(decision: Decision) -> dict:
            return {
                "phone_path": text_path(decision.path),
                "size": decision.size,
                "archive_path": decision.note.archive_path if decision.note else None,
                "recorded_on": decision.note.recorded_on if decision.note else None,
                "reason": decision.reason,
            }

        deleted = {d.path for d in self.deleted}
        return {
            "device": self.device,
            "older_than_days": self.days,
            "dry_run": self.dry_run,
            "declined": self.declined,
            "hash_tool": self.hash_tool,
            "deleted": [item(d) for d in self.deleted],
            "kept": [item(d) for d in self.kept],
            "deletable_not_deleted": [item(d) for d in self.deletable if d.path not in deleted],
            "bytes_freed": self.freed,
            "warnings": self.warnings,
            "exit_code": self.exit_code,
            "summary": self.summary_line(),
        }


def _notes(count: int) -> str:
    return f"{count:,} note" if count == 1 else f"{count:,} notes"
