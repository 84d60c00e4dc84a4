"""The phone's half of TLS on a Wireless-debugging port (adbd's TlsConnection, server side).

adbd sends STLS in answer to the host's CNXN, waits for the host's STLS, then runs a TLS 1.3
server with a certificate of its own and asks for the host's; the host is let in only if
the key in its certificate is one of the phone's trusted keys (daemon/auth.cpp,
adbd_tls_verify_cert compares the keys with EVP_PKEY_cmp). A refused key fails the
handshake on the phone's side, after the host's side has finished it (TLS 1.3).

Python's ssl module cannot do that server side: without a CA it refuses every self-signed
client certificate, and it has no verify callback to judge one by its key. pyOpenSSL's
`set_verify` callback can, so the emulated phone uses it (over memory buffers, so that the
bytes the host sent before TLS began can be handed to it first).

Google's adb 36 answers STLS from two threads: its writer thread sends the STLS it queued,
while the handshake thread takes the transport's lock and writes its ClientHello. So the
ClientHello now and then arrives before the STLS; and when the handshake took the lock
first, the writer sends the STLS only after the handshake, inside TLS (transport.cpp,
BlockingConnectionAdapter::DoTlsHandshake holds the lock the writer needs). The phone must
take all three orders: `TlsSession.handshake` reads the host record by record and lets a
plain STLS come before or between them; an STLS inside TLS is ignored by the connection.
"""

from __future__ import annotations

import datetime
import functools
import threading
from collections.abc import Callable
from typing import BinaryIO

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from OpenSSL import SSL

from adbvoice.phone import wire

# A TLS record: type (22 = handshake), version, length; then the fragment.
_RECORD_HEADER = 5
_HANDSHAKE_RECORD = 0x16
_MAX_RECORD = 16384 + 256  # RFC 8446 5.2: a TLSCiphertext fragment's limit
_BIO_CHUNK = 1 << 20

KeyCheck = Callable[[int, int], bool]  # (modulus, exponent) -> trusted?
TlsContext = SSL.Context


class TlsStartFailed(Exception):
    """The host's side of the switch to TLS was not what adb sends."""


@functools.cache
def _phone_identity() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """adbd's own key and self-signed certificate (made once: adbd too makes one per boot)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "adbd")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def device_context(trusted: KeyCheck) -> SSL.Context:
    """TLS 1.3 only; the host must present a certificate whose RSA key `trusted` accepts."""
    key, cert = _phone_identity()
    context = SSL.Context(SSL.TLS_METHOD)
    context.set_min_proto_version(SSL.TLS1_3_VERSION)
    context.use_certificate(cert)
    context.use_privatekey(key)

    def verify(_conn: SSL.Connection, peer: object, _errno: int, depth: int, _ok: int) -> bool:
        # Called for the self-signed certificate with "self-signed" as the error: the key
        # alone decides, as in adbd.
        if depth != 0:
            return False
        public = peer.to_cryptography().public_key()  # type: ignore[attr-defined]
        if not isinstance(public, rsa.RSAPublicKey):
            return False
        numbers = public.public_numbers()
        return trusted(numbers.n, numbers.e)

    context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, verify)
    return context


def _next_unit(reader: BinaryIO) -> wire.Message | bytes | None:
    """The next thing the host sent while TLS starts: its STLS header (plain), or one TLS
    record; None if it hung up. Raises TlsStartFailed on anything else."""
    first = reader.peek(1)[:1]  # type: ignore[attr-defined]
    if not first:
        return None
    if first[0] != wire.A_STLS & 0xFF:  # a TLS record: type, version, length, fragment
        header = reader.read(_RECORD_HEADER)
        length = int.from_bytes(header[3:5], "big") if len(header) == _RECORD_HEADER else 0
        if length > _MAX_RECORD:
            raise TlsStartFailed(f"TLS record of {length} bytes")
        fragment = reader.read(length)
        return header + fragment if len(fragment) == length and length else None
    raw = reader.read(wire.HEADER.size)
    if len(raw) < wire.HEADER.size:
        return None
    try:
        command, arg0, arg1, length, _check = wire.unpack_header(raw)
    except wire.WireError as exc:
        raise TlsStartFailed(str(exc)) from exc
    if command != wire.A_STLS or length:
        raise TlsStartFailed(f"expected STLS or TLS, got {wire.COMMAND_NAMES[command]}")
    return wire.Message(command, arg0, arg1)


class TlsSession:
    """One server-side TLS connection over memory buffers; safe to seal on one thread while
    another opens (a lock guards the OpenSSL object, as it must never be used by two)."""

    def __init__(self, context: SSL.Context) -> None:
        self._tls = SSL.Connection(context, None)
        self._tls.set_accept_state()
        self._lock = threading.Lock()

    def handshake(
        self, reader: BinaryIO, send_raw: Callable[[bytes], None], on_stls: Callable[[wire.Message], None]
    ) -> bool:
        """Run the handshake to its end; False if it failed (the key was refused, or the
        host hung up). Whatever TLS has to say, alerts included, goes out by send_raw; a
        plain STLS met on the way goes to on_stls. Raises TlsStartFailed on a stray message."""
        while True:
            unit = _next_unit(reader)
            if unit is None:
                return False
            if isinstance(unit, wire.Message):
                on_stls(unit)
                continue
            with self._lock:
                self._tls.bio_write(unit)
                try:
                    self._tls.do_handshake()
                    done, failed = True, False
                except SSL.WantReadError:
                    done, failed = False, False
                except SSL.Error:
                    done, failed = False, True
                out = self._drain()
            if out:
                send_raw(out)
            if done or failed:
                return done

    def seal(self, data: bytes) -> bytes:
        """Plain bytes for the host -> TLS records; ConnectionError once TLS has failed."""
        with self._lock:
            try:
                self._tls.sendall(data)
            except SSL.Error as exc:
                raise ConnectionError(f"TLS: {exc}") from exc
            return self._drain()

    def open(self, raw: bytes) -> tuple[bytes, bool]:
        """TLS records from the host -> (plain bytes, whether the host ended TLS)."""
        parts = []
        ended = False
        with self._lock:
            self._tls.bio_write(raw)
            while True:
                try:
                    parts.append(self._tls.recv(_BIO_CHUNK))
                except SSL.WantReadError:
                    break
                except (SSL.ZeroReturnError, SSL.Error):
                    ended = True
                    break
        return b"".join(parts), ended

    def _drain(self) -> bytes:
        parts = []
        while True:
            try:
                parts.append(self._tls.bio_read(_BIO_CHUNK))
            except SSL.WantReadError:
                return b"".join(parts)


class TlsReader:
    """The host's decrypted bytes, read as the connection reads a plain socket's file:
    `read(n)` gives n bytes, fewer only at the end."""

    def __init__(self, raw: BinaryIO, session: TlsSession) -> None:
        self._raw = raw
        self._session = session
        self._plain = bytearray()
        self._ended = False

    def read(self, size: int) -> bytes:
        while len(self._plain) < size and not self._ended:
            raw = self._raw.read1(_BIO_CHUNK)  # type: ignore[attr-defined]
            if not raw:
                break
            plain, self._ended = self._session.open(raw)
            self._plain += plain
        taken = bytes(self._plain[:size])
        del self._plain[:size]
        return taken

    def close(self) -> None:
        self._raw.close()
