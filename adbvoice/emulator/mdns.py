"""The emulated phone's mDNS announcements, as adbd makes them for Wireless debugging.

adbd registers `_adb-tls-connect._tcp` under its GUID while Wireless debugging is on, and
`_adb-tls-pairing._tcp` while a pairing dialog is open (or under the QR code's name after a
scan). The emulator announces on one address only (127.0.0.1 by default): multicast on the
loopback interface reaches zeroconf browsers and Google's adb on the same machine.
"""

from __future__ import annotations

import socket

from zeroconf import ServiceInfo, Zeroconf


def _full_type(service_type: str) -> str:
    name = service_type.rstrip(".")
    return f"{name}." if name.endswith(".local") else f"{name}.local."


class Announcement:
    """Announces one service until closed (a context manager); closing says goodbye."""

    def __init__(self, service_type: str, instance: str, port: int, host: str = "127.0.0.1") -> None:
        kind = _full_type(service_type)
        server = "".join(c if c.isalnum() or c == "-" else "-" for c in instance)[:60] or "adbd"
        self.info = ServiceInfo(kind, f"{instance}.{kind}", port=port, addresses=[socket.inet_aton(host)],
                                server=f"{server}.local.")
        self._zc = Zeroconf(interfaces=[host])
        try:
            self._zc.register_service(self.info, allow_name_change=True)
        except BaseException:
            self._zc.close()
            raise

    def close(self) -> None:
        if self._zc is not None:
            zc, self._zc = self._zc, None
            try:
                zc.unregister_service(self.info)
            finally:
                zc.close()

    def __enter__(self) -> Announcement:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
