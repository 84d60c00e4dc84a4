"""`--wifi`: the remembered phone's current Wireless-debugging address, found by mDNS.

The TLS port changes every time Wireless debugging is turned on, so the address is looked
up each run: the phone announces `_adb-tls-connect._tcp` under its GUID. When mDNS finds
nothing (a firewall dropping multicast, a network that filters it), the address the phone
was last seen at is tried; when that does not answer either, the phone is not there. At
the last known address another device may answer now (the router gave the address to
someone else): the remembered serial is checked once the phone says who it is.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, replace
from pathlib import Path

from adbvoice import errors
from adbvoice.backup.config import BackupConfig
from adbvoice.backup.report import RunReport
from adbvoice.phone import mdns
from adbvoice.phone.pairing import CONNECT_SERVICE
from adbvoice.unattended.phones import KnownPhone, lookup, remember

# A phone with Wireless debugging on answers an mDNS question at once; a few seconds cover
# a slow Wi-Fi and cost nothing when the phone is found (the search stops there).
MDNS_LOOK_S = 3.0


@dataclass(frozen=True)
class WifiChoice:
    """Which remembered phone (None: the only one), and where the remembered phones are."""

    state_dir: Path
    name: str | None = None
    look_s: float = MDNS_LOOK_S


@dataclass(frozen=True)
class WifiTarget:
    phone: KnownPhone
    host: str
    port: int
    by_mdns: bool  # False: mDNS found nothing, this is the last known address

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def locate(choice: WifiChoice, connect_timeout_s: float) -> tuple[KnownPhone, WifiTarget | None]:
    """The remembered phone, and where it answers now (None: not on the network)."""
    phone = lookup(choice.state_dir, choice.name)
    service = mdns.find(CONNECT_SERVICE, phone.guid, choice.look_s)
    if service is not None:
        return phone, WifiTarget(phone, service.host, service.port, by_mdns=True)
    if phone.port and _answers(phone.host, phone.port, connect_timeout_s):
        return phone, WifiTarget(phone, phone.host, phone.port, by_mdns=False)
    return phone, None


def _answers(host: str, port: int, timeout: float) -> bool:
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def not_on_network(phone: KnownPhone) -> errors.PhoneNotOnNetworkError:
    last = f"; its last known address {phone.host}:{phone.port} does not answer" if phone.port else ""
    return errors.PhoneNotOnNetworkError(
        f"{phone.name} is not on the network: mDNS found no {CONNECT_SERVICE} service for it{last}. "
        "Check that Wireless debugging is on (Settings > Developer options), that the phone is on this "
        "computer's Wi-Fi, and that no firewall drops mDNS (UDP port 5353, multicast)"
    )


def fallback_notice(target: WifiTarget) -> str:
    return (
        f"mDNS did not find {target.phone.name}; using its last known address {target.address} "
        "(if this keeps happening, check that no firewall drops mDNS: UDP port 5353, multicast)"
    )


def config_for(config: BackupConfig, target: WifiTarget) -> BackupConfig:
    """The backup's settings aimed at the phone's address now; the serial it must have
    when it was seen before (only a remembered one is checked: pairing does not learn it)."""
    return replace(
        config,
        connect=replace(config.connect, tcp=(target.host, target.port), serial=None),
        expect_serial=target.phone.serial or None,
    )


def seen(choice: WifiChoice, target: WifiTarget, report: RunReport) -> None:
    """Remember where the phone answered, and its model and serial now that it said them."""
    phone = target.phone
    remember(
        choice.state_dir,
        replace(
            phone,
            host=target.host,
            port=target.port,
            serial=report.device_serial or phone.serial,
            model=report.device_model or phone.model,
        ),
    )
