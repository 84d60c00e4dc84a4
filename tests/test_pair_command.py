"""A user pairs a phone once, by code or by QR code, then sees and forgets remembered
phones: the CLI against the emulated phone over real TCP and real mDNS on loopback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

from adbvoice.emulator.mdns import Announcement
from adbvoice.unattended.phones import KnownPhone, known, remember
from tests.conftest import EXIT_CODES_SEEN, archived_files, run_cli
from tests.emulator.helpers import Adb


def state_dir(home):
    return home / ".local" / "state" / "adbvoice"


def test_pair_by_code_remembers_the_phone_and_phones_shows_it_on_the_network(phone, home):
    with phone.open_pairing("204871") as dialog, Announcement("_adb-tls-connect._tcp", phone.guid, phone.port):
        paired = run_cli("pair", dialog.address, "204871", "--name", "pixel")
        assert paired.exit_code == 0, paired.stderr
        assert "paired: pixel now trusts this computer" in paired.stdout
        assert "204871" not in paired.stdout + paired.stderr
        [remembered] = known(state_dir(home))
        assert (remembered.name, remembered.guid, remembered.port) == ("pixel", phone.guid, phone.port)
        listed = run_cli("phones", "--json")
        [row] = json.loads(listed.stdout)["phones"]
        assert row["visible"] and row["address"] == phone.address
    assert phone.trusted_keys == {(home / ".android" / "adbkey.pub").read_text().strip()}
    assert "not seen now" in run_cli("phones", "--timeout", "0.5").stdout


def test_pair_asks_for_the_code_without_echoing_it(phone, home):
    from typer.testing import CliRunner

    from adbvoice.cli import app

    with phone.open_pairing("204871") as dialog:
        result = CliRunner().invoke(app, ["pair", dialog.address], input="204871\n")
    assert result.exit_code == 0, result.stderr
    assert "204871" not in result.stdout + result.stderr
    assert known(state_dir(home))[0].guid == phone.guid


def test_pair_without_a_code_and_nothing_to_ask_it_from_says_so(phone):
    from typer.testing import CliRunner

    from adbvoice.cli import app

    with phone.open_pairing("204871") as dialog:
        result = CliRunner().invoke(app, ["pair", dialog.address], input="")
    assert result.exit_code == 59 and "no pairing code" in result.stderr
    assert dialog.attempts == 0


def test_a_wrong_code_is_refused_with_its_own_exit_code(phone, home):
    with phone.open_pairing("204871") as dialog:
        wrong = run_cli("pair", dialog.address, "999999")
    assert wrong.exit_code == 56 and "refused the pairing code" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1 and "999999" not in wrong.stderr
    assert known(state_dir(home)) == [] and phone.trusted_keys == set()


def test_a_closed_pairing_dialog_says_so(phone):
    dialog = phone.open_pairing("204871")
    dialog.close()
    closed = run_cli("pair", dialog.address, "204871")
    assert closed.exit_code == 57 and "pairing dialog is closed" in closed.stderr


def test_bad_addresses_and_codes_are_refused_before_anything_is_sent(phone):
    assert run_cli("pair", "192.168.1.20", "204871").exit_code == 59
    bad_code = run_cli("pair", "127.0.0.1:4000", "20487")
    assert bad_code.exit_code == 59 and "6 digits" in bad_code.stderr


def test_pair_by_qr_code_the_test_playing_the_phone_that_scans_it(phone, home):
    process = subprocess.Popen([sys.executable, "-m", "adbvoice", "pair", "--timeout", "30"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        for line in process.stdout:
            scanned = re.search(r"WIFI:T:ADB;S:([^;]+);P:([^;]+);;", line)
            if scanned:
                break
        assert scanned, "no QR code text printed"
        with phone.open_pairing(scanned[2], service=scanned[1]) as dialog:
            out, err = process.communicate(timeout=60)
            assert process.returncode == 0, err
            assert dialog.paired_keys == [(home / ".android" / "adbkey.pub").read_text().strip()]
        EXIT_CODES_SEEN.add(process.returncode)
    finally:
        process.kill()
        process.wait()
    assert f"paired: {phone.guid} now trusts this computer" in out
    assert known(state_dir(home))[0].guid == phone.guid


def test_pair_by_qr_code_with_no_phone_scanning_it_gives_up_in_time():
    started = time.monotonic()
    nobody = run_cli("pair", "--timeout", "1")
    assert nobody.exit_code == 58 and "no phone announced the pairing service" in nobody.stderr
    assert "WIFI:T:ADB;S:" in nobody.stdout and time.monotonic() - started < 10


def test_a_phone_paired_by_google_adb_on_this_computer_trusts_adbvoice_too(phone, home):
    adb36 = Adb(home, "adb36")
    try:
        with phone.open_pairing("204871") as dialog:
            assert adb36.run("pair", dialog.address, "204871", timeout=30).returncode == 0
    finally:
        adb36.run("kill-server")
    # The key adb 36 paired (adb writes its own comment after it) is the very key adbvoice
    # connects with: nothing to pair again.
    [trusted] = phone.trusted_keys
    assert trusted.split()[0] == (home / ".android" / "adbkey.pub").read_text().split()[0]


def test_forget_removes_a_remembered_phone_and_an_unknown_name_is_an_error(home):
    remember(state_dir(home), KnownPhone("pixel", "adb-P1-aaaaaa", "Pixel 7", "P1", "192.168.1.20", 37001))
    assert run_cli("phones", "--timeout", "0").stdout.startswith("pixel (Pixel 7, P1)  adb-P1-aaaaaa  not seen now")
    gone = run_cli("forget", "pixel")
    assert gone.exit_code == 0 and "forgot pixel" in gone.stdout
    unknown = run_cli("forget", "pixel")
    assert unknown.exit_code == 10 and "pair one first" in unknown.stderr
    assert known(state_dir(home)) == []


def test_the_whole_story_pair_by_qr_code_once_then_back_up_over_tls_found_by_mdns(phone_tree, archive, home, tmp_path):
    """README's Android 11+ steps with nothing seeded by hand: the phone trusts nobody, the
    user pairs by QR code, and from then on `backup --wifi` finds the phone and copies over TLS."""
    from adbvoice.emulator import AuthPolicy, EmulatedPhone

    with EmulatedPhone(phone_tree.root, auth=AuthPolicy(mode="keys"), tls=True, announce=True,
                       state_dir=tmp_path / "phone-state") as phone:
        assert run_cli("backup", archive, "--tcp", phone.address).exit_code == 52  # not paired yet
        process = subprocess.Popen([sys.executable, "-m", "adbvoice", "pair", "--timeout", "30", "--name", "pixel"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
        try:
            scanned = next(filter(None, (re.search(r"WIFI:T:ADB;S:([^;]+);P:([^;]+);;", line)
                                         for line in process.stdout)), None)
            assert scanned, "no QR code text printed"
            with phone.open_pairing(scanned[2], service=scanned[1]):
                out, err = process.communicate(timeout=60)
        finally:
            process.kill()
            process.wait()
        assert process.returncode == 0, err
        [remembered] = known(state_dir(home))
        assert (remembered.name, remembered.port) == ("pixel", phone.port)  # its TLS port, seen by mDNS

        backup = run_cli("backup", archive, "--wifi")  # the phone's only port is TLS-only
        assert backup.exit_code == 3, backup.stderr  # the tree's broken notes are warnings
    assert len(archived_files(archive)) == len([n for n in phone_tree.notes if n.is_note and n.kind != "audio"])
