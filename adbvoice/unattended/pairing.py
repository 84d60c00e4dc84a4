"""Pairing a phone once and remembering it: the flow behind `adbvoice pair`.

By code: the address and code the phone's dialog shows. By QR code: the phone scans an
invitation this computer made up, then announces a pairing service under the
invitation's name, which mDNS finds. Either way the phone's GUID comes back, and the
phone is remembered (with its current TLS address if it already announces one) so that
`backup --wifi` can find it again by that GUID.
"""

from __future__ import annotations

from pathlib import Path

from adbvoice import errors
from adbvoice.phone import mdns
from adbvoice.phone.pairing import CONNECT_SERVICE, PAIRING_SERVICE, QrInvitation, pair
from adbvoice.unattended.phones import KnownPhone, known, remember

# Right after pairing the phone is announcing its TLS port already; a short look is enough.
_CONNECT_LOOK_S = 2.0


def _remember(state_dir: Path, guid: str, host: str, name: str | None) -> KnownPhone:
    old = next((p for p in known(state_dir) if p.guid == guid), None)
    service = mdns.find(CONNECT_SERVICE, guid, _CONNECT_LOOK_S)
    phone = KnownPhone(
        name=name or (old.name if old else guid),
        guid=guid,
        model=old.model if old else "",
        serial=old.serial if old else "",
        host=service.host if service else host,
        port=service.port if service else (old.port if old else 0),
    )
    remember(state_dir, phone)
    return phone


def pair_by_code(state_dir: Path, host: str, port: int, code: str, adb_key: Path,
                 name: str | None = None) -> KnownPhone:
    """Pair with the dialog at host:port and remember the phone."""
    guid = pair(host, port, code, adb_key)
    return _remember(state_dir, guid, host, name)


def pair_by_qr(state_dir: Path, invitation: QrInvitation, adb_key: Path, timeout: float,
               name: str | None = None) -> KnownPhone:
    """Wait up to `timeout` seconds for the phone that scanned `invitation`, pair, remember it."""
    service = mdns.find(PAIRING_SERVICE, invitation.service, timeout)
    if service is None:
        raise errors.PairingNotFoundError(
            f"no phone announced the pairing service {invitation.service!r} within {timeout:g} s: "
            "scan the code under Wireless debugging › Pair device with QR code, with the phone on "
            "this computer's network (or pair with a code: adbvoice pair HOST:PORT)")
    guid = pair(service.host, service.port, invitation.password, adb_key)
    return _remember(state_dir, guid, service.host, name)
