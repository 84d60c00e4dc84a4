"""The emulated phone's pairing dialog, held to Google's adb 36 (`adb pair`): the right
code pairs and the phone keeps trusting that key across restarts, a wrong code does not,
and the QR flow's service is found by its name, as a phone that scanned the code announces it."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adbvoice.emulator import EmulatedPhone
from tests.emulator.helpers import Adb


@pytest.fixture(scope="module")
def adb36(tmp_path_factory) -> Adb:
    server = Adb(tmp_path_factory.mktemp("adb36-home"), "adb36")
    assert server.run("start-server").returncode == 0
    yield server
    server.run("kill-server")


def test_adb_pair_with_the_right_code_makes_the_phone_trust_its_key_for_good(adb36, phone_dir, tmp_path):
    state = tmp_path / "state"
    with EmulatedPhone(phone_dir, state_dir=state) as phone:
        with phone.open_pairing("482916") as dialog:
            paired = adb36.run("pair", dialog.address, "482916", timeout=30)
            assert paired.returncode == 0, paired
            assert f"[guid={phone.guid}]" in paired.stdout.decode()
            assert not dialog.open  # the dialog closes on success, as the phone's does
        assert phone.trusted_keys == {adb36.public_key.strip()}
    with EmulatedPhone(phone_dir, state_dir=state) as restarted:
        assert restarted.trusted_keys == {adb36.public_key.strip()}


def test_adb_pair_with_a_wrong_code_fails_and_the_dialog_stays_open(adb36, phone_dir):
    with EmulatedPhone(phone_dir) as phone, phone.open_pairing("482916") as dialog:
        refused = adb36.run("pair", dialog.address, "111111", timeout=30)
        assert refused.returncode != 0 and b"Successfully paired" not in refused.stdout
        assert dialog.failures == ["the peer info does not open: the codes differ"]
        assert dialog.open and phone.trusted_keys == set()


def test_adb_pairs_and_is_refused_the_same_when_the_phone_answers_first_as_adbd_does(adb36, phone_dir):
    with EmulatedPhone(phone_dir) as phone, phone.open_pairing("482916", answer_first=True) as dialog:
        assert adb36.run("pair", dialog.address, "111111", timeout=30).returncode != 0
        paired = adb36.run("pair", dialog.address, "482916", timeout=30)
        assert paired.returncode == 0 and f"[guid={phone.guid}]" in paired.stdout.decode(), paired


def test_adb_pairs_by_the_service_name_a_scanned_qr_code_announces(adb36, phone_dir):
    name = f"adbvoice-qr{time.monotonic_ns() % 10**8}"
    with EmulatedPhone(phone_dir) as phone, phone.open_pairing("Zq8pW2xLr5Tn0bYc", service=name) as dialog:
        deadline = time.monotonic() + 10
        while name.encode() not in adb36.run("mdns", "services").stdout and time.monotonic() < deadline:
            time.sleep(0.3)
        paired = adb36.run("pair", name, "Zq8pW2xLr5Tn0bYc", timeout=30)
        assert paired.returncode == 0, paired
        assert dialog.paired_keys == [adb36.public_key.strip()]


def test_the_guid_is_made_once_and_kept(phone_dir, tmp_path):
    first = EmulatedPhone(phone_dir, serial="R5CT1", state_dir=tmp_path / "s").guid
    assert first.startswith("adb-R5CT1-") and EmulatedPhone(phone_dir, state_dir=tmp_path / "s").guid == first
    assert EmulatedPhone(Path(phone_dir)).guid != first


def _serve_with_pairing_dialog(phone_dir: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    """The emulator's command line, and the line saying where its pairing dialog listens."""
    proc = subprocess.Popen([sys.executable, "-m", "adbvoice.emulator", str(phone_dir), "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("listening on 127.0.0.1:")
    return proc, proc.stdout.readline()


def test_the_command_line_opens_a_pairing_dialog_and_keeps_the_key_for_its_next_start(adb36, phone_dir, tmp_path):
    state = tmp_path / "state"
    proc, line = _serve_with_pairing_dialog(phone_dir, "--state-dir", str(state), "--pairing-code", "905513")
    try:
        address, guid = re.fullmatch(r"pairing on (\S+) as (\S+)\n", line).groups()
        paired = adb36.run("pair", address, "905513", timeout=30)
        assert paired.returncode == 0 and f"[guid={guid}]" in paired.stdout.decode(), paired
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    kept = (state / "data" / "misc" / "adb" / "adb_keys").read_text().split()
    assert adb36.public_key.split()[0] in kept
    assert EmulatedPhone(phone_dir, state_dir=state).guid == guid
