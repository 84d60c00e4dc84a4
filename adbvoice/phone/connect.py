"""Reaching the phone: Wi-Fi (TCP), through a running adb server, or USB; the handshake,
authorization and the Allow wait. Every failure becomes an adbvoice error with its exit code."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from adbvoice import errors
from adbvoice.display import capped
from adbvoice.phone import adbserver, keys, usb
from adbvoice.phone.connection import (
    AdbLink,
    AuthRefused,
    AuthTimedOut,
    Deadline,
    LinkClosed,
    PhoneMisbehaved,
    Pipe,
    Signer,
    TcpPipe,
    TlsRefused,
)
from adbvoice.phone.device import Phone, PhoneIdentity
from adbvoice.phone.wire import WireError, what_answered

DEFAULT_TCP_PORT = 5555
PROMPT_TEXT = "Unlock the phone and tap \"Allow\" on the \"Allow USB debugging?\" prompt (waiting up to {timeout:g} s)"


@dataclass(frozen=True)
class ConnectOptions:
    tcp: tuple[str, int] | None
    serial: str | None
    adb_key: Path
    auth_timeout_s: float = 60.0
    connect_timeout_s: float = 10.0
    io_timeout_s: float = 30.0


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


def connect(options: ConnectOptions, on_prompt: Callable[[str], None]) -> Phone:
    """Find and open the phone: --tcp directly; otherwise through a running adb server if it
    holds phones, else over USB. Every failure is an adbvoice error with its exit code."""
    signer = keys.load_signer(options.adb_key)
    if options.tcp:
        host, port = options.tcp
        pipe = _open_tcp(host, port, options.connect_timeout_s, options.io_timeout_s)

        def start_tls(raw: Pipe) -> Pipe:
            """A Wireless-debugging port asked for TLS: it is noticed, not configured."""
            from adbvoice.phone import tls  # X.509 costs every run ~30 ms of imports: only when asked

            assert isinstance(raw, TcpPipe)
            try:
                return tls.start_tls(raw, options.adb_key, options.io_timeout_s)
            except (OSError, ValueError) as exc:
                raise errors.AdbKeyError(f"cannot use the adb key {options.adb_key} for TLS: {exc}") from exc

        return _handshake(pipe, options, signer, on_prompt, f"{host}:{port}", f"tcp {host}:{port}", start_tls)
    try:
        served = adbserver.list_devices()
        if served:
            return _through_server(served, options, on_prompt)
    except (adbserver.ServerError, adbserver.ServerProtocolError, LinkClosed) as exc:
        said = f"FAIL: {exc}" if isinstance(exc, adbserver.ServerError) else str(exc)
        raise errors.AdbServerError(
            f"the adb server on port {adbserver.server_port()} broke adb's protocol ({said}): restart it "
            "(`adb kill-server`), or use --tcp"
        ) from exc
    return _over_usb(options, signer, on_prompt)


def _handshake(
    pipe: Pipe,
    options: ConnectOptions,
    signer: Signer,
    on_prompt: Callable[[str], None],
    serial: str,
    transport: str,
    start_tls: Callable[[Pipe], Pipe] | None = None,
) -> Phone:
    link = AdbLink(pipe, options.io_timeout_s)
    try:
        banner = link.connect(
            [signer], options.auth_timeout_s, lambda: on_prompt(PROMPT_TEXT.format(timeout=options.auth_timeout_s)),
            start_tls,
        )
    except TlsRefused as exc:
        link.close()
        raise errors.TlsNotTrustedError(
            f"{serial} no longer trusts this computer ({exc}): pair again with `adbvoice pair` "
            "(Settings > Developer options > Wireless debugging)"
        ) from exc
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
    except errors.AdbKeyError:
        link.close()
        raise
    except PhoneMisbehaved as exc:
        link.close()
        raise exc.error(f"{serial}: {exc}; not an Android phone, or a broken one") from exc
    except LinkClosed as exc:
        link.close()
        if isinstance(exc.__cause__, WireError):  # its bytes are shown with -v, as the cause
            raise errors.HostUnreachableError(
                f"{what_answered(exc.__cause__.header)} answered at {serial}, not an Android phone: is this "
                f"the phone's address, and the port of its Wi-Fi debugging ({DEFAULT_TCP_PORT} unless set otherwise)?"
            ) from exc
        raise errors.HostUnreachableError(f"{serial} is not answering as an Android phone: {exc}") from exc
    model = capped(banner.props.get("ro.product.model") or banner.props.get("ro.product.name") or "Android phone")
    if link.in_tls:
        transport = transport.replace("tcp ", "tls ", 1)
    identity = PhoneIdentity(serial, model, None, transport)
    return Phone(link.open, banner.features, identity, link.close, link.deadline)


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

    deadline = Deadline()

    def opener(service: str, *, background: bool = False) -> adbserver.ServerStream:  # noqa: ARG001
        """The adb server acknowledges the phone's data itself: `background` changes nothing."""
        return adbserver.ServerStream(port, device.serial, service, options.io_timeout_s, deadline)

    model = capped(device.props.get("model", "Android phone").replace("_", " "))
    identity = PhoneIdentity(device.serial, model, None, "adb server")
    return Phone(opener, features, identity, lambda: None, deadline)


def _over_usb(options: ConnectOptions, signer: Signer, on_prompt: Callable[[str], None]) -> Phone:
    transports = usb.transports()
    if not transports:
        raise errors.NoDeviceError(
            "no phone found: plug it in with USB debugging on (Settings > Developer options), "
            "or use --tcp HOST for Wireless debugging"
        )
    transport = _choose(transports, options.serial, usb.serial_of, usb.serial_of)
    serial = usb.serial_of(transport)
    try:
        transport.connect(options.connect_timeout_s)
    except Exception as exc:  # libusb's error classes
        mapped = usb.mapped_error(exc)
        if mapped:
            raise mapped from exc
        raise errors.NoDeviceError(f"cannot open the USB phone {serial}: {exc}") from exc
    return _handshake(usb.UsbPipe(transport), options, signer, on_prompt, serial, "usb")


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
