"""Pairing with a phone's Wireless debugging (Android 11+), as `adb pair` does it.

The phone shows a 6-digit code and a port (Pair device with pairing code), or scans a QR
code naming a service and a password that this computer made up (Pair device with QR
code) and then announces a pairing service under that name. Either way the secret goes
in, and this computer's adb key (~/.android/adbkey.pub, the one Google's adb uses) comes
out trusted by the phone, which answers with its GUID: the name it announces its TLS port
under from then on. The protocol is in pairing_wire; every failure here is an adbvoice error.
"""

from __future__ import annotations

import re
import secrets
import socket
import string
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from adbvoice import errors
from adbvoice.phone import keys

PAIRING_SERVICE = "_adb-tls-pairing._tcp"
CONNECT_SERVICE = "_adb-tls-connect._tcp"
_CODE = re.compile(r"[0-9]{6}")
# The QR flow's password: letters and digits (nothing the WIFI: text would need to
# escape), 16 of them (~95 bits), so that guessing it in SPAKE2's one try is hopeless.
_QR_ALPHABET = string.ascii_letters + string.digits
_QR_PASSWORD_LENGTH = 16


@dataclass(frozen=True)
class QrInvitation:
    """What the QR code carries: the phone announces `service` and pairs with `password`."""

    service: str
    password: str

    @property
    def text(self) -> str:
        return f"WIFI:T:ADB;S:{self.service};P:{self.password};;"


def new_invitation() -> QrInvitation:
    """A fresh service name and password, from the OS's cryptographic random source."""
    password = "".join(secrets.choice(_QR_ALPHABET) for _ in range(_QR_PASSWORD_LENGTH))
    return QrInvitation(f"adbvoice-{secrets.token_hex(5)}", password)


def parse_pairing_address(text: str) -> tuple[str, int]:
    """`HOST:PORT` as the pairing dialog shows it (IPv6 in brackets); the port is required,
    as the dialog's port is new every time."""
    host, port = "", ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise errors.PairingInputError(
            f"{text!r} is not HOST:PORT: give the address and port the phone shows under "
            "Pair device with pairing code, e.g. 192.168.1.20:37125")
    return host, int(port)


def check_code(code: str) -> str:
    """The 6-digit pairing code, spaces allowed ("123 456"); never echoed back."""
    digits = code.replace(" ", "")
    if not _CODE.fullmatch(digits):
        raise errors.PairingInputError("the pairing code is the 6 digits the phone shows under "
                                       "Pair device with pairing code")
    return digits


def _host_identity(key_path: Path) -> tuple[rsa.RSAPrivateKey, str]:
    """The adb key (created as adb creates it if missing) and its public line."""
    keys.load_signer(key_path)
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        public = Path(f"{key_path}.pub").read_text().strip()
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise errors.AdbKeyError(f"cannot use the adb key {key_path}: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise errors.AdbKeyError(f"cannot use the adb key {key_path}: not an RSA key")
    return key, public


def pair(host: str, port: int, secret: str, key_path: Path, timeout: float = 15.0) -> str:
    """Pair with the phone's pairing service at host:port using the code (or the QR
    password); the phone's GUID. The phone trusts `key_path`'s key from then on."""
    # pyOpenSSL and libsodium load when a pairing starts, not with every command.
    from adbvoice.phone.pairing_wire import (
        DEVICE_GUID,
        RSA_PUB_KEY,
        PairingChannel,
        PairingClosed,
        PairingProtocolError,
        PairingRefused,
        PeerInfo,
        tls_context,
    )

    key, public_line = _host_identity(key_path)
    where = f"{host}:{port}"
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError as exc:
        raise errors.PairingClosedError(
            f"nothing answers at {where}: the phone's pairing dialog is closed (open it again "
            "and use the new port and code)") from exc
    except (TimeoutError, socket.timeout) as exc:
        raise errors.PairingClosedError(f"{where} did not answer within {timeout:g} s: is the phone on "
                                        "this Wi-Fi, with its pairing dialog open?") from exc
    except OSError as exc:
        raise errors.PairingClosedError(f"cannot reach {where}: {exc.strerror or exc}") from exc
    with sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        channel = PairingChannel(sock, tls_context(key), server=False, deadline=deadline)
        try:
            answer = channel.exchange(secret.encode("ascii"), PeerInfo(RSA_PUB_KEY, public_line))
        except PairingRefused as exc:
            raise errors.PairingCodeWrongError(
                f"the phone at {where} refused the pairing code: check it and try again "
                "(the phone shows a new one if the dialog was reopened)") from exc
        except PairingClosed as exc:
            raise errors.PairingClosedError(f"pairing with {where} stopped: {exc} "
                                            "(the pairing dialog closed?)") from exc
        except PairingProtocolError as exc:
            raise errors.PairingClosedError(f"{where} is not a phone's pairing service: {exc}") from exc
    if answer.kind != DEVICE_GUID or not answer.text or not answer.text.isprintable() or len(answer.text) > 255:
        raise errors.PairingClosedError(f"{where} paired but did not say which phone it is")
    return answer.text
