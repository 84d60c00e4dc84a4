"""adbvoice's pairing client against the emulated phone's pairing dialog (itself held to
Google's adb 36 in tests/emulator/test_pairing_service.py), and SPAKE2's own promises."""

from __future__ import annotations

import pytest

from adbvoice import errors
from adbvoice.phone.pairing import check_code, new_invitation, pair, parse_pairing_address
from adbvoice.phone.pairing_wire import CLIENT_NAME, SERVER_NAME
from adbvoice.phone.spake2 import Spake2, Spake2Error


def test_the_right_code_pairs_and_the_phone_answers_its_guid(phone, home):
    key = home / ".android" / "adbkey"
    with phone.open_pairing("735102") as dialog:
        assert pair("127.0.0.1", dialog.port, "735102", key) == phone.guid
    assert phone.trusted_keys == {(home / ".android" / "adbkey.pub").read_text().strip()}


def test_a_wrong_code_is_refused_and_nothing_is_trusted(phone, home):
    with phone.open_pairing("735102") as dialog:
        with pytest.raises(errors.PairingCodeWrongError, match="refused the pairing code"):
            pair("127.0.0.1", dialog.port, "735103", home / ".android" / "adbkey")
        assert dialog.open
    assert phone.trusted_keys == set()


def test_a_closed_dialog_is_said_to_be_closed(phone, home):
    dialog = phone.open_pairing("735102")
    dialog.close()
    with pytest.raises(errors.PairingClosedError, match="pairing dialog is closed"):
        pair("127.0.0.1", dialog.port, "735102", home / ".android" / "adbkey")


def test_spake2_agrees_only_on_the_same_password_and_never_repeats_itself():
    alice, bob = Spake2(True, CLIENT_NAME, SERVER_NAME, b"123456"), Spake2(False, SERVER_NAME, CLIENT_NAME, b"123456")
    assert alice.finish(bob.message) == bob.finish(alice.message)
    again = Spake2(True, CLIENT_NAME, SERVER_NAME, b"123456")
    assert again.message != alice.message  # a fresh secret scalar every time
    wrong = Spake2(False, SERVER_NAME, CLIENT_NAME, b"123457")
    assert again.finish(wrong.message) != wrong.finish(again.message)


def test_spake2_refuses_a_message_that_is_not_a_prime_order_point():
    alice = Spake2(True, CLIENT_NAME, SERVER_NAME, b"123456")
    small_order = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
    with pytest.raises(Spake2Error):
        alice.finish(small_order)
    with pytest.raises(Spake2Error):
        alice.finish(b"\x01" * 31)


@pytest.mark.parametrize("text", ["192.168.1.20", "192.168.1.20:", ":4000", "host:99999", "a:b:c", "[::1]"])
def test_a_pairing_address_needs_a_host_and_a_port(text):
    with pytest.raises(errors.PairingInputError, match="HOST:PORT"):
        parse_pairing_address(text)


def test_pairing_addresses_and_codes_as_the_phone_shows_them():
    assert parse_pairing_address("192.168.1.20:37125") == ("192.168.1.20", 37125)
    assert parse_pairing_address("[fe80::1]:37125") == ("fe80::1", 37125)
    assert check_code("482 916") == "482916"
    for bad in ("48291", "4829161", "48291a", ""):
        with pytest.raises(errors.PairingInputError, match="6 digits"):
            check_code(bad)


def test_a_qr_invitation_is_fresh_each_time_and_in_the_format_the_phone_scans():
    first, second = new_invitation(), new_invitation()
    assert first != second
    assert first.text == f"WIFI:T:ADB;S:{first.service};P:{first.password};;"
    assert first.password.isalnum() and len(first.password) >= 16
