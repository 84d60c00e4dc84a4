"""What the desktop is told when a backup nobody is watching ends: the notes are safe (and
the phone may be unplugged), it failed and what to do, or the phone waits for a tap.

One notification per backup, none when nothing was new. Showing it can never fail the
backup: when no notification service is reachable, that is said once (`on_unavailable`)
and the watch or the backup goes on; later backups still try, since a desktop session may
start after the service that runs `watch`.
"""

from __future__ import annotations

from collections.abc import Callable

from adbvoice import errors
from adbvoice.backup.report import RunReport
from adbvoice.display import human_duration
from adbvoice.unattended import desktop
from adbvoice.unattended.desktop import Notice, NotificationUnavailable


def saved(report: RunReport, *, unplug: bool, always: bool = False) -> Notice | None:
    """`Pixel 7 (R58M12345): 12 new voice notes saved` / `14 min of audio. Safe to unplug.`;
    when nothing was new, nothing (or, with `always`, that nothing was new)."""
    count = len(report.new_notes)
    if report.dry_run:
        return None
    if not count:
        if not always or report.errors:
            return None
        return Notice(f"{report.device}: no new voice notes",
                      "Safe to unplug." if unplug else "Everything was archived already.")
    notes = "1 new voice note" if count == 1 else f"{count:,} new voice notes"
    body = [f"{human_duration(report.audio_seconds)} of audio."]
    if report.errors:
        failed = len(report.errors)
        body.append(f"{failed:,} could not be copied; the next backup tries again." if failed > 1
                    else "1 could not be copied; the next backup tries again.")
    elif unplug:
        body.append("Safe to unplug.")
    return Notice(f"{report.device}: {notes} saved", " ".join(body), urgent=bool(report.errors))


def failed(phone: str, error: errors.AdbVoiceError) -> Notice:
    """The error's one line already says what to do; the title says it was not backed up."""
    return Notice(f"{phone}: voice notes not backed up", str(error), urgent=True)


def waiting(prompt: str) -> Notice:
    """The phone asks "Allow USB debugging?" (or the computer cannot open it): someone must act."""
    return Notice("Voice-note backup is waiting for you", prompt, urgent=True)


# Not failures to announce: the person stopped the run, or another run holds the archive.
_NOT_FAILURES = (errors.InterruptedRun, errors.ArchiveLockedError)


def of_backup(phone: str, report: RunReport | None, error: errors.AdbVoiceError | None, *,
              unplug: bool, always: bool = False) -> Notice | None:
    """The one notice a finished backup gets, if any (`phone` names it when the backup
    failed before the phone said who it is)."""
    if error is not None:
        return None if isinstance(error, _NOT_FAILURES) else failed(phone, error)
    return saved(report, unplug=unplug, always=always) if report is not None else None


class Notifier:
    """Shows notices through `show` (the desktop's, by default); says once when it cannot."""

    def __init__(self, on_unavailable: Callable[[str], None], *, always: bool = False,
                 show: Callable[[Notice], None] = desktop.show) -> None:
        self._always = always  # also when nothing was new
        self._on_unavailable = on_unavailable
        self._show = show
        self._said_unavailable = False

    def backup_ended(self, phone: str, report: RunReport | None, error: errors.AdbVoiceError | None, *,
                     unplug: bool) -> None:
        self.notify(of_backup(phone, report, error, unplug=unplug, always=self._always))

    def notify(self, notice: Notice | None) -> None:
        if notice is None:
            return
        try:
            self._show(notice)
        except NotificationUnavailable as exc:
            if not self._said_unavailable:
                self._said_unavailable = True
                self._on_unavailable(str(exc))
