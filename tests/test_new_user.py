"""A new user follows README's order of commands, then lives with a phone that has a
permanent oddity: no false alarm, no warning told twice, and every failure says why."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
import typer

from adbvoice.cli import app
from adbvoice.emulator import EmulatedPhone, LinkProfile
from adbvoice.emulator.phonetree import VOICE, add_notes, build_phone_tree
from tests.conftest import archived_files, free_port, run_cli, run_on_terminal


def test_readmes_order_backup_ls_export_verify_gives_no_false_alarm(phone, archive):
    assert run_cli("backup", archive, "--tcp", phone.address).exit_code == 3  # broken notes, told once
    assert run_cli("ls", archive).exit_code == 0
    exported = run_cli("export", "--html", archive)
    assert exported.exit_code == 0 and (archive / "voice-notes.html").is_file()
    (archive / ".voice-notes.html.0badc0de.tmp").write_text("an export cut off by a crash")

    verified = run_cli("verify", archive)
    assert verified.exit_code == 0, verified.stdout
    assert verified.stdout.endswith(": all match the catalog\n")

    rebuilt = run_cli("catalog", "rebuild", archive, "-v")
    assert rebuilt.exit_code == 0, rebuilt.stderr
    assert "voice-notes.html" not in rebuilt.stderr
    assert run_cli("verify", archive).exit_code == 0
    assert run_cli("backup", archive, "--tcp", phone.address).exit_code == 0


def test_a_permanent_oddity_is_told_on_the_first_night_only_even_after_a_rebuild(tmp_path, archive):
    tree = build_phone_tree(tmp_path / "sdcard", notes=3, broken=False)
    week = next(p for p in sorted((tree.root / VOICE).iterdir()) if p.is_dir())
    link = week / "PTT-20240101-WA0099.opus"
    os.symlink("/etc/passwd", link)
    shown = f"/sdcard/{VOICE}/{week.name}/{link.name}: a symbolic link, not followed"
    log = tmp_path / "backup.log"
    with EmulatedPhone(tree.root) as phone:
        nightly = ("backup", archive, "--tcp", phone.address, "--if-present", "--quiet", "--log-file", log)

        first = run_cli(*nightly)
        assert first.exit_code == 3
        assert first.stderr == f"warning: {shown}\n"  # --quiet, yet a non-zero exit says why
        assert first.stdout.endswith("already archived, 1 warning\n")

        add_notes(tree, 1)
        second = run_cli(*nightly)  # the phone changed, so it was listed whole: the link is still there
        assert (second.exit_code, second.stdout, second.stderr) == (0, "", "")
        assert "warnings=0 told_before=1 errors=0" in log.read_text().splitlines()[-1]

        assert run_cli("catalog", "rebuild", archive).exit_code == 0
        from adbvoice.archive.catalog import Catalog

        catalog = Catalog.open(archive / ".adbvoice" / "catalog.sqlite")
        try:
            assert "EMU0001" in catalog.listing_fingerprints()  # the rebuild kept what it could prove
        finally:
            catalog.close()
        after_rebuild = run_cli(*nightly)
        assert (after_rebuild.exit_code, after_rebuild.stdout, after_rebuild.stderr) == (0, "", "")

        told = run_cli("backup", archive, "--tcp", phone.address, "-v", "--dry-run")
        assert f"warning (told before): {shown}\n" in told.stderr and told.exit_code == 0
        assert "0 warnings (1 told before, -v shows them)" in told.stdout

        link.unlink()
        assert run_cli(*nightly).exit_code == 0
        os.symlink("/etc/passwd", link)  # gone, then back: news again
        back = run_cli(*nightly)
        assert (back.exit_code, back.stderr) == (3, f"warning: {shown}\n")
        as_json = json.loads(run_cli("backup", archive, "--tcp", phone.address, "--json").stdout)
        assert (as_json["warnings"], as_json["known_warnings"], as_json["exit_code"]) == ([], [shown], 0)


def test_the_systemd_timer_counts_completed_with_warnings_as_done(archive):
    printed = run_cli("schedule", archive, "--every", "1d", "--systemd")
    assert printed.exit_code == 0
    assert "\nSuccessExitStatus=3 22\n" in printed.stdout  # the warnings are in the journal, told once


@pytest.mark.parametrize("command", [
    ["backup", "--tcp", "127.0.0.1:{port}"], ["verify"], ["ls", "--json"], ["ls", "--format", "json"],
    ["stats"], ["info", "1"], ["catalog", "rebuild"], ["prune", "--tcp", "127.0.0.1:{port}", "--dry-run"],
    ["restore", "--tcp", "127.0.0.1:{port}"],
])
def test_with_json_a_failure_is_still_one_json_document(command, tmp_path):
    port = str(free_port())
    given = [word.replace("{port}", port) for word in command]
    if given[0] == "info":
        given += ["--archive", str(tmp_path)]
    else:
        given.insert(1 + given[1:2].count("rebuild"), str(tmp_path))
    failed = run_cli(*given, *([] if {"--json", "json"} & set(given) else ["--json"]))

    document = json.loads(failed.stdout)  # one document, nothing else on stdout
    assert document["error"]["exit_code"] == failed.exit_code in (16, 24)
    assert f"adbvoice: {document['error']['message']}\n" == failed.stderr


def test_a_scheduled_json_run_with_no_phone_says_so_in_json(tmp_path):
    absent = run_cli("backup", tmp_path / "archive", "--tcp", f"127.0.0.1:{free_port()}", "--if-present", "--json")
    assert absent.exit_code == 0 and json.loads(absent.stdout)["outcome"] == "absent"


def test_the_word_ls_shows_for_a_source_is_the_word_source_takes(backed_up):
    shown = {line.split()[5] for line in run_cli("ls", backed_up.root).stdout.splitlines()}  # date time length size unit SOURCE
    assert {"voice", "business", "legacy", "legacy-business", "audio"} <= shown
    for word in shown:
        listed = run_cli("ls", backed_up.root, "--source", word, "--json")
        assert listed.exit_code == 0 and listed.stdout != "[]\n", (word, listed.stderr)
    voice = {n["source"] for n in json.loads(run_cli("ls", backed_up.root, "--source", "voice", "--json").stdout)}
    assert voice == {"voice"}
    refused = run_cli("ls", backed_up.root, "--source", "personal")
    assert refused.exit_code == 2 and "use one of voice, business, legacy, audio, legacy-business" in refused.stderr

    page = run_cli("export", "--html", backed_up.root, "-o", backed_up.root.parent / "page.html")
    assert page.exit_code == 0
    text = (backed_up.root.parent / "page.html").read_text()
    assert '"f":"voice"' in text and '"f":"personal"' not in text


def test_ls_fits_a_long_name_to_the_terminal_and_a_pipe_gets_it_whole(tmp_path, archive, monkeypatch):
    tree = build_phone_tree(tmp_path / "sdcard", notes=3, broken=False)
    note = next(n for n in tree.notes if n.is_note and n.kind == "voice")
    long_name = "PTT-20210105-WA0042-" + "x" * 215 + ".opus"  # 240 bytes: as long as a name is kept whole
    note.local_path.rename(note.local_path.parent / long_name)
    with EmulatedPhone(tree.root) as phone:
        assert run_cli("backup", archive, "--tcp", phone.address).exit_code == 0

    monkeypatch.setenv("COLUMNS", "120")
    shown = run_on_terminal("ls", archive).stdout.splitlines()
    assert shown[0].split() == ["DATE", "TIME", "LENGTH", "SIZE", "SOURCE", "DEVICE", "NOTE", "AUDIO"]
    assert all(len(line) < 120 for line in shown), shown
    long_line = next(line for line in shown if "2021/01/05/PTT-2021" in line)
    assert "…" in long_line and "x.opus" in long_line and long_line.startswith("2021-01-05  ")
    assert not any("…" in line for line in shown if line is not long_line)

    piped = run_cli("ls", archive).stdout.splitlines()
    assert len(piped) == 3 and any(f"2021/01/05/{long_name}" in line for line in piped)


def test_the_first_ls_on_a_new_machine_says_how_to_start(home):
    first = run_cli("ls")
    assert first.exit_code == 24
    assert first.stderr == (
        f"adbvoice: {home}/WhatsApp Voice Notes is not an adbvoice archive: nothing has been backed up there yet "
        "(back up a phone with `adbvoice backup`, or try adbvoice on a built-in phone with `adbvoice demo`)\n"
    )


def test_an_archive_path_that_is_a_file_is_named_as_a_file(phone, tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("my own notes")
    for inside in (a_file, a_file / "archive"):
        refused = run_cli("backup", inside, "--tcp", phone.address)
        assert (refused.exit_code, refused.stderr) == (
            20, f"adbvoice: cannot use {inside} as the archive: {a_file} is a file, not a folder\n")
    assert phone.connections_accepted == 0  # said before the phone was asked anything
    listed = run_cli("ls", a_file)
    assert (listed.exit_code, listed.stderr) == (24, f"adbvoice: {a_file} is a file, not an archive folder\n")


def test_a_backup_that_cannot_reach_the_phone_leaves_no_folder_behind(tmp_path):
    archive = tmp_path / "new" / "archive"
    failed = run_cli("backup", archive, "--tcp", f"127.0.0.1:{free_port()}")
    assert failed.exit_code == 16
    assert not (tmp_path / "new").exists()


def test_a_web_server_at_the_address_is_named_in_words_and_its_bytes_shown_with_v(tmp_path):
    server = socket.create_server(("127.0.0.1", 0))

    def answer_like_a_web_server() -> None:
        for _ in range(2):
            peer, _address = server.accept()
            with peer:
                peer.recv(4096)
                peer.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    threading.Thread(target=answer_like_a_web_server, daemon=True).start()
    address = "127.0.0.1:{}".format(server.getsockname()[1])
    try:
        plain = run_cli("backup", tmp_path / "archive", "--tcp", address)
        verbose = run_cli("backup", tmp_path / "archive", "--tcp", address, "-v")
    finally:
        server.close()
    assert (plain.exit_code, plain.stderr) == (16, (
        f"adbvoice: an HTTP server answered at {address}, not an Android phone: is this the phone's address, "
        "and the port of its Wi-Fi debugging (5555 unless set otherwise)?\n"))
    assert "485454502f31" not in plain.stderr and "485454502f312e3120343030" in verbose.stderr


def _commands(group: typer.core.TyperGroup, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, command in group.commands.items():
        found += _commands(command, (*path, name)) if hasattr(command, "commands") else [(*path, name)]
    return found


def _summaries(screen: str) -> tuple[list[list[str]], int]:
    """Each command's summary in a help screen's Commands panel, as the lines it was wrapped
    into, and how wide those lines may be."""
    rows, inside, column = [], False, 0
    for line in screen.splitlines():
        inside = (inside or line.startswith("╭─ Commands")) and not line.startswith("╰")
        if inside and line.startswith("│ "):
            if line[2] != " ":  # a command's first line: its name, then where summaries start
                name = line[2:].split()[0]
                column = line.index(line[2 + len(name):].lstrip(), 2 + len(name))
                rows.append([])
            rows[-1].append(line[column:].rstrip(" │"))
    return rows, 80 - 2 - column  # the line, less its closing border and the space before it


@pytest.mark.parametrize("path", _commands(typer.main.get_command(app)), ids=" ".join)
def test_every_help_screen_reads_whole_at_80_columns(path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    screen = run_cli(*path, "--help").stdout
    lines = screen.splitlines()
    assert lines and all(len(line) <= 80 for line in lines)
    cut = re.search(r"…(\s*│|  )", screen.replace("15m|1h|1d|…", ""))  # a cell cut short ends in "…"
    assert cut is None, screen
    summaries, room = _summaries(screen)
    for wrapped in summaries:  # a summary breaks only where the next word would not fit
        for line, after in zip(wrapped, wrapped[1:]):
            assert len(line) + 1 + len(after.split()[0]) > room, wrapped
    if path == ("backup",):
        assert "{year}/{month}/{day}/{name}." in screen


def test_ctrl_c_says_how_many_notes_were_saved_and_the_log_names_the_phone(long_copy_tree, archive, tmp_path):
    log = tmp_path / "backup.log"
    with EmulatedPhone(long_copy_tree.root, link=LinkProfile(rtt_s=0.002, bandwidth_Bps=600_000)) as phone:
        process = subprocess.Popen(
            [sys.executable, "-m", "adbvoice", "backup", str(archive), "--tcp", phone.address, "--log-file", str(log)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 30
        while not archived_files(archive) and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
    saved = len(archived_files(archive))
    assert process.returncode == 130 and saved
    said = f"interrupted; {saved} new note{'s' if saved != 1 else ''} archived and complete before it stopped, "
    assert err.splitlines()[-1] == f"adbvoice: {said}the next run copies the rest"
    line = log.read_text().splitlines()[-1]
    assert 'outcome=interrupted exit=130 device="Pixel 7 (EMU0001)"' in line and f" new={saved} " in line


def test_building_the_package_prints_no_deprecation_of_ours(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(Path(__file__).resolve().parents[1]), "--no-deps", "-w", tmp_path, "-v"],
        capture_output=True, text=True, timeout=600,
    )
    assert built.returncode == 0, built.stderr
    assert "Deprecat" not in built.stdout + built.stderr
    (wheel,) = tmp_path.glob("adbvoice-*.whl")
    with zipfile.ZipFile(wheel) as contents:
        metadata = contents.read(next(n for n in contents.namelist() if n.endswith("/METADATA"))).decode()
    assert "License-Expression: MIT" in metadata.splitlines()
