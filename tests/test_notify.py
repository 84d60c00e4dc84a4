"""A person plugs the phone in and walks away: a desktop notification says the notes are
safe, or what went wrong, or that the phone waits for a tap. Shown by a real notification
server (dunst) on a real session bus; and where there is none, the backup still succeeds."""

from __future__ import annotations

import os
import subprocess

import pytest

from adbvoice.emulator import AuthPolicy, EmulatedPhone
from adbvoice.emulator.faults import Faults
from adbvoice.emulator.phonetree import add_notes, build_phone_tree
from adbvoice.phone import usb
from tests.conftest import free_port, run_cli
from tests.desktop import DesktopSession
from tests.test_backup_errors import BridgedUsb
from tests.test_schedule import log_lines
from tests.test_watch import Watching


@pytest.fixture
def bus(monkeypatch):
    """A session bus with nothing on it yet; this test's CLI runs find it as a desktop's would."""
    session = DesktopSession()
    session.start_bus()
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", session.address)
    yield session
    session.stop()


@pytest.fixture
def desktop(bus):
    """The session bus with dunst, under Xvfb, showing notifications."""
    bus.start_notification_server()
    return bus


@pytest.fixture
def clean_tree(tmp_path):
    """Notes with nothing to warn about: the notification speaks of the notes only."""
    return build_phone_tree(tmp_path / "sdcard", notes=6, seed=3, business=False, legacy=False, broken=False)


def test_a_usb_backup_that_saved_notes_says_how_many_how_long_and_safe_to_unplug(
    desktop, clean_tree, archive, monkeypatch
):
    with EmulatedPhone(clean_tree.root, serial="R58M12345") as phone:
        monkeypatch.setattr(usb, "transports", lambda: [BridgedUsb("R58M12345", phone.address)])
        result = run_cli("backup", archive, "--notify")
        assert result.exit_code == 0, result.stderr
        (shown,) = desktop.wait_shown(1)
        assert shown.app == "adbvoice" and shown.urgency == "NORMAL"
        assert shown.summary == "Pixel 7 (R58M12345): 6 new voice notes saved"
        assert shown.body.endswith(" of audio. Safe to unplug.") and shown.body[0].isdigit()

        again = run_cli("backup", archive, "--notify")  # nothing new: nothing to say
        assert again.exit_code == 0
        assert len(desktop.wait_shown(1)) == 1
        asked = run_cli("backup", archive, "--notify-always")  # unless asked
        assert asked.exit_code == 0
        *_, nothing = desktop.wait_shown(2)
        assert (nothing.summary, nothing.body) == ("Pixel 7 (R58M12345): no new voice notes", "Safe to unplug.")
        assert result.stderr == again.stderr == asked.stderr == ""


def test_a_phone_that_waits_for_a_tap_and_a_failed_backup_each_say_what_to_do(
    desktop, clean_tree, archive, tmp_path, home
):
    # The config file's `notify = true` asks for notifications, as `schedule --watch` does.
    (home / ".config" / "adbvoice").mkdir(parents=True)
    (home / ".config" / "adbvoice" / "config.toml").write_text("notify = true\n")
    with EmulatedPhone(clean_tree.root, auth=AuthPolicy(mode="pending", pending_seconds=1)) as phone:
        assert run_cli("backup", archive, "--tcp", phone.address).exit_code == 0
    tap, saved = desktop.wait_shown(2)
    assert tap.urgency == "CRITICAL" and 'tap "Allow" on the "Allow USB debugging?" prompt' in tap.body
    assert saved.summary == "Pixel 7 (EMU0001): 6 new voice notes saved"
    assert "unplug" not in saved.body  # over Wi-Fi there is nothing to unplug

    bare = tmp_path / "bare"
    (bare / "DCIM").mkdir(parents=True)
    with EmulatedPhone(bare) as phone:
        assert run_cli("backup", archive, "--tcp", phone.address).exit_code == 18
        *_, failed = desktop.wait_shown(3)
        assert failed.summary == f"tcp {phone.address}: voice notes not backed up" and failed.urgency == "CRITICAL"
        assert failed.body.startswith("no WhatsApp voice-note folder on Pixel 7")

        assert run_cli("backup", archive, "--tcp", phone.address, "--no-notify").exit_code == 18
    assert len(desktop.wait_shown(3)) == 3


