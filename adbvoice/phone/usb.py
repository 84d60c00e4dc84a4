"""Phones on USB, through adb-shell's libusb transport (the only code that touches libusb).

USB is tested only at this module's seam (`transports`): there is no USB phone here.
"""

from __future__ import annotations

from adb_shell.exceptions import UsbReadFailedError, UsbWriteFailedError

from adbvoice import errors
from adbvoice.phone import adbserver
from adbvoice.phone.connection import LinkClosed, LinkTimeout

UDEV_HINT = (
    "no permission to open the phone's USB device: install Debian's android-sdk-platform-tools-common "
    "(or add the udev rule  SUBSYSTEM==\"usb\", ATTR{idVendor}==\"<vendor>\", MODE=\"0660\", GROUP=\"plugdev\"  "
    "to /etc/udev/rules.d/51-android.rules), add yourself to the plugdev group, then replug the phone"
)


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


def transports():  # noqa: ANN202 - adb_shell UsbTransport instances
    """Every ADB interface on USB; the seam tests replace (no USB phone exists here)."""
    try:
        from adb_shell.transport.usb_transport import UsbTransport
    except (ImportError, OSError) as exc:
        raise errors.NoDeviceError(
            f"no phone found: USB support is unavailable ({exc}); install libusb-1.0, or use --tcp"
        ) from exc
    return list(UsbTransport.find_all_adb_devices())


def mapped_error(exc: Exception) -> errors.AdbVoiceError | None:
    name = type(exc).__name__
    if name == "USBErrorAccess":
        return errors.UsbPermissionError(UDEV_HINT)
    if name == "USBErrorBusy":
        return errors.UsbBusyError(
            "another program holds the phone's USB interface (an adb server not answering on "
            f"port {adbserver.server_port()}?): close it, e.g. `adb kill-server`, and try again"
        )
    return None


def serial_of(transport) -> str:  # noqa: ANN001
    try:
        return transport.serial_number or "?"
    except Exception as exc:  # libusb raises its own error types
        mapped = mapped_error(exc)
        if mapped:
            raise mapped from exc
        return "?"


def serials() -> list[str]:
    """The serial of each phone on USB, without opening an ADB connection to it: what
    `watch` and `backup --if-present` poll. NoDeviceError when USB is unavailable."""
    return [serial_of(t) for t in transports()]
