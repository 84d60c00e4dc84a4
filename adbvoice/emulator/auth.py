"""Who may talk to the phone: adbd's RSA authentication and the "Allow USB debugging?" dialog.

adbd (daemon/auth.cpp) sends AUTH(TOKEN) with 20 random bytes; the host answers
AUTH(SIGNATURE), an RSA PKCS#1 v1.5 signature over the token used as a SHA-1 digest
(`RSA_verify(NID_sha1, token, ...)`); a signature that verifies against a trusted key
brings CNXN, any other brings a fresh token. Out of keys, the host offers
AUTH(RSAPUBLICKEY) and the phone asks its user. Keys are in adb's public-key format:
base64 of Android's `RSAPublicKey` struct (libcrypto_utils android_pubkey), then
" user@host" -- the content of ~/.android/adbkey.pub.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import struct
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

MODES = ("none", "any", "keys", "refuse", "pending")

# struct RSAPublicKey { uint32 modulus_size_words; uint32 n0inv; uint8 modulus[256];
#                       uint8 rr[256]; uint32 exponent; }, little-endian words and bytes.
_RSA_PUBLIC_KEY = struct.Struct("<II256s256sI")
_MODULUS_WORDS = 64
_MODULUS_BYTES = 256
# DER of DigestInfo{ sha1, NULL } up to the 20-byte digest (RFC 8017, 9.2 note 1).
_SHA1_DIGEST_INFO = bytes.fromhex("3021300906052b0e03021a05000414")


@dataclass(frozen=True)
class AdbPublicKey:
    """A parsed adb public key: `text` as given, `blob` its base64 part, n and e."""

    text: str
    blob: str
    n: int
    e: int

    def verifies(self, token: bytes, signature: bytes) -> bool:
        """RSA_verify(NID_sha1, token, signature): PKCS#1 v1.5, token taken as the digest."""
        size = _MODULUS_BYTES
        if len(signature) != size or len(token) != 20:
            return False
        s = int.from_bytes(signature, "big")
        if s >= self.n:
            return False
        decoded = pow(s, self.e, self.n).to_bytes(size, "big")
        padding = b"\xff" * (size - 3 - len(_SHA1_DIGEST_INFO) - len(token))
        expected = b"\x00\x01" + padding + b"\x00" + _SHA1_DIGEST_INFO + token
        return hmac.compare_digest(decoded, expected)


def key_blob(text: str) -> str:
    """The base64 part of a key line (adbd splits on space and tab)."""
    return text.strip().replace("\t", " ").split(" ")[0]


def parse_public_key(text: str) -> AdbPublicKey:
    """Parse one adb public key line; ValueError if it is not one (as android_pubkey_decode)."""
    blob = key_blob(text)
    try:
        raw = base64.b64decode(blob, validate=True)
    except binascii.Error as e:
        raise ValueError(f"not an adb public key (bad base64): {e}") from None
    if len(raw) != _RSA_PUBLIC_KEY.size:
        raise ValueError(f"not an adb public key ({len(raw)} bytes, want {_RSA_PUBLIC_KEY.size})")
    words, _n0inv, modulus, _rr, exponent = _RSA_PUBLIC_KEY.unpack(raw)
    if words != _MODULUS_WORDS:
        raise ValueError(f"not a 2048-bit adb key (modulus_size_words={words})")
    return AdbPublicKey(text.strip(), blob, int.from_bytes(modulus, "little"), exponent)


