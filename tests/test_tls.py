"""Wireless debugging (Android 11+) by hand: `backup --tcp HOST:PORT` to a phone's TLS port
notices by itself that the phone asks for TLS, and backs up exactly as over plain TCP; a
phone that forgot this computer says to pair again; a drop over TLS loses nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

from adbvoice.emulator import AuthPolicy, EmulatedPhone, Faults, LinkProfile
from adbvoice.emulator.phonetree import PhoneTree
from tests.conftest import archived_files, run_cli
from tests.test_backup_errors import assert_archive_consistent, one_line_error


def paired_phone(tree: PhoneTree, home: Path, **options) -> EmulatedPhone:
    """A phone on its Wireless-debugging port that trusts this computer's key (paired)."""
    phone = EmulatedPhone(tree.root, auth=AuthPolicy(mode="keys"), tls=True, **options)
    phone.trust_key((home / ".android" / "adbkey.pub").read_text())
    return phone


def notes_of(tree: PhoneTree) -> set[str]:
    return {n.sha256 for n in tree.notes if n.is_note and n.kind != "audio"}


def test_backup_over_a_tls_port_is_the_same_backup_as_over_plain_tcp(phone_tree, archive, home):
    with paired_phone(phone_tree, home) as phone:
        result = run_cli("backup", archive, "--tcp", phone.address, "-v")
        commands = [r.command for r in phone.log]
    assert result.exit_code == 3, result.stderr  # the tree's broken notes are warnings
    assert commands[:2] == ["CNXN", "STLS"] and "AUTH" not in commands
    assert f"over tls {phone.address}" in result.stderr
    assert {hashlib.sha256(b).hexdigest() for b in archived_files(archive).values()} == notes_of(phone_tree)
    assert_archive_consistent(archive, phone_tree)


def test_a_phone_that_no_longer_trusts_this_computer_says_to_pair_again(phone_tree, archive):
    with EmulatedPhone(phone_tree.root, auth=AuthPolicy(mode="keys"), tls=True) as phone:
        result = run_cli("backup", archive, "--tcp", phone.address)
        assert "CNXN" not in [r.command for r in phone.log if r.direction == "device"]
    one_line_error(result, 52, "no longer trusts this computer", "adbvoice pair")
    assert archived_files(archive) == {}


def test_a_connection_dropped_mid_run_over_tls_keeps_what_was_archived(phone_tree, archive, home):
    total = sum(n.size for n in phone_tree.notes if n.is_note and n.kind != "audio")
    link = LinkProfile(rtt_s=0.001, bandwidth_Bps=600_000)
    with paired_phone(phone_tree, home, faults=Faults(drop_after_bytes=total * 2 // 3), link=link) as phone:
        result = run_cli("backup", archive, "--tcp", phone.address)
        assert phone.faults_fired["drop"] == 1
        one_line_error(result, 17, "lost the phone", "run again")
        assert_archive_consistent(archive, phone_tree)
        again = run_cli("backup", archive, "--tcp", phone.address)
    assert again.exit_code == 3
    assert_archive_consistent(archive, phone_tree)
    assert {hashlib.sha256(b).hexdigest() for b in archived_files(archive).values()} == notes_of(phone_tree)
