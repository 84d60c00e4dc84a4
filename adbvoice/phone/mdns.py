"""Finding a phone's Wireless-debugging services by mDNS: the only importer of zeroconf.

A phone with Wireless debugging on announces `_adb-tls-connect._tcp` (instance name = its
GUID, a port that changes every time Wireless debugging is turned on) and, while a pairing
dialog is open, `_adb-tls-pairing._tcp`. Only names, addresses and ports are used: the TXT
records' content changed in 2025 (AOSP adb `client/transport_mdns.cpp`), so nothing leans on it.

zeroconf is imported when a search starts, not with this module: every command (a cron
backup over USB included) imports this module through the settings, and zeroconf alone
takes about a fifth of a second to import.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zeroconf import ServiceStateChange, Zeroconf

# How long one resolve of a name found by the browser may take; the phone answers at once.
_RESOLVE_MS = 1500
# A home network announces a handful; a network that floats thousands is not listened to past this.
_MAX_NAMES = 256


@dataclass(frozen=True)
class Service:
    instance: str  # mDNS instance name (the GUID for _adb-tls-connect; may carry a " (2)" suffix)
    host: str
    port: int


def full_type(service_type: str) -> str:
    """`_adb-tls-connect._tcp` or `_adb-tls-connect._tcp.local.` → the latter, as zeroconf wants it."""
    name = service_type.rstrip(".")
    return f"{name}." if name.endswith(".local") else f"{name}.local."


def _instance_of(name: str, service_type: str) -> str:
    return name.removesuffix("." + service_type)


class _Collector:
    """The names the browser has seen, in order, and a way to wait for the next one."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.changed = threading.Condition()

    def on_change(self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        from zeroconf import ServiceStateChange

        with self.changed:
            if state_change is ServiceStateChange.Removed:
                self.names = [n for n in self.names if n != name]
            elif name not in self.names and len(self.names) < _MAX_NAMES:
                self.names.append(name)
            self.changed.notify_all()


def _resolve(zc: Zeroconf, service_type: str, name: str, left_ms: int) -> Service | None:
    """The name's address and port (from the cache when the announcement brought them)."""
    from zeroconf import IPVersion

    info = zc.get_service_info(service_type, name, timeout=min(_RESOLVE_MS, left_ms))
    if info is None or not info.port:
        return None
    addresses = info.parsed_addresses(IPVersion.V4Only) or info.parsed_addresses()
    if not addresses:
        return None
    return Service(_instance_of(name, service_type), addresses[0], info.port)


def _search(service_type: str, timeout: float, wanted: str | None) -> list[Service]:
    """Browse for `timeout` seconds (all of it for a listing; until a match for a search)."""
    from zeroconf import ServiceBrowser, Zeroconf

    service_type = full_type(service_type)
    deadline = time.monotonic() + timeout
    collector = _Collector()
    try:
        zc = Zeroconf()
    except OSError:
        # No interface takes multicast (a sandbox, a host with only loopback closed to it):
        # the same as a network that drops mDNS -- nothing is found, callers fall back.
        return []
    try:
        browser = ServiceBrowser(zc, service_type, handlers=[collector.on_change])
        try:
            resolved: dict[str, Service] = {}
            while True:
                with collector.changed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    pending = [n for n in collector.names if n not in resolved]
                    if not pending:
                        collector.changed.wait(left)
                        continue
                for name in pending:
                    left_ms = int((deadline - time.monotonic()) * 1000)
                    if left_ms <= 0:  # the deadline holds however many names keep coming
                        break
                    instance = _instance_of(name, service_type)
                    if wanted is not None and not instance.startswith(wanted):
                        resolved[name] = Service(instance, "", 0)
                        continue
                    service = _resolve(zc, service_type, name, left_ms)
                    resolved[name] = service or Service(instance, "", 0)
                    if service is not None and wanted is not None:
                        return [service]
            return [s for s in resolved.values() if s.port and (wanted is None or s.instance.startswith(wanted))]
        finally:
            browser.cancel()
    finally:
        zc.close()


def browse(service_type: str, timeout: float) -> list[Service]:
    """Every service of this type announced within `timeout` seconds."""
    return _search(service_type, timeout, None)


def find(service_type: str, instance_prefix: str, timeout: float) -> Service | None:
    """The first service of this type whose instance name starts with `instance_prefix`
    (a phone seen twice is announced as "GUID (2)"), or None after `timeout` seconds."""
    found = _search(service_type, timeout, instance_prefix)
    return found[0] if found else None