@dataclass(frozen=True)
class AuthPolicy:
    """How the phone treats hosts.

    none: no authentication (adbd with auth_required=false, e.g. an emulator).
    any: a token is sent; the first signature is accepted whatever the key.
    keys: signatures must verify against `keys`; an offered public key that is listed
        is accepted, any other waits for an answer that never comes.
    refuse: every signature gets a new token; an offered public key is refused and the
        connection closed (the user tapped "Deny").
    pending: as keys, but an offered public key is accepted `pending_seconds` after the
        first time any key was offered to this phone (the user taps "Allow" then).
    """

    mode: str = "none"
    keys: tuple[str, ...] = ()
    pending_seconds: float = 0.0
    parsed: tuple[AdbPublicKey, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"auth mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.pending_seconds < 0:
            raise ValueError("pending_seconds must be >= 0")
        object.__setattr__(self, "keys", tuple(self.keys))
        object.__setattr__(self, "parsed", tuple(parse_public_key(k) for k in self.keys))


class Gatekeeper:
    """Phone-wide authorization state: the trusted keys and the Allow dialog's clock.

    Given a `keys_file` (adbd's /data/misc/adb/adb_keys, one key line each), the keys
    trusted so far are read from it and every newly trusted key is written to it, so a
    phone that allowed or paired with a computer still trusts it after a restart."""

    def __init__(self, policy: AuthPolicy, keys_file: Path | None = None) -> None:
        self.policy = policy
        self._lock = threading.Lock()
        self._trusted: dict[str, AdbPublicKey] = {}
        self._first_offer: float | None = None
        self._keys_file = keys_file
        if keys_file is not None and keys_file.exists():
            for line in keys_file.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    key = parse_public_key(line)
                    self._trusted.setdefault(key.blob, key)

    @property
    def required(self) -> bool:
        return self.policy.mode != "none"

    @property
    def trusted_keys(self) -> set[str]:
        with self._lock:
            return {k.text for k in self._trusted.values()}

    def _known(self) -> list[AdbPublicKey]:
        with self._lock:
            return list(self.policy.parsed) + list(self._trusted.values())

    def _trust(self, key: AdbPublicKey) -> None:
        with self._lock:
            if key.blob in self._trusted:
                return
            self._trusted[key.blob] = key
            if self._keys_file is not None:
                self._save()

    def _save(self) -> None:
        """Rewrite adb_keys whole (a temp file renamed over it: never half a key list)."""
        folder = self._keys_file.parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=folder, prefix=".adb_keys.")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.writelines(f"{key.text}\n" for key in self._trusted.values())
        os.replace(temp, self._keys_file)

    def trusts_tls_key(self, n: int, e: int) -> bool:
        """Whether a TLS client presenting this RSA key gets in (adbd_tls_verify_cert):
        with authentication off, any key; refusing, none; else only a trusted one. There
        is no Allow dialog on this path: pairing is how a key becomes trusted."""
        mode = self.policy.mode
        if mode in ("none", "any"):
            return True
        if mode == "refuse":
            return False
        return any(key.n == n and key.e == e for key in self._known())

    def check_signature(self, token: bytes, signature: bytes) -> bool:
        """Whether this signature of `token` lets the host in."""
        mode = self.policy.mode
        if mode == "any":
            return True
        if mode in ("keys", "pending"):
            for key in self._known():
                if key.verifies(token, signature):
                    self._trust(key)
                    return True
        return False

    def offer(self, key_text: str) -> float | None:
        """An offered public key: None if it is refused (close the connection), else
        the number of seconds after which it is accepted (0 = now, inf = never)."""
        mode = self.policy.mode
        if mode == "refuse":
            return None
        try:
            key = parse_public_key(key_text)
        except ValueError:
            key = None
        if mode == "any":
            if key is not None:
                self._trust(key)
            return 0.0
        if key is not None and any(k.blob == key.blob for k in self._known()):
            self._trust(key)
            return 0.0
        if mode != "pending" or key is None:
            return float("inf")
        with self._lock:
            now = time.monotonic()
            if self._first_offer is None:
                self._first_offer = now
            return max(0.0, self._first_offer + self.policy.pending_seconds - now)

    def allow(self, key_text: str) -> None:
        """The user tapped "Allow" for this offered key."""
        self._trust(parse_public_key(key_text))
