"""`watch`: back up each phone once per connection, for as long as it runs.

Every `interval_s` it looks (presence.look: no ADB session, nothing asked of the phone).
A phone seen for the first time is backed up; a phone that stays is left alone; a phone
that is no longer seen is forgotten, so it is backed up again when it comes back. A
phone waiting for "Allow USB debugging" is asked once and waited for. Ctrl-C or SIGTERM
(the CLI's CancelToken) ends the watch: between backups at once, during one the way it
ends a backup (the file in flight finished or discarded).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from adbvoice import errors
from adbvoice.backup.config import BackupConfig
from adbvoice.backup.report import RunReport
from adbvoice.cancel import CancelToken
from adbvoice.events import Event
from adbvoice.unattended import presence, wifi
from adbvoice.unattended.runlog import RunLog

WAITING_TEXT = 'unlock the phone and tap "Allow" on the "Allow USB debugging?" prompt; watching until you do'
# Not a result for this connection: nobody has tapped Allow yet, so keep trying. (A phone
# whose user tapped Deny is a result: it is tried again when it comes back.)
_WAITING_FOR_USER = errors.AuthTimeoutError


@dataclass(frozen=True)
class Result:
    """One backup of one phone: a report, or the error it ended with."""

    key: str
    report: RunReport | None = None
    error: errors.AdbVoiceError | None = None


class Watcher:
    def __init__(
        self,
        base: BackupConfig,
        *,
        interval_s: float,
        on_event: Callable[[Event], None],
        on_result: Callable[[Result], None],
        cancel: CancelToken,
        log: RunLog | None,
        wifi_choice: wifi.WifiChoice | None = None,
    ) -> None:
        self._base = base
        self._wifi = wifi_choice
        self._interval_s = interval_s
        self._on_event = on_event
        self._on_result = on_result
        self._cancel = cancel
        self._log = log
        self._done: set[str] = set()  # backed up during their current connection
        self._told: dict[str, set[str]] = {}  # what each present phone was already told
        self.busy = False  # a backup is running (an interruption then matters)

    def run(self) -> None:
        """Watch until cancelled; returns when stopped between backups, raises
        InterruptedRun when stopped during one."""
        try:
            while True:
                self._cancel.check()
                self._round()
                time.sleep(self._interval_s)
        except errors.InterruptedRun:
            if self.busy:
                raise

    def _look(self) -> dict[str, presence.Sighting]:
        """The phones there now: by mDNS (or its last address) for a remembered Wi-Fi phone."""
        if self._wifi is None:
            return {s.key: s for s in presence.look(self._base.connect)}
        phone, found = wifi.locate(self._wifi, self._base.connect.connect_timeout_s)
        return {phone.name: presence.Sighting(phone.name, presence.READY)} if found else {}

    def _round(self) -> None:
        try:
            seen = self._look()
        except errors.AdbVoiceError as exc:  # no USB support, no permission...: say it once
            self._tell("", f"adbvoice: {exc}")
            seen = {}
        self._told = {key: told for key, told in self._told.items() if key in seen or not key}
        self._done &= seen.keys()
        for key, sighting in seen.items():
            if key in self._done:
                continue
            if sighting.ready:
                self._backup(key)
            else:
                self._tell(key, f"{key}: {WAITING_TEXT}")
        present = ", ".join(sorted(seen)) or "none"
        watched = "the paired phone on Wi-Fi" if self._wifi else presence.target_of(self._base.connect)
        self._on_event(Event("info", f"watching {watched}: phones present: {present}"))

    def _backup(self, key: str) -> None:
        options = self._base.connect
        config = self._base if options.tcp or self._wifi else replace(self._base, connect=replace(options, serial=key))
        self.busy = True
        try:
            report, error = presence.backup_once(config, self._filter(key), self._cancel, log=self._log,
                                                 if_present=False, wifi_choice=self._wifi), None
        except errors.InterruptedRun:
            raise  # still busy: the run was cut short
        except errors.AdbVoiceError as exc:
            report, error = None, exc
        # A library that caught everything (mutagen's wrapper) may have swallowed the Ctrl-C
        # that arrived inside it: the token still knows.
        self._cancel.check()
        self.busy = False
        if isinstance(error, _WAITING_FOR_USER):
            self._tell(key, f"{key}: {error}")
            return
        self._done.add(key)
        self._on_result(Result(key, report, error))

    def _filter(self, key: str) -> Callable[[Event], None]:
        """The backup's events, with each prompt shown once per connection."""

        def on_event(event: Event) -> None:
            if event.kind == "prompt":
                self._tell(key, event.message)
            else:
                self._on_event(event)

        return on_event

    def _tell(self, key: str, message: str) -> None:
        told = self._told.setdefault(key, set())
        if message not in told:
            told.add(message)
            self._on_event(Event("prompt", message))
