"""The emulated phone's Wireless-debugging pairing dialog (adbd's pairing_server.cpp).

"Pair device with pairing code" opens a port and shows a 6-digit code; "Pair device with
QR code", once the QR is scanned, does the same with the QR's password and announces the
pairing service under the QR's name. A computer that proves it knows the secret sends its
adb public key, which the phone then trusts (and keeps), and gets the phone's GUID back;
the dialog then closes. A wrong secret costs one attempt and the dialog stays open.
Closing the dialog closes its port: what a computer arriving late finds.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import rsa

from adbvoice.emulator.mdns import Announcement
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

PAIRING_SERVICE = "_adb-tls-pairing._tcp"
_EXCHANGE_TIMEOUT_S = 10.0
_KEY_LOCK = threading.Lock()
_KEY: rsa.RSAPrivateKey | None = None


def _phone_key() -> rsa.RSAPrivateKey:
    """adbd's own RSA key; one per process is enough for a test phone (generating is slow)."""
    global _KEY
    with _KEY_LOCK:
        if _KEY is None:
            _KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return _KEY


class _Refused(Exception):
    """The secret was right but what came with it is not a computer's key."""


def new_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


class PairingDialog:
    """One open pairing dialog: listens on `port` until closed or until one pairing succeeds.

    `on_paired(key_text)` is called with the paired computer's adb public key, before the
    GUID goes back; with `answer_first`, in adbd's own order, the GUID goes first."""

    def __init__(self, guid: str, secret: str, on_paired: Callable[[str], None], *, host: str = "127.0.0.1",
                 port: int = 0, service: str | None = None, answer_first: bool = False) -> None:
        self.guid = guid
        self.secret = secret
        self.host = host
        self.attempts = 0
        self.failures: list[str] = []
        self.paired_keys: list[str] = []
        self._on_paired = on_paired
        self._answer_first = answer_first
        key = _phone_key()
        self._context = tls_context(key)
        self._listener = socket.create_server((host, port))
        self.port = self._listener.getsockname()[1]
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="adbd-pairing", daemon=True)
        self._thread.start()
        try:
            self._announcement = Announcement(PAIRING_SERVICE, service or guid, self.port, host)
        except BaseException:
            self.close()
            raise

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def open(self) -> bool:
        return not self._done.is_set()

    def _serve(self) -> None:
        while not self._done.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with sock:
                self._pair_one(sock)

    def _pair_one(self, sock: socket.socket) -> None:
        self.attempts += 1
        channel = PairingChannel(sock, self._context, server=True,
                                 deadline=time.monotonic() + _EXCHANGE_TIMEOUT_S)
        try:
            channel.exchange(self.secret.encode("ascii"), PeerInfo(DEVICE_GUID, self.guid), self._accept,
                             answer_first=self._answer_first)
        except (PairingRefused, PairingClosed, PairingProtocolError, _Refused) as exc:
            self.failures.append(str(exc))

    def _accept(self, theirs: PeerInfo) -> None:
        """The computer proved the secret: trust its key and close the dialog, before the
        GUID goes back (so a computer that has the GUID is trusted already)."""
        if theirs.kind != RSA_PUB_KEY:
            raise _Refused(f"peer info of type {theirs.kind}, not a public key")
        try:
            self._on_paired(theirs.text)
        except ValueError as exc:
            raise _Refused(f"not an adb public key: {exc}") from exc
        self.paired_keys.append(theirs.text)
        self.close()  # the phone's dialog closes on success

    def close(self) -> None:
        """Close the dialog: the announcement ends, the port is gone."""
        self._done.set()
        announcement = getattr(self, "_announcement", None)
        if announcement is not None:
            announcement.close()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()

    def __enter__(self) -> PairingDialog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
