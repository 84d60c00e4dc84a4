"""The pairing protocol's pieces both sides share: TLS 1.3 over a socket with deadlines,
the frames, PeerInfo, and the AES-128-GCM channel (AOSP packages/modules/adb,
pairing_connection/pairing_connection.cpp, pairing_auth/, tls/tls_connection.cpp).

Pairing runs inside TLS 1.3 in which each side shows a self-signed certificate and neither
checks the other's; what binds the code to this very TLS session is the password: the
code's ASCII bytes followed by 64 bytes exported from the session (label "adb-label\\0",
no context). Python's ssl cannot export keying material, pyOpenSSL can, so TLS is
pyOpenSSL's, fed through memory buffers so that every wait has a deadline of ours.

After TLS: each side sends its SPAKE2 message, then its PeerInfo (8192 bytes: a type byte
and NUL-padded data) sealed with AES-128-GCM under HKDF-SHA256(SPAKE2 key, no salt, info
"adb pairing_auth aes-128-gcm key"); the nonce is a 64-bit little-endian message counter
and four zero bytes, one counter per direction. A wrong code shows as a PeerInfo that does
not open, and the side that saw it closes the connection.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from OpenSSL import SSL

from adbvoice.phone.certificate import adb_certificate
from adbvoice.phone.spake2 import Spake2, Spake2Error

CLIENT_NAME = b"adb pair client\0"
SERVER_NAME = b"adb pair server\0"
EXPORTER_LABEL = b"adb-label\0"
EXPORTED_SIZE = 64
HKDF_INFO = b"adb pairing_auth aes-128-gcm key"
VERSION = 1
SPAKE2_MSG = 0
PEER_INFO = 1
HEADER = struct.Struct(">BBI")
MAX_PAYLOAD = 2 * 8192
PEER_INFO_SIZE = 8192
RSA_PUB_KEY = 0
DEVICE_GUID = 1
_READ = 65536


class PairingClosed(Exception):
    """The peer closed the connection (or the deadline passed) before the exchange ended."""


class PairingRefused(Exception):
    """The peer's sealed PeerInfo did not open: the two sides used different codes."""


class PairingProtocolError(Exception):
    """The peer sent something the protocol does not allow."""


@dataclass(frozen=True)
class PeerInfo:
    kind: int  # RSA_PUB_KEY from the host, DEVICE_GUID from the phone
    text: str

    def pack(self) -> bytes:
        data = self.text.encode()
        if len(data) > PEER_INFO_SIZE - 2:  # one byte of type, and a NUL must stay
            raise ValueError(f"peer info of {len(data)} bytes does not fit")
        return bytes([self.kind]) + data.ljust(PEER_INFO_SIZE - 1, b"\0")

    @classmethod
    def unpack(cls, raw: bytes) -> PeerInfo:
        if len(raw) != PEER_INFO_SIZE:
            raise PairingProtocolError(f"peer info of {len(raw)} bytes, not {PEER_INFO_SIZE}")
        text = raw[1:].split(b"\0", 1)[0]
        try:
            return cls(raw[0], text.decode("ascii"))
        except UnicodeDecodeError:
            raise PairingProtocolError("peer info that is not ASCII") from None


def tls_context(key: rsa.RSAPrivateKey) -> SSL.Context:
    """TLS 1.3 only, showing the key's adb certificate, asking for the peer's and accepting any."""
    context = SSL.Context(SSL.TLS_METHOD)
    context.set_min_proto_version(SSL.TLS1_3_VERSION)
    context.set_max_proto_version(SSL.TLS1_3_VERSION)
    context.use_certificate(adb_certificate(key))
    context.use_privatekey(key)
    # Pairing authenticates by the code, not by certificates (tls_connection.cpp's
    # SetCertVerifyCallback returning 1); the peer must still show one.
    context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda *_: True)
    return context


