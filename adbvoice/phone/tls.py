"""TLS for Wireless debugging (Android 11+): the host's half, on the connection it already has.

On a Wireless-debugging port adbd answers the host's CNXN with STLS instead of AUTH
(adb.cpp, handle_new_connection); the host answers STLS and starts TLS 1.3 on the same
socket, presenting a self-signed certificate made from its adb key (crypto/x509_generator.cpp);
adbd accepts the connection only if that key is one it trusts (daemon/auth.cpp,
adbd_tls_verify_cert), then sends CNXN inside TLS, with no AUTH at all.

The phone's own certificate is self-signed too and proves nothing (pairing is what
authenticates the phone), so it is not verified, as adb does not verify it either.

Python's SSLSocket may not be read by one thread while another writes (OpenSSL forbids
concurrent use of one SSL object), and the link reads on its own thread while others
send. So the TLS state is an SSLObject over memory buffers, used under a lock for the
instants it encrypts or decrypts, while the socket itself is read and written outside it.
"""

from __future__ import annotations

import os
import ssl
import tempfile
import threading
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from adbvoice.phone.certificate import adb_certificate
from adbvoice.phone.connection import LinkClosed, TcpPipe

_RAW_READ = 256 * 1024


class TlsHandshakeFailed(LinkClosed):
    """The TLS handshake itself failed: whatever answered is not a Wireless-debugging port."""


def client_context(adb_key: Path) -> ssl.SSLContext:
    """TLS 1.3 only, presenting adb_key's certificate, not checking the phone's."""
    # Our own key, already in use for AUTH: checking its RSA maths again costs ~80 ms a run.
    key = serialization.load_pem_private_key(adb_key.read_bytes(), password=None, unsafe_skip_rsa_key_validation=True)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{adb_key} is not an RSA key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    # load_cert_chain takes file names only; the certificate is public, the key stays where it is.
    with tempfile.TemporaryDirectory(prefix="adbvoice-tls-") as folder:
        cert_file = os.path.join(folder, "adbkey.crt")
        Path(cert_file).write_bytes(adb_certificate(key).public_bytes(serialization.Encoding.PEM))
        context.load_cert_chain(cert_file, keyfile=str(adb_key))
    return context


class TlsPipe:
    """The Pipe interface over TLS on a TcpPipe's socket (see the module's docstring)."""

    def __init__(self, raw: TcpPipe, context: ssl.SSLContext) -> None:
        self._raw = raw
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=False)
        self._tls_lock = threading.Lock()  # the SSLObject
        self._send_lock = threading.Lock()  # keeps records in order on the socket
        self._plain = bytearray()  # decrypted, not yet taken; only the reading thread uses it

    def handshake(self, timeout: float) -> None:
        """TLS 1.3's one round trip. With TLS 1.3 the phone checks our key after this
        returns: a refusal shows as the first read failing."""
        while True:
            try:
                with self._tls_lock:
                    self._tls.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                self._flush()
                self._take_raw(timeout)
            except ssl.SSLError as exc:
                raise TlsHandshakeFailed(f"TLS handshake failed: {exc.reason or exc}") from exc

    def send(self, header: bytes, payload: bytes) -> None:
        with self._send_lock:
            with self._tls_lock:
                try:
                    self._tls.write(header + payload)
                except ssl.SSLError as exc:
                    raise LinkClosed(f"TLS: {exc.reason or exc}") from exc
                sealed = self._outgoing.read()
            self._raw.send(sealed, b"")

    def recv_exact(self, size: int, timeout: float | None) -> bytes:
        while len(self._plain) < size:
            with self._tls_lock:
                try:
                    chunk = self._tls.read(_RAW_READ)
                except ssl.SSLWantReadError:
                    chunk = b""
                except ssl.SSLZeroReturnError as exc:
                    raise LinkClosed("the phone closed the connection") from exc
                except ssl.SSLError as exc:
                    raise LinkClosed(f"the phone ended TLS: {exc.reason or exc}") from exc
                answer_owed = self._outgoing.pending
            if answer_owed:  # reading made TLS answer something (a key update)
                self._flush()
            if chunk:
                self._plain += chunk
            else:
                self._take_raw(timeout)
        taken = bytes(self._plain[:size])
        del self._plain[:size]  # cheap: bytearray drops from its front without moving the rest
        return taken

    def _take_raw(self, timeout: float | None) -> None:
        raw = self._raw.recv_some(_RAW_READ, timeout)
        with self._tls_lock:
            self._incoming.write(raw)

    def _flush(self) -> None:
        with self._send_lock:
            with self._tls_lock:
                sealed = self._outgoing.read()
            if sealed:
                self._raw.send(sealed, b"")

    def close(self) -> None:
        self._raw.close()


def start_tls(raw: TcpPipe, adb_key: Path, timeout: float) -> TlsPipe:
    """Answering the phone's STLS done, TLS on the same socket."""
    pipe = TlsPipe(raw, client_context(adb_key))
    pipe.handshake(timeout)
    return pipe
