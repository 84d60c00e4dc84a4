"""adbvoice's pairing client against the emulated phone's pairing dialog (itself held to
Google's adb 36 in tests/emulator/test_pairing_service.py), and SPAKE2's own promises."""

from __future__ import annotations

import pytest

from adbvoice import errors
from adbvoice.phone import spake2
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


def test_a_wrong_code_is_refused_when_the_phone_answers_first_as_adbd_does(phone, home):
    with phone.open_pairing("735102", answer_first=True) as dialog:
        with pytest.raises(errors.PairingCodeWrongError) as refused:
            pair("127.0.0.1", dialog.port, "735103", home / ".android" / "adbkey")
        assert "does not open" in str(refused.value.__cause__)  # the phone's GUID came sealed otherwise
        assert pair("127.0.0.1", dialog.port, "735102", home / ".android" / "adbkey") == phone.guid


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


# Known answers from a C port of BoringSSL's spake25519 (spake2-cffi 1.0.1, whose secret
# scalars come from unseeded rand() and so repeat): its message, and the key it derived
# from ours, made with the secret bytes below. Both roles; password = code + 64 bytes.
PASSWORD = b"482916" + bytes(range(64))
SECRET = bytes(range(100, 164))
BORINGSSL_ALICE_MSG = bytes.fromhex("ae96abcd7da8930487e50b55c0fde5402bf59c854891fc32ead8ebe1a9eece59")
OUR_BOB_MSG = bytes.fromhex("65f3289d96d036b9ed16beb9055c63039a15ae7821753c04b91b5e87b09bbf18")
KEY_WITH_OUR_BOB = bytes.fromhex("1f89baf5b0d346ab2f5f13df085cedfef52f95cce9539fadeeb3b3f043bf1f09"
                                 "5150849af037ef2b78b0df7e07b2a2962f63eecdb8308c6c1a0eb5925e1f861c")
BORINGSSL_BOB_MSG = bytes.fromhex("6409766bc0cb923736b439c494902d9171b1f67e21dcc92143c5028c6b178d13")
OUR_ALICE_MSG = bytes.fromhex("22d7c1a069a7b246153cf7c7ac188d4e84d7be9be4dc06652f35925e304bfd51")
KEY_WITH_OUR_ALICE = bytes.fromhex("6e43aeba0cad39d4f3ac3fbff8cbcc09176604434f78166747a871c787189001"
                                   "3ed5068493d483c5c36cbeb237fceb49f51eb7fbad7708bcf19bdd837230b612")


def test_spake2_gives_boringssl_s_keys_in_both_roles(monkeypatch):
    monkeypatch.setattr(spake2, "random_bytes", lambda size: SECRET[:size])
    bob = Spake2(False, SERVER_NAME, CLIENT_NAME, PASSWORD)
    assert bob.message == OUR_BOB_MSG and bob.finish(BORINGSSL_ALICE_MSG) == KEY_WITH_OUR_BOB
    alice = Spake2(True, CLIENT_NAME, SERVER_NAME, PASSWORD)
    assert alice.message == OUR_ALICE_MSG and alice.finish(BORINGSSL_BOB_MSG) == KEY_WITH_OUR_ALICE


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


def test_the_wireless_libraries_load_only_when_used_not_with_every_command():
    """A cron backup over USB pays nothing for mDNS, TLS pairing or QR codes."""
    import json
    import subprocess
    import sys

    loaded = subprocess.run(
        [sys.executable, "-c", "import json, sys, adbvoice.cli; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True).stdout
    assert not {"zeroconf", "OpenSSL", "nacl", "segno"} & {name.split(".")[0] for name in json.loads(loaded)}
