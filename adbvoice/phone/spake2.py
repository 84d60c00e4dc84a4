"""SPAKE2 over edwards25519 exactly as BoringSSL's `SPAKE2_CTX` (crypto/curve25519/
spake25519.cc) does it, which is what adb's pairing speaks (pairing_auth/pairing_auth.cpp).

Every group and scalar operation is libsodium's (through PyNaCl); this module only strings
them together in BoringSSL's order. No packaged SPAKE2 fits: python-spake2 uses other
points and another transcript, and spake2-cffi (a C port of BoringSSL's) draws its secret
scalar from libc's rand() -- unseeded, the same "random" message in every process.

BoringSSL's points M and N are hashes decoded as curve points, so they carry a small-order
part; its "password scalar hack" adds multiples of the group order l to the password
scalar until it is a multiple of 8, which removes that part: the mask is then
w·M' with w = SHA-512(password) mod l and M' = M's prime-order part = 8⁻¹·(8·M). The
ephemeral scalar is 8·r (r uniform mod l) and only ever meets prime-order points here, where
8·r acts as 8·r mod l. libsodium's scalar multiplication refuses points outside the
prime-order group, so a peer's message with a small-order part is an error, never a leak.
"""

from __future__ import annotations

import hashlib
import hmac

from nacl import bindings as sodium
from nacl.exceptions import RuntimeError as SodiumError
from nacl.utils import random as random_bytes

# Encodings of BoringSSL's N and M (spake25519.cc, comment above kSpakeNSmallPrecomp).
_N = bytes.fromhex("10e3df0ae37d8e7a99b5fe74b44672103dbddcbd06af680d71329a11693bc778")
_M = bytes.fromhex("5ada7e4bf6ddd9adb6626d32131c6b5c51a1e347a3478f53cfcf441b88eed12e")
_EIGHT = (8).to_bytes(32, "little")
MESSAGE_SIZE = 32
KEY_SIZE = 64


class Spake2Error(Exception):
    """The peer's message is not a point we accept: no key comes out of it."""


def _times_eight(point: bytes) -> bytes:
    for _ in range(3):
        point = sodium.crypto_core_ed25519_add(point, point)
    return point


def _prime_order_part(point: bytes) -> bytes:
    """8⁻¹·(8·P): P without its small-order component."""
    return sodium.crypto_scalarmult_ed25519_noclamp(sodium.crypto_core_ed25519_scalar_invert(_EIGHT),
                                                    _times_eight(point))


_PRIME_M = _prime_order_part(_M)
_PRIME_N = _prime_order_part(_N)


def _with_length(data: bytes) -> bytes:
    return len(data).to_bytes(8, "little") + data


class Spake2:
    """One side of one exchange: `message` to send, then `finish(their_message)` → 64-byte key.

    `alice` is the client (adb: "adb pair client\\0"), bob the server; names are used as given,
    NULs included, as adb passes sizeof() of its string literals."""

    def __init__(self, alice: bool, my_name: bytes, their_name: bytes, password: bytes) -> None:
        self._alice = alice
        self._my_name = my_name
        self._their_name = their_name
        self._password_hash = hashlib.sha512(password).digest()
        self._w = sodium.crypto_core_ed25519_scalar_reduce(self._password_hash)
        r = sodium.crypto_core_ed25519_scalar_reduce(random_bytes(64))
        self._private = sodium.crypto_core_ed25519_scalar_mul(r, _EIGHT)
        public = sodium.crypto_scalarmult_ed25519_base_noclamp(self._private)
        mask = sodium.crypto_scalarmult_ed25519_noclamp(self._w, _PRIME_M if alice else _PRIME_N)
        self.message = sodium.crypto_core_ed25519_add(public, mask)

    def finish(self, their_message: bytes) -> bytes:
        if len(their_message) != MESSAGE_SIZE:
            raise Spake2Error(f"a SPAKE2 message is {MESSAGE_SIZE} bytes, not {len(their_message)}")
        try:
            their_mask = sodium.crypto_scalarmult_ed25519_noclamp(self._w, _PRIME_N if self._alice else _PRIME_M)
            their_public = sodium.crypto_core_ed25519_sub(their_message, their_mask)
            shared = sodium.crypto_scalarmult_ed25519_noclamp(self._private, their_public)
        except SodiumError as exc:
            raise Spake2Error("the peer's SPAKE2 message is not a usable point") from exc
        if hmac.compare_digest(shared, bytes(32)):
            raise Spake2Error("the peer's SPAKE2 message gives the neutral element")
        if self._alice:
            transcript = [self._my_name, self._their_name, self.message, their_message]
        else:
            transcript = [self._their_name, self._my_name, their_message, self.message]
        digest = hashlib.sha512()
        for part in [*transcript, shared, self._password_hash]:
            digest.update(_with_length(part))
        return digest.digest()
