"""The adb-shell library (the Python host side) uses the emulated phone like a phone:
shell, list, stat and pull, each file byte-identical to PHONE_DIR."""

from __future__ import annotations

import stat
from pathlib import Path

from adb_shell.adb_device import AdbDeviceTcp

from adbvoice.emulator import EmulatedPhone

NOTES = "/sdcard/Android/media/com.whatsapp/WhatsApp/Media/WhatsApp Voice Notes/202418"


def connected(phone: EmulatedPhone) -> AdbDeviceTcp:
    device = AdbDeviceTcp("127.0.0.1", phone.port, default_transport_timeout_s=5)
    device.connect()
    return device


def test_adb_shell_lists_stats_and_pulls_byte_identical(phone: EmulatedPhone, tmp_path: Path) -> None:
    device = connected(phone)
    names = {bytes(f.filename).decode(): f for f in device.list(NOTES)}
    assert set(names) == {".", "..", "Sent", ".nomedia", "PTT-20240501-WA0001.opus", "PTT-20240502-WA0002.opus"}
    note = phone.root / NOTES.removeprefix("/sdcard/") / "PTT-20240501-WA0001.opus"
    assert names["PTT-20240501-WA0001.opus"].size == note.stat().st_size
    assert names["PTT-20240501-WA0001.opus"].mtime == int(note.stat().st_mtime)
    assert stat.S_ISDIR(names["Sent"].mode)

    mode, size, mtime = device.stat(f"{NOTES}/PTT-20240501-WA0001.opus")
    assert (stat.S_ISREG(mode), size, mtime) == (True, note.stat().st_size, int(note.stat().st_mtime))
    # STAT is lstat (adbd's do_lstat_v1): /sdcard is Android's symlink, a missing file zeros.
    assert stat.S_ISLNK(device.stat("/sdcard")[0])
    assert device.stat("/sdcard/missing") == (0, 0, 0)

    for name in ("PTT-20240501-WA0001.opus", "PTT-20240502-WA0002.opus", ".nomedia", "Sent/PTT-20240503-WA0003.opus"):
        local = tmp_path / name.replace("/", "_")
        device.pull(f"{NOTES}/{name}", str(local))
        assert local.read_bytes() == (phone.root / NOTES.removeprefix("/sdcard/") / name).read_bytes()
    device.close()
    # adb-shell opens one sync: stream per call and uses sync v1 only.
    assert set(phone.log.services()) == {"sync:"}


def test_adb_shell_shell_is_a_raw_pty_mixing_stdout_and_stderr(phone: EmulatedPhone) -> None:
    device = connected(phone)
    # shell:CMD has no protocol: adbd runs it on a raw PTY, so output is mixed and the
    # command sees a terminal: toybox ls prints columns and escapes spaces, as on a phone.
    assert device.shell("echo out; echo err >&2") == "out\nerr\n"
    assert device.shell("test -t 1 && echo tty") == "tty\n"
    assert device.shell("ls /sdcard") == "Android  Download  Music  empty\\ folder\n"
    assert device.shell("ls -1 /sdcard/Music") == "Grüße\\ aus\\ Köln\n"  # UTF-8, as bionic
    assert device.shell("getprop ro.build.version.sdk; getprop ro.serialno") == "34\nEMU0001\n"
    assert device.shell("id -u; echo $USER $HOME $PATH") == "2000\nshell / /system/bin\n"
    device.close()
    assert phone.log.services()[0] == "shell:echo out; echo err >&2"
