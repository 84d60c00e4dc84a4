"""What a restore or a send tells the person who started it: each file's fate, one summary line."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from adbvoice.display import human_bytes, printable, text_path
from adbvoice.errors import EXIT_OK, EXIT_SOME_FAILED, EXIT_WARNINGS, AdbVoiceError
from adbvoice.restore import plan, pushing
from adbvoice.restore.plan import Decision
from adbvoice.restore.pushing import Outcome

_FAILED = (pushing.FAILED, pushing.DIFFERS, pushing.FULL, pushing.NOT_WRITABLE, pushing.NOT_PUSHED)


def _files(count: int, word: str = "note") -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


@dataclass
class RestoreReport:
    dry_run: bool = False
    device: str | None = None
    decisions: list[Decision] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)  # of the pushes, in push order
    stopped: AdbVoiceError | None = None  # the phone was full, or a folder not writable

    def fates(self) -> list[tuple[Decision, str, str]]:
        """(decision, what became of it, why) for every decision, pushes resolved."""
        pushed = {o.upload.final: o for o in self.outcomes}
        found = []
        for d in self.decisions:
            if d.action == plan.PUSH and d.path in pushed:
                outcome = pushed[d.path]
                found.append((d, "restored" if outcome.state == pushing.PUSHED else outcome.state, outcome.message))
            elif d.action == plan.PUSH:
                found.append((d, "would restore", ""))
            else:
                found.append((d, d.action, d.reason))
        return found

    @property
    def restored(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.state == pushing.PUSHED]

    @property
    def warnings(self) -> list[str]:
        lines = []
        for decision, fate, why in self.fates():
            if fate in (plan.CONFLICT, pushing.TAKEN, pushing.DAMAGED, *_FAILED):
                lines.append(printable(f"{text_path(decision.path)}: {fate}: {why} (archived as "
                                       f"{decision.note.archive_path})"))
        return lines

    @property
    def exit_code(self) -> int:
        if self.stopped is not None:
            return self.stopped.exit_code
        if any(o.state in _FAILED for o in self.outcomes):
            return EXIT_SOME_FAILED
        return EXIT_WARNINGS if self.warnings else EXIT_OK

    def summary_line(self) -> str:
        """`restored 24 notes (1.1 MB) to Pixel 7 (EMU0001); 3 already there, 1 left alone`."""
        counts = Counter(fate for _, fate, _ in self.fates())
        if self.dry_run:
            ready = [d for d in self.decisions if d.action == plan.PUSH]
            head = f"dry run: would restore {_files(len(ready))} ({human_bytes(sum(d.note.size for d in ready))})"
        elif self.restored:
            head = f"restored {_files(len(self.restored))} ({human_bytes(sum(o.upload.size for o in self.restored))})"
        else:
            head = "nothing to restore"
        tail = [f"{counts[plan.THERE]:,} already there"]
        tail += [f"{counts[fate]:,} {fate}" for fate in (plan.CONFLICT, pushing.DAMAGED, pushing.TAKEN) if counts[fate]]
        failed = sum(counts[fate] for fate in _FAILED)
        if failed:
            tail.append(f"{failed:,} not restored")
        if counts[plan.SKIP]:
            tail.append(f"{counts[plan.SKIP]:,} without a phone path to restore to")
        return f"{head} to {self.device}; {', '.join(tail)}"

    def to_json(self) -> dict:
        return {
            "device": self.device,
            "dry_run": self.dry_run,
            "restored": len(self.restored),
            "bytes": sum(o.upload.size for o in self.restored),
            "stopped": str(self.stopped) if self.stopped else None,
            "notes": [
                {"archive_path": d.note.archive_path, "phone_path": text_path(d.path) if d.path else None,
                 "fate": fate, "reason": why or None}
                for d, fate, why in self.fates()
            ],
            "exit_code": self.exit_code,
        }


@dataclass
class SendReport:
    device: str | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    already: list[tuple[str, bytes]] = field(default_factory=list)  # (file, where it already is)
    scanned: list[bytes] = field(default_factory=list)
    shared: bytes | None = None  # the file handed to WhatsApp's share sheet
    stopped: AdbVoiceError | None = None

    @property
    def sent(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.state == pushing.PUSHED]

    @property
    def failures(self) -> list[str]:
        return [printable(f"{o.upload.source}: not sent: {o.state}: {o.message}") for o in self.outcomes
                if o.state != pushing.PUSHED]

    @property
    def exit_code(self) -> int:
        if self.stopped is not None:
            return self.stopped.exit_code
        return EXIT_SOME_FAILED if self.failures else EXIT_OK

    def places(self) -> Sequence[bytes]:
        return [o.upload.final for o in self.sent] + [where for _, where in self.already]

    def summary_line(self) -> str:
        parts = [f"sent {_files(len(self.sent), 'file')} "
                 f"({human_bytes(sum(o.upload.size for o in self.sent))}) to {self.device}"]
        if self.already:
            parts.append(f"{len(self.already):,} already there")
        if self.shared:
            parts.append("WhatsApp's share sheet is open on the phone: pick the chat")
        return "; ".join(parts)

    def to_json(self) -> dict:
        return {
            "device": self.device,
            "sent": [{"file": str(o.upload.source), "phone_path": text_path(o.upload.final)} for o in self.sent],
            "already_there": [{"file": name, "phone_path": text_path(where)} for name, where in self.already],
            "not_sent": [{"file": str(o.upload.source), "why": f"{o.state}: {o.message}"}
                         for o in self.outcomes if o.state != pushing.PUSHED],
            "scanned": [text_path(p) for p in self.scanned],
            "shared": text_path(self.shared) if self.shared else None,
            "stopped": str(self.stopped) if self.stopped else None,
            "exit_code": self.exit_code,
        }
