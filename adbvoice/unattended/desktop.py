"""The one door to the desktop's notifications: the freedesktop service on Linux's session
D-Bus (jeepney), Notification Center on macOS (desktop-notifier).

A notification is a courtesy, never part of the backup: whatever goes wrong here — no
session bus (a server, cron, ssh), no notification server on it, a server that does not
answer — becomes one NotificationUnavailable saying why, and the backup goes on.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "adbvoice"
# How long a notification server may take to answer (D-Bus may first start it on demand).
REPLY_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Notice:
    """One notification: a title and a line or two of text."""

    title: str
    body: str
    urgent: bool = False  # something for the person to do or to know went wrong


class NotificationUnavailable(Exception):
    """No notification could be shown here; the message says why."""


def show(notice: Notice) -> None:
    """Show the notice now, or raise NotificationUnavailable."""
    if sys.platform == "darwin":
        _show_macos(notice)
    elif sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        _show_freedesktop(notice)
    else:
        raise NotificationUnavailable(f"desktop notifications are not supported on {sys.platform}")


def session_bus_address() -> str:
    """The session bus, as D-Bus clients find it: $DBUS_SESSION_BUS_ADDRESS, else the
    per-user bus a systemd user session keeps at $XDG_RUNTIME_DIR/bus (dbus-user-session),
    which is all a user service started at login may know of it. Cron sets neither, so
    the runtime folder logind makes for a logged-in user, /run/user/<uid>, is tried last."""
    address = os.environ.get("DBUS_SESSION_BUS_ADDRESS", "")
    if address:
        return address
    bus = Path(os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}", "bus")
    if bus.is_socket():
        return f"unix:path={bus}"
    raise NotificationUnavailable("no desktop session bus here (DBUS_SESSION_BUS_ADDRESS is not set)")


def _show_freedesktop(notice: Notice) -> None:
    """org.freedesktop.Notifications.Notify, as the Desktop Notifications Specification
    (1.2) defines it: app name, replaces id, icon, summary, body, actions, hints, timeout."""
    address = session_bus_address()
    try:
        from jeepney import DBusAddress, new_method_call
        from jeepney.io.blocking import open_dbus_connection
        from jeepney.wrappers import DBusErrorResponse, unwrap_msg
    except ImportError as exc:
        raise NotificationUnavailable("the jeepney package is missing (pip install jeepney)") from exc
    service = DBusAddress("/org/freedesktop/Notifications", bus_name="org.freedesktop.Notifications",
                          interface="org.freedesktop.Notifications")
    hints = {"urgency": ("y", 2 if notice.urgent else 1)}  # the spec's critical / normal
    icon = "dialog-warning" if notice.urgent else "drive-removable-media"
    call = new_method_call(service, "Notify", "susssasa{sv}i",
                           (APP_NAME, 0, icon, notice.title, notice.body, [], hints, -1))
    try:
        with open_dbus_connection(bus=address, auth_timeout=REPLY_TIMEOUT_S) as bus:
            unwrap_msg(bus.send_and_get_reply(call, timeout=REPLY_TIMEOUT_S))
    except DBusErrorResponse as exc:
        if exc.name == "org.freedesktop.DBus.Error.ServiceUnknown":
            raise NotificationUnavailable("no notification server is running on the session bus") from exc
        raise NotificationUnavailable(f"the notification server refused: {exc.name}") from exc
    except TimeoutError as exc:
        raise NotificationUnavailable(f"the session bus did not answer within {REPLY_TIMEOUT_S:g} s") from exc
    except (OSError, RuntimeError, ValueError) as exc:  # no such socket, an address jeepney cannot use
        raise NotificationUnavailable(f"cannot reach the session bus at {address}: {exc}") from exc


def _show_macos(notice: Notice) -> None:
    """Notification Center, through desktop-notifier (UNUserNotificationCenter over rubicon-objc)."""
    try:
        from desktop_notifier import DesktopNotifierSync, Urgency
    except ImportError as exc:
        raise NotificationUnavailable("the desktop-notifier package is missing (pip install desktop-notifier)") \
            from exc
    try:
        DesktopNotifierSync(app_name=APP_NAME).send(
            title=notice.title, message=notice.body, urgency=Urgency.Critical if notice.urgent else Urgency.Normal
        )
    except Exception as exc:  # noqa: BLE001 - whatever the framework raises, the backup goes on
        raise NotificationUnavailable(f"Notification Center refused: {exc}") from exc
