"""`--notify`: the desktop notifier a backup or a watch reports to, and where it says,
once, that no notification service is reachable."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated

import typer

from adbvoice import errors
from adbvoice.backup.report import RunReport
from adbvoice.events import Event
from adbvoice.unattended import notify
from adbvoice.unattended.runlog import RunLog
from adbvoice.unattended.settings import Settings

# Two flags each, read by common.either (see IncludeAudioOpt there).
NotifyOpt = Annotated[
    bool, typer.Option("--notify", help="A desktop notification when a backup saved new notes, failed, "
                       "or waits for a tap on the phone.")
]
NoNotifyOpt = Annotated[bool, typer.Option("--no-notify", help="No notification, whatever the config says.")]
NotifyAlwaysOpt = Annotated[
    bool, typer.Option("--notify-always", help="--notify, and a notification also when nothing was new.")
]
NoNotifyAlwaysOpt = Annotated[
    bool, typer.Option("--no-notify-always", help="Not when nothing was new, whatever the config says.")
]


def notifier(settings: Settings, log: RunLog | None, *, quiet: bool) -> notify.Notifier | None:
    """None unless asked for (`notify` or `notify_always`). No notification service is
    said once: in the log file when there is one (cron mails nothing for it), else on
    stderr unless --quiet."""
    if not (settings["notify"] or settings["notify_always"]):
        return None

    def unavailable(reason: str) -> None:
        if log is not None:
            try:
                log.write(notification="unavailable", message=reason)
                return
            except errors.LogFileError:
                pass  # the run itself reports a log it cannot write; a notice is never worth a failure
        if not quiet:
            print(f"adbvoice: no desktop notification: {reason}", file=sys.stderr, flush=True)

    return notify.Notifier(unavailable, always=settings["notify_always"])


def with_prompts(on_event: Callable[[Event], None], notifier: notify.Notifier | None) -> Callable[[Event], None]:
    """The events, with every prompt (tap Allow on the phone) also sent to the desktop."""
    if notifier is None:
        return on_event

    def both(event: Event) -> None:
        on_event(event)
        if event.kind == "prompt":
            notifier.notify(notify.waiting(event.message))

    return both


def announced(notifier: notify.Notifier | None, phone: str, *, unplug: bool,
              work: Callable[[], RunReport | None]) -> RunReport | None:
    """Run one backup and tell the desktop how it ended (`phone` names it if it fails
    before the phone said who it is)."""
    if notifier is None:
        return work()
    try:
        report = work()
    except errors.AdbVoiceError as exc:
        notifier.backup_ended(phone, None, exc, unplug=unplug)
        raise
    notifier.backup_ended(phone, report, None, unplug=unplug)
    return report
