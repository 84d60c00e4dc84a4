"""`backup --wifi`: the paired phone found on the network by mDNS wherever its TLS port is
now, at its last known address when mDNS is blocked, silent under --if-present when it is
not there, refused when another phone answers at its address."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from adbvoice.emulator import AuthPolicy, EmulatedPhone
from adbvoice.emulator.phonetree import PhoneTree, add_notes
from adbvoice.unattended.phones import KnownPhone, default_state_dir, known, remember
from tests.conftest import archived_files, free_port, run_cli
from tests.test_backup_errors import one_line_error
from tests.test_schedule import log_lines, run_like_cron
from tests.test_watch import Watching


def wifi_phone(tree: PhoneTree, home: Path, state: Path, **options) -> EmulatedPhone:
    """A phone with Wireless debugging on, paired with this computer (its key trusted)."""
    options = {"announce": True, **options}
    phone = EmulatedPhone(tree.root, auth=AuthPolicy(mode="keys"), tls=True, state_dir=state, **options)
    phone.trust_key((home / ".android" / "adbkey.pub").read_text())
    return phone


def paired(phone: EmulatedPhone, host: str = "127.0.0.1", port: int = 0, serial: str = "") -> KnownPhone:
    """What `adbvoice pair` remembers: the GUID; model and serial come with the first backup."""
    remembered = KnownPhone(name="pixel", guid=phone.guid, model="", serial=serial, host=host, port=port)
    remember(default_state_dir(), remembered)
    return remembered


def notes_of(tree: PhoneTree) -> set[str]:
    return {n.sha256 for n in tree.notes if n.is_note and n.kind != "audio"}


def archived(archive: Path) -> set[str]:
    return {hashlib.sha256(b).hexdigest() for b in archived_files(archive).values()}


def test_backup_wifi_finds_the_phone_by_mdns_after_its_port_changed(phone_tree, archive, home, tmp_path, monkeypatch):
    state = tmp_path / "phone-state"
    with wifi_phone(phone_tree, home, state, port=free_port()) as phone:
        paired(phone)
        first = run_cli("backup", archive, "--wifi")
        first_port = phone.port
    assert first.exit_code == 3, first.stderr  # the tree's broken notes are warnings
    assert archived(archive) == notes_of(phone_tree)
    (seen,) = known(default_state_dir())
    assert (seen.serial, seen.model, seen.port) == ("EMU0001", "Pixel 7", first_port)

    # Wireless debugging turned off and on again: a new port, the same GUID (the phone's state).
    with wifi_phone(phone_tree, home, state, port=free_port()) as again:
        assert again.port != first_port and again.guid == seen.guid
        monkeypatch.setenv("ADBVOICE_WIFI", "1")  # as cron would have it: the variable, no flag
        second = run_cli("backup", archive)
        assert [r.command for r in again.log][:2] == ["CNXN", "STLS"]
    assert (second.exit_code, second.stderr) == (0, "")
    assert second.stdout.startswith("no new voice notes")
    assert known(default_state_dir())[0].port == again.port


def test_wireless_debugging_off_is_silent_with_if_present_and_says_what_to_check_without(
    phone_tree, archive, home, tmp_path
):
    with wifi_phone(phone_tree, home, tmp_path / "phone-state") as phone:
        paired(phone, port=phone.port)
    # The phone is gone: nothing on mDNS, nothing at its last address.
    quiet = run_cli("backup", archive, "--wifi", "--if-present")
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "", "")
    assert not archive.exists()
    loud = run_cli("backup", archive, "--wifi")
    one_line_error(loud, 53, "pixel is not on the network", "Wireless debugging is on", "UDP port 5353")


def test_mdns_blocked_falls_back_to_the_last_known_address(phone_tree, archive, home, tmp_path):
    with wifi_phone(phone_tree, home, tmp_path / "phone-state", announce=False) as phone:
        paired(phone, port=phone.port)
        result = run_cli("backup", archive, "--wifi", "-v")
    assert result.exit_code == 3, result.stderr
    assert f"using its last known address {phone.address}" in result.stderr
    assert archived(archive) == notes_of(phone_tree)


def test_another_phone_at_the_remembered_address_is_refused_and_nothing_copied(phone_tree, archive, home, tmp_path):
    with wifi_phone(phone_tree, home, tmp_path / "phone-state", announce=False, serial="OTHER42") as other:
        paired(other, port=other.port, serial="EMU0001")  # the remembered phone was EMU0001
        result = run_cli("backup", archive, "--wifi")
    one_line_error(result, 54, "not the remembered phone (serial EMU0001)", "nothing was copied")
    assert archived_files(archive) == {}


@pytest.mark.parametrize("extra", [["--wifi"], ["--phone", "pixel"]])
def test_wifi_and_tcp_together_is_a_usage_error(archive, extra):
    result = run_cli("backup", archive, "--tcp", "127.0.0.1:5555", *extra)
    assert result.exit_code == 2
    assert "both say where the phone is" in result.stderr


def test_wifi_with_no_phone_paired_says_to_pair_first(archive):
    result = run_cli("backup", archive, "--wifi")
    one_line_error(result, 10, "adbvoice pair")


def test_watch_wifi_backs_the_paired_phone_up_each_time_it_appears_on_the_network(
    phone_tree, archive, home, tmp_path
):
    state = tmp_path / "phone-state"
    with wifi_phone(phone_tree, home, state) as phone:
        paired(phone)
    with Watching(archive, "--wifi", "--interval", "0.1", "-v") as watching:
        watching.wait_for(lambda: watching.looks("none") >= 1, "a look with the phone away")
        with wifi_phone(phone_tree, home, state, port=free_port()):
            watching.wait_for(lambda: len(watching.backups()) == 1, "the first backup")
        added = [n for n in add_notes(phone_tree, 2) if n.is_note]
        gone = watching.looks("none")
        watching.wait_for(lambda: watching.looks("none") > gone, "a look after Wireless debugging went off")
        with wifi_phone(phone_tree, home, state, port=free_port()):  # on again: another port
            watching.wait_for(lambda: len(watching.backups()) == 2, "the backup after it came back")
        code = watching.stop()
    assert code == 0, watching.output()
    assert f"{len(added)} new voice notes" in watching.backups()[1]
    assert "Traceback" not in watching.output()


def test_schedule_wifi_runs_in_crons_bare_environment_and_is_silent_when_the_phone_is_away(
    phone_tree, archive, home, tmp_path
):
    log = tmp_path / "backup.log"
    with wifi_phone(phone_tree, home, tmp_path / "phone-state") as phone:
        paired(phone)
        printed = run_cli("schedule", archive, "--every", "1h", "--wifi", "--cron", "--log-file", log)
        assert printed.exit_code == 0, printed.stderr
        command = printed.stdout.strip().split(maxsplit=5)[5]
        assert command.endswith(" --wifi")
        ran = run_like_cron(command, home)
    assert ran.returncode == 3  # warnings: the phone's broken notes, and cron mails why
    assert ran.stdout.endswith(", 0 already archived, 3 warnings\n")
    assert archived(archive) == notes_of(phone_tree)
    away = run_like_cron(command, home)  # Wireless debugging off: nothing on mDNS, nothing at the address
    assert (away.returncode, away.stdout, away.stderr) == (0, "", "")
    first, second = log_lines(log)
    assert first["device"] == "Pixel 7 (EMU0001)" and first["exit"] == "3"
    assert second["outcome"] == "absent" and second["device"] == "wifi pixel"