class PairingChannel:
    """One pairing exchange on a connected socket, either side, every wait bounded by `deadline`."""

    def __init__(self, sock: socket.socket, context: SSL.Context, server: bool, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline
        self._tls = SSL.Connection(context, None)
        if server:
            self._tls.set_accept_state()
        else:
            self._tls.set_connect_state()
        self._server = server
        self._seal: AESGCM | None = None
        self._sent = 0
        self._received = 0

    # -- TLS through memory buffers --------------------------------------------------
    def _flush(self) -> None:
        while True:
            try:
                data = self._tls.bio_read(_READ)
            except SSL.WantReadError:
                return
            self._sock.sendall(data)

    def _fill(self) -> None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise PairingClosed("the other side did not answer in time")
        self._sock.settimeout(left)
        try:
            data = self._sock.recv(_READ)
        except TimeoutError:
            raise PairingClosed("the other side did not answer in time") from None
        except OSError as exc:
            raise PairingClosed(f"the connection broke: {exc.strerror or exc}") from exc
        if not data:
            raise PairingClosed("the other side closed the connection")
        self._tls.bio_write(data)

    def handshake(self) -> None:
        while True:
            try:
                self._tls.do_handshake()
                self._flush()
                return
            except SSL.WantReadError:
                self._flush()
                self._fill()
            except SSL.Error as exc:
                self._flush()
                raise PairingProtocolError(f"TLS handshake failed: {exc}") from exc

    def _write(self, data: bytes) -> None:
        try:
            self._tls.sendall(data)
            self._flush()
        except (SSL.Error, OSError) as exc:
            raise PairingClosed(f"the connection broke: {exc}") from exc

    def _read_exact(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            try:
                data += self._tls.recv(size - len(data))
            except SSL.WantReadError:
                self._flush()
                self._fill()
            except (SSL.ZeroReturnError, SSL.SysCallError):
                raise PairingClosed("the other side closed the connection") from None
            except SSL.Error as exc:
                raise PairingProtocolError(f"TLS failed: {exc}") from exc
        return bytes(data)

    # -- frames ----------------------------------------------------------------------
    def _send_frame(self, kind: int, payload: bytes) -> None:
        self._write(HEADER.pack(VERSION, kind, len(payload)) + payload)

    def _read_frame(self, kind: int) -> bytes:
        version, got, size = HEADER.unpack(self._read_exact(HEADER.size))
        if version != VERSION or got != kind or not 0 < size <= MAX_PAYLOAD:
            raise PairingProtocolError(f"unexpected frame (version {version}, type {got}, {size} bytes)")
        return self._read_exact(size)

    def _nonce(self, counter: int) -> bytes:
        return counter.to_bytes(8, "little") + bytes(4)

    # -- the exchange ----------------------------------------------------------------
    def exchange(self, code: bytes, mine: PeerInfo, accept: Callable[[PeerInfo], None] | None = None,
                 answer_first: bool = False) -> PeerInfo:
        """Handshake, SPAKE2, then PeerInfo both ways; the peer's PeerInfo.

        AOSP's sides both send their PeerInfo before reading the other's (a server with
        `answer_first` does that too). Otherwise the server reads first and calls `accept`
        (which may raise to refuse) before it answers, so that once a client holds the
        phone's GUID the phone already trusts its key; a client sends first either way."""
        self.handshake()
        exported = self._tls.export_keying_material(EXPORTER_LABEL, EXPORTED_SIZE, None)
        names = (SERVER_NAME, CLIENT_NAME) if self._server else (CLIENT_NAME, SERVER_NAME)
        spake = Spake2(not self._server, names[0], names[1], code + exported)
        self._send_frame(SPAKE2_MSG, spake.message)
        try:
            key_material = spake.finish(self._read_frame(SPAKE2_MSG))
        except Spake2Error as exc:
            raise PairingProtocolError(str(exc)) from exc
        key = HKDF(algorithm=hashes.SHA256(), length=16, salt=None, info=HKDF_INFO).derive(key_material)
        self._seal = AESGCM(key)
        if self._server and not answer_first:
            theirs = self._open(self._read_frame(PEER_INFO))
            if accept is not None:
                accept(theirs)
            self._send_frame(PEER_INFO, self._close(mine.pack()))
            return theirs
        self._send_frame(PEER_INFO, self._close(mine.pack()))
        try:
            sealed = self._read_frame(PEER_INFO)
        except PairingClosed:
            # The phone could not open ours (another code) and hung up without a word.
            raise PairingRefused("the phone hung up after our sealed peer info") from None
        theirs = self._open(sealed)
        if accept is not None:
            accept(theirs)
        return theirs

    def _close(self, plain: bytes) -> bytes:
        assert self._seal is not None
        sealed = self._seal.encrypt(self._nonce(self._sent), plain, None)
        self._sent += 1
        return sealed

    def _open(self, sealed: bytes) -> PeerInfo:
        assert self._seal is not None
        try:
            plain = self._seal.decrypt(self._nonce(self._received), sealed, None)
        except InvalidTag:
            raise PairingRefused("the peer info does not open: the codes differ") from None
        self._received += 1
        return PeerInfo.unpack(plain)
