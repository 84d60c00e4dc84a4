"""Is a phone there? A cheap look that opens no ADB session and asks the phone nothing.

`backup --if-present` looks before touching the archive, and `watch` looks every few
seconds, so the look must cost next to nothing: one TCP connect for Wi-Fi, one question
to a running adb server, or one USB enumeration, the same order `connect.connect` tries.
A look that finds nothing makes `backup_once` return before the archive is touched.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from adbvoice import errors
from adbvoice.backup.config import BackupConfig
from adbvoice.backup.report import RunReport
from adbvoice.backup.run import backup
from adbvoice.cancel import CancelToken
from adbvoice.events import Event
from adbvoice.phone import adbserver, connect, usb
from adbvoice.unattended import wifi
from adbvoice.unattended.runlog import RunLog, logged, since

# adb server states (adb's transport.cpp, connection_state_name) of a phone one can back up,
# and of one waiting for its user to tap "Allow"; any other (offline, recovery...) is away.
READY = "device"
WAITING = ("unauthorized", "authorizing")


@dataclass(frozen=True)
class Sighting:
    key: str  # what to connect to: "HOST:PORT" for Wi-Fi, else the phone's serial
    state: str  # READY, one of WAITING, or the adb server's word for it

    @property
    def ready(self) -> bool:
        return self.state == READY


def look(options: connect.ConnectOptions) -> list[Sighting]:
    """The phones reachable now with these options (only --serial's, if given)."""
    if options.tcp:
        host, port = options.tcp
        try:
            socket.create_connection((host, port), timeout=options.connect_timeout_s).close()
        except OSError:
            return []
        return [Sighting(f"{host}:{port}", READY)]
    try:
        served = adbserver.list_devices()
    except adbserver.ServerProtocolError:  # not an adb server: the backup itself says so (exit 71)
        served = None
    if served:
        found = [Sighting(d.serial, d.state) for d in served if d.state == READY or d.state in WAITING]
    else:
        found = [Sighting(serial, READY) for serial in usb.serials()]
    return [s for s in found if options.serial in (None, s.key)]


def phone_present(options: connect.ConnectOptions) -> bool:
    """Whether a backup now could find its phone; no USB support at all counts as none."""
    try:
        return bool(look(options))
    except errors.NoDeviceError:
        return False


def target_of(options: connect.ConnectOptions) -> str:
    """The phone as the options name it, for logs and messages before it says who it is."""
    if options.tcp:
        return "tcp {}:{}".format(*options.tcp)
    return options.serial or "usb"


def backup_once(
    config: BackupConfig,
    on_event: Callable[[Event], None],
    cancel: CancelToken,
    *,
    log: RunLog | None,
    if_present: bool,
    wifi_choice: wifi.WifiChoice | None = None,
) -> RunReport | None:
    """One logged backup; with `if_present`, None (and a log line) when no phone is there,
    before the archive is touched. With `wifi_choice`, the remembered phone wherever mDNS
    finds it now (else at its last known address), remembered there afterwards."""
    target = target_of(config.connect)
    started = time.monotonic()
    found = None
    if wifi_choice is not None:
        phone, found = wifi.locate(wifi_choice, config.connect.connect_timeout_s)
        target = f"wifi {phone.name}"
        if found is None and not if_present:
            raise wifi.not_on_network(phone)
        if found is not None:
            config = wifi.config_for(config, found)
            if not found.by_mdns:
                on_event(Event("info", wifi.fallback_notice(found)))
    if if_present and (found is None if wifi_choice is not None else not phone_present(config.connect)):
        if log:
            log.write(outcome="absent", exit=errors.EXIT_OK, device=target, duration=since(started),
                      archive=str(config.archive))
        return None
    so_far = RunReport(dry_run=config.dry_run)
    report = logged(log, lambda: backup(config, on_event, cancel, so_far), archive=config.archive, target=target,
                    so_far=so_far)
    if found is not None and not config.dry_run:  # a dry run changes nothing, the remembered phones included
        wifi.seen(wifi_choice, found, report)
    return report