def test_a_backup_that_could_not_copy_a_note_does_not_say_safe(desktop, clean_tree, archive, monkeypatch):
    victim = next(n for n in clean_tree.notes if n.is_note)
    with EmulatedPhone(clean_tree.root, serial="R58M12345", faults=Faults(fail_paths=victim.phone_path)) as phone:
        monkeypatch.setattr(usb, "transports", lambda: [BridgedUsb("R58M12345", phone.address)])
        assert run_cli("backup", archive, "--notify").exit_code == 4
        assert phone.faults_fired["fail_path"] == 1
    (shown,) = desktop.wait_shown(1)
    assert shown.summary == "Pixel 7 (R58M12345): 5 new voice notes saved" and shown.urgency == "CRITICAL"
    assert shown.body.endswith(" of audio. 1 could not be copied; the next backup tries again.")

def test_with_no_notification_server_the_backup_succeeds_and_says_so_once_in_the_log(
    bus, clean_tree, archive, tmp_path, monkeypatch
):
    log = tmp_path / "backup.log"
    with EmulatedPhone(clean_tree.root) as phone:
        result = run_cli("backup", archive, "--tcp", phone.address, "--notify", "--log-file", log, "--quiet")
        assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
        run, notice = log_lines(log)  # how the run ended, then why nobody was told
        assert notice["notification"] == "unavailable"
        assert notice["message"] == "no notification server is running on the session bus"
        assert run["outcome"] == "ok" and run["new"] == "6"

        add_notes(clean_tree, 2)
        # A server or an ssh login: a runtime folder, but no session bus at all.
        monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS")
        (tmp_path / "runtime").mkdir(mode=0o700)
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "runtime"))
        again = run_cli("backup", archive, "--tcp", phone.address, "--notify")
    assert again.exit_code == 0 and "2 new voice notes" in again.stdout
    assert again.stderr == "adbvoice: no desktop notification: no desktop session bus here " \
                           "(DBUS_SESSION_BUS_ADDRESS is not set)\n"



def test_a_watch_with_no_notification_server_says_so_once_however_many_backups_it_makes(
    bus, clean_tree, archive, tmp_path
):
    log = tmp_path / "watch.log"
    address = f"127.0.0.1:{free_port()}"
    phone = EmulatedPhone(clean_tree.root, port=int(address.split(":")[1]))
    with Watching(archive, "--tcp", address, "--interval", "0.05", "--notify", "--log-file", log, "-v") as watching:
        for arrival in (1, 2):
            gone = watching.looks("none")
            watching.wait_for(lambda: watching.looks("none") > gone, "a look without the phone")
            phone.start()
            watching.wait_for(lambda: len(watching.backups()) == arrival, f"backup {arrival}")
            phone.stop()
            add_notes(clean_tree, 2)
        code = watching.stop()
    assert code == 0, watching.output()
    assert [line.get("outcome") or line.get("notification") for line in log_lines(log)] == \
        ["ok", "unavailable", "ok"]
    assert not [line for line in watching.err if "notification" in line]  # the log file said it


def test_a_cron_job_with_notify_on_finds_the_logged_in_desktop_and_says_the_notes_are_safe(
    desktop, clean_tree, archive, home, tmp_path
):
    """Cron gives its job HOME and PATH only; the desktop's bus is where logind keeps it,
    /run/user/<uid>/bus (here, in a mount namespace of the test's own)."""
    (home / ".config" / "adbvoice").mkdir(parents=True)
    (home / ".config" / "adbvoice" / "config.toml").write_text("notify = true\n")
    with EmulatedPhone(clean_tree.root) as phone:
        line = run_cli("schedule", archive, "--every", "1h", "--tcp", phone.address, "--cron").stdout.strip()
        command = line.split(maxsplit=5)[5]
        assert command.endswith(" --notify")
        ran = subprocess.run(
            ["bwrap", "--bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/run/user",
             "--bind", str(desktop.runtime), f"/run/user/{os.getuid()}", "/bin/sh", "-c", command],
            env={"HOME": str(home), "PATH": "/usr/bin:/bin"}, cwd=home, capture_output=True, text=True, timeout=120,
        )
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, "", "")
    (shown,) = desktop.wait_shown(1)
    assert shown.summary == "Pixel 7 (EMU0001): 6 new voice notes saved"
