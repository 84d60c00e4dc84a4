"""Reaching the phone: USB, Wi-Fi (TCP) or through a running adb server; keys and
authorization; who the phone is; and the few operations a backup needs from it.

This is the only module that imports adb_shell: its USB transport (libusb) and its adb
key generation and signing. Everything above the byte transport is ours (adblink,
syncclient, shellclient) because adb-shell 0.4.4 cannot pipeline. Errors are turned into
adbvoice's own exceptions here, so every fault test has one seam to patch.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from adb_shell.auth.keygen import keygen, write_public_keyfile
from adb_shell.auth.sign_cryptography import CryptographySigner
from adb_shell.exceptions import UsbReadFailedError, UsbWriteFailedError

from adbvoice import errors
from adbvoice.phone import adbserver, scripts, wire
from adbvoice.phone.connection import (
    AdbLink,
    AuthRefused,
    AuthTimedOut,
    LinkClosed,
    LinkTimeout,
    ServiceRefused,
    Signer,
    TcpPipe,
)
from adbvoice.phone.shell import CommandResult, ShellClient
from adbvoice.phone.sync import PullSink, RemoteEntry, RemoteStat, StreamOpener, SyncClient

DEFAULT_TCP_PORT = 5555
UDEV_HINT = (
    "no permission to open the phone's USB device: install Debian's android-sdk-platform-tools-common "
    "(or add the udev rule  SUBSYSTEM==\"usb\", ATTR{idVendor}==\"<vendor>\", MODE=\"0660\", GROUP=\"plugdev\"  "
    "to /etc/udev/rules.d/51-android.rules), add yourself to the plugdev group, then replug the phone"
)
PROMPT_TEXT = "Unlock the phone and tap \"Allow\" on the \"Allow USB debugging?\" prompt (waiting up to {timeout:g} s)"


@dataclass(frozen=True)
class ConnectOptions:
    tcp: tuple[str, int] | None
    serial: str | None
    adb_key: Path
    auth_timeout_s: float = 60.0
    connect_timeout_s: float = 10.0
    io_timeout_s: float = 30.0


@dataclass(frozen=True)
class PhoneIdentity:
    serial: str
    model: str
    android: str | None
    transport: str  # how we reached it: "usb", "tcp 10.0.0.5:5555", "adb server"

    @property
    def label(self) -> str:
        return f"{self.model} ({self.serial})"


@dataclass(frozen=True)
class Survey:
    """What is on the phone under the source roots, and who the phone is."""

    identity: PhoneIdentity
    roots: dict[bytes, RemoteStat]
    entries: list[RemoteEntry]
    listed_by: str  # "shell" or "sync"
    problems: tuple[str, ...] = ()  # what the phone's shell said on stderr (unreadable folders...)
    fingerprint: str | None = None  # SHA-256 of the shell listing (scripts.fingerprint_script)
    unchanged: bool = False  # the fingerprint was the known one: `entries` was not fetched


def parse_tcp_address(text: str) -> tuple[str, int]:
    """`HOST[:PORT]` as `adb connect` takes it (IPv6 in brackets); port 5555 by default."""
    host, port = text, DEFAULT_TCP_PORT
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _port(port_text, text)
    if not host:
        raise errors.UsageError(f"--tcp {text!r}: no host name or address")
    return host, port


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise errors.UsageError(f"--tcp {whole!r}: the port must be a number from 1 to 65535")
    return int(text)


# --- keys ------------------------------------------------------------------------


def load_signer(key_path: Path) -> Signer:
    """The adb key at `key_path`, created the way adb creates it if there is none, so a
    phone that already trusts Google's adb on this computer trusts us too."""
    try:
        if not key_path.exists():
            key_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # keygen() writes with the default mode; create the file 0600 first so the
            # private key is never readable by others, even for an instant.
            os.close(os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            keygen(str(key_path))
        public = Path(f"{key_path}.pub")
        if not public.exists():
            write_public_keyfile(str(key_path), str(public))
        return CryptographySigner(str(key_path))
    except (OSError, ValueError, TypeError) as exc:
        raise errors.AdbKeyError(f"cannot use the adb key {key_path}: {exc}") from exc


# --- byte transports ---------------------------------------------------------------


class UsbPipe:
    """adb-shell's libusb transport behind our Pipe interface."""

    def __init__(self, transport) -> None:  # noqa: ANN001 - adb_shell UsbTransport
        self._usb = transport
        self._pending = bytearray()

    def send(self, header: bytes, payload: bytes) -> None:
        try:
            self._usb.bulk_write(header, None)
            if payload:
                self._usb.bulk_write(payload, None)
        except UsbWriteFailedError as exc:
            raise LinkClosed(f"USB write failed: {exc}") from exc

    def recv_exact(self, size: int, timeout: float | None) -> bytes:
        """With no timeout, waits as long as the phone stays connected: a bulk read's own
        timeout then only means that nothing came yet."""
        while len(self._pending) < size:
            try:
                self._pending += self._usb.bulk_read(max(size - len(self._pending), 512), timeout)
            except UsbReadFailedError as exc:
                if type(exc.usb_error).__name__ != "USBErrorTimeout":
                    raise LinkClosed(f"USB read failed: {exc}") from exc
                if timeout is not None:
                    raise LinkTimeout(f"no answer from the phone for {timeout:g} s") from exc
        data = bytes(self._pending[:size])
        del self._pending[:size]
        return data

    def close(self) -> None:
        self._usb.close()


def _open_tcp(host: str, port: int, timeout: float, io_timeout: float) -> TcpPipe:
    where = f"{host}:{port}"
    try:
        return TcpPipe(host, port, timeout, io_timeout)
    except ConnectionRefusedError as exc:
        raise errors.HostUnreachableError(
            f"{where} refused the connection: turn on Wireless debugging, or run `adb tcpip {port}` "
            "with the phone on USB once"
        ) from exc
    except socket.gaierror as exc:
        raise errors.HostUnreachableError(f"cannot resolve {host!r}: {exc.strerror}") from exc
    except (socket.timeout, TimeoutError) as exc:
        raise errors.HostUnreachableError(
            f"{where} did not answer within {timeout:g} s: is the phone on the same Wi-Fi?"
        ) from exc
    except OSError as exc:
        raise errors.HostUnreachableError(f"cannot reach {where}: {exc.strerror or exc}") from exc


def _usb_transports():  # noqa: ANN202 - adb_shell UsbTransport instances
    """Every ADB interface on USB; the seam tests replace (no USB phone exists here)."""
    try:
        from adb_shell.transport.usb_transport import UsbTransport
    except (ImportError, OSError) as exc:
        raise errors.NoDeviceError(
            f"no phone found: USB support is unavailable ({exc}); install libusb-1.0, or use --tcp"
        ) from exc
    return list(UsbTransport.find_all_adb_devices())


def _usb_error(exc: Exception) -> errors.AdbVoiceError | None:
    name = type(exc).__name__
    if name == "USBErrorAccess":
        return errors.UsbPermissionError(UDEV_HINT)
    if name == "USBErrorBusy":
        return errors.UsbBusyError(
            "another program holds the phone's USB interface (an adb server not answering on "
            f"port {adbserver.server_port()}?): close it, e.g. `adb kill-server`, and try again"
        )
    return None


def _usb_serial(transport) -> str:  # noqa: ANN001
    try:
        return transport.serial_number or "?"
    except Exception as exc:  # libusb raises its own error types
        mapped = _usb_error(exc)
        if mapped:
            raise mapped from exc
        return "?"


def usb_serials() -> list[str]:
    """The serial of each phone on USB, without opening an ADB connection to it: what
    `watch` and `backup --if-present` poll. NoDeviceError when USB is unavailable."""
    return [_usb_serial(t) for t in _usb_transports()]


# --- the phone ---------------------------------------------------------------------


class Phone:
    """A connected phone: streams to its services and the operations a backup needs."""

    def __init__(
        self,
        opener: StreamOpener,
        features: frozenset[str],
        fallback_identity: PhoneIdentity,
        closer: Callable[[], None],
    ) -> None:
        self._opener = opener
        self._closer = closer
        self.features = features
        self._fallback_identity = fallback_identity
        self.shell = ShellClient(opener, shell_v2=wire.FEATURE_SHELL_V2 in features)
        self.sync = SyncClient(
            opener, stat_v2=wire.FEATURE_STAT_V2 in features, ls_v2=wire.FEATURE_LS_V2 in features
        )

    def survey(self, roots: Sequence[str], known: Mapping[str, str] | None = None) -> Survey:
        """Who the phone is and everything below `roots`: one shell command where the phone
        has a shell (one round trip however many notes), else sync LIST level by level.

        `known` maps serials to the fingerprint of the listing their last complete backup
        worked from; when the phone's matches, the listing itself is not fetched."""
        try:
            if known:
                answer = self.shell.run(scripts.fingerprint_script(roots), raw=True)
                props, root_stats, fingerprint = scripts.parse_fingerprint(answer.stdout, roots)
                identity = self._identity(props)
                if known.get(identity.serial) == fingerprint:
                    return Survey(identity, root_stats, [], "shell", (), fingerprint, unchanged=True)
                result = self.shell.run(scripts.listing_script(roots))
                listing = result.stdout
            else:
                result = self.shell.run(scripts.identity_script() + "; " + scripts.listing_script(roots))
                props, listing = scripts.split_identity(result.stdout)
                identity = self._identity(props)
            root_stats, entries = scripts.parse_listing(listing, roots)
            fingerprint = scripts.listing_fingerprint(listing)
            return Survey(identity, root_stats, entries, "shell", _said(result), fingerprint)
        except (ServiceRefused, scripts.UnexpectedOutput):
            root_stats, entries = self.sync.walk([r.encode() for r in roots])
            return Survey(self._fallback_identity, root_stats, entries, "sync")

    def _identity(self, props: dict[str, str]) -> PhoneIdentity:
        fallback = self._fallback_identity
        return PhoneIdentity(
            serial=props.get("ro.serialno") or fallback.serial,
            model=props.get("ro.product.model") or fallback.model,
            android=props.get("ro.build.version.release") or fallback.android,
            transport=fallback.transport,
        )

    def start_hashing(self, paths: Sequence[bytes]) -> scripts.PhoneHashes | None:
        """Have the phone SHA-1 the files we are about to pull, on a stream of its own that
        runs alongside the copy; None where the phone cannot (no shell_v2)."""
        if not paths or not self.shell.shell_v2:
            return None
        try:
            command = self.shell.start(scripts.HASH_COMMAND, stdin=scripts.hash_stdin(paths), background=True)
        except ServiceRefused:
            return None
        return scripts.PhoneHashes(command, paths)

    def stat_many(self, paths: Sequence[bytes]) -> list[RemoteStat]:
        return self.sync.stat_many(paths)

    def pull_many(self, paths: Sequence[bytes], sink: PullSink) -> None:
        self.sync.pull_many(paths, sink)

    def close(self) -> None:
        self._closer()


def _said(result: CommandResult) -> tuple[str, ...]:
    return tuple(result.stderr.decode("utf-8", "replace").splitlines())


def connect(options: ConnectOptions, on_prompt: Callable[[str], None]) -> Phone:
    """Find and open the phone: --tcp directly; otherwise through a running adb server if it
    holds phones, else over USB. Every failure is an adbvoice error with its exit code."""
    signer = load_signer(options.adb_key)
    if options.tcp:
        host, port = options.tcp
        pipe = _open_tcp(host, port, options.connect_timeout_s, options.io_timeout_s)
        return _handshake(pipe, options, signer, on_prompt, f"{host}:{port}", f"tcp {host}:{port}")
    served = adbserver.list_devices()
    if served:
        return _through_server(served, options, on_prompt)
    return _over_usb(options, signer, on_prompt)


def _handshake(
    pipe, options: ConnectOptions, signer: Signer, on_prompt: Callable[[str], None], serial: str, transport: str
) -> Phone:  # noqa: ANN001
    link = AdbLink(pipe, options.io_timeout_s)
    try:
        banner = link.connect(
            [signer], options.auth_timeout_s, lambda: on_prompt(PROMPT_TEXT.format(timeout=options.auth_timeout_s))
        )
    except AuthRefused as exc:
        link.close()
        raise errors.NotAuthorizedError(
            "the phone refused this computer: on the phone, revoke USB debugging authorizations "
            "(Developer options), reconnect and tap Allow"
        ) from exc
    except AuthTimedOut as exc:
        link.close()
        raise errors.AuthTimeoutError(
            f"nobody tapped Allow on the phone within {options.auth_timeout_s:g} s; unlock it and run again "
            "(--auth-timeout waits longer)"
        ) from exc
    except LinkClosed as exc:
        link.close()
        raise errors.HostUnreachableError(f"{serial} is not answering as an Android phone: {exc}") from exc
    model = banner.props.get("ro.product.model") or banner.props.get("ro.product.name") or "Android phone"
    identity = PhoneIdentity(serial, model, None, transport)
    return Phone(link.open, banner.features, identity, link.close)


def _through_server(
    served: list[adbserver.ServerDevice], options: ConnectOptions, on_prompt: Callable[[str], None]
) -> Phone:
    port = adbserver.server_port()
    device = _choose(served, options.serial, lambda d: d.serial, lambda d: f"{d.serial} ({d.state})")
    deadline = time.monotonic() + options.auth_timeout_s
    prompted = False
    while device.state != "device":
        if device.state != "unauthorized" and device.state != "authorizing":
            raise errors.NoDeviceError(f"the adb server sees {device.serial} as {device.state!r}: replug the phone")
        if not prompted:
            on_prompt(PROMPT_TEXT.format(timeout=options.auth_timeout_s))
            prompted = True
        if time.monotonic() > deadline:
            raise errors.AuthTimeoutError(
                f"nobody tapped Allow on the phone within {options.auth_timeout_s:g} s; unlock it and run again"
            )
        time.sleep(0.5)
        again = [d for d in adbserver.list_devices(port) or [] if d.serial == device.serial]
        if not again:
            raise errors.NoDeviceError(f"{device.serial} went away while waiting for authorization")
        device = again[0]
    features = frozenset(adbserver.query(port, f"host-serial:{device.serial}:features").split(","))

    def opener(service: str, *, background: bool = False) -> adbserver.ServerStream:  # noqa: ARG001
        """The adb server acknowledges the phone's data itself: `background` changes nothing."""
        return adbserver.ServerStream(port, device.serial, service, options.io_timeout_s)

    model = device.props.get("model", "Android phone").replace("_", " ")
    identity = PhoneIdentity(device.serial, model, None, "adb server")
    return Phone(opener, features, identity, lambda: None)


def _over_usb(options: ConnectOptions, signer: Signer, on_prompt: Callable[[str], None]) -> Phone:
    transports = _usb_transports()
    if not transports:
        raise errors.NoDeviceError(
            "no phone found: plug it in with USB debugging on (Settings > Developer options), "
            "or use --tcp HOST for Wireless debugging"
        )
    transport = _choose(transports, options.serial, _usb_serial, _usb_serial)
    serial = _usb_serial(transport)
    try:
        transport.connect(options.connect_timeout_s)
    except Exception as exc:  # libusb's error classes
        mapped = _usb_error(exc)
        if mapped:
            raise mapped from exc
        raise errors.NoDeviceError(f"cannot open the USB phone {serial}: {exc}") from exc
    return _handshake(UsbPipe(transport), options, signer, on_prompt, serial, "usb")


def _choose(candidates: list, serial: str | None, serial_of: Callable, describe: Callable):  # noqa: ANN202
    """The one phone to use: the one matching --serial, or the only one there is."""
    if serial:
        matching = [c for c in candidates if serial_of(c) == serial]
        if not matching:
            seen = ", ".join(describe(c) for c in candidates)
            raise errors.NoDeviceError(f"no phone with serial {serial!r}; attached: {seen}")
        return matching[0]
    if len(candidates) > 1:
        listed = ", ".join(describe(c) for c in candidates)
        raise errors.SeveralDevicesError(f"several phones attached ({listed}): choose one with --serial")
    return candidates[0]
