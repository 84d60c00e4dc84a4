"""A phone whose file names and answers are hostile — path tricks, control characters,
names that look like options, bytes that are not UTF-8, links out of the voice-note
folders, sizes that cannot be — never gets a byte written outside the archive, and every
such file is archived under a safe name or reported."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from adbvoice.emulator import EmulatedPhone, Faults
from adbvoice.emulator.phonetree import build_phone_tree
from tests.conftest import archived_files, run_cli
from tests.reliability.conftest import archive_state, sha256, tree_listing, writes_outside

HOSTILE_NAMES = [
    b"..opus",
    b"...opus",
    "..\u2044..\u2044escape.opus".encode(),  # FRACTION SLASH
    "\u2215etc\u2215passwd.opus".encode(),  # DIVISION SLASH
    "\uff0f..\uff0fup.opus".encode(),  # FULLWIDTH SOLIDUS
    b"back\\..\\slash.opus",
    b"\xc0\xafoverlong-slash.opus",  # "/" as an overlong (invalid) UTF-8 sequence
    b"new\nline.opus",
    b"carriage\rreturn.opus",
    b"\x1b[31mterminal-escape.opus",
    b"-rf.opus",
    b"--help.opus",
    b".adbvoice.opus",
    b"x" * 250 + b".opus",  # 255 bytes, the most a name can hold
    b"bad\xff\xfebytes.opus",
]


@pytest.fixture
def hostile_phone(tmp_path):
    """A phone with a few real notes, the hostile names, and links leading out of the
    voice-note folder: to a file elsewhere on the phone, to the host's /etc/passwd, and
    folders linking to / and to the camera folder."""
    tree = build_phone_tree(tmp_path / "sdcard", notes=4, business=False, legacy=False, broken=False, audio=False)
    week = next(n.local_path.parent for n in tree.notes if n.kind == "voice" and n.is_note)
    sample = next(n.local_path for n in tree.notes if n.kind == "voice" and n.is_note).read_bytes()
    contents = {}
    for index, name in enumerate(HOSTILE_NAMES):
        contents[name] = sample + bytes([index])
        with open(os.path.join(os.fsencode(week), name), "wb") as handle:
            handle.write(contents[name])
    photo = next(n.local_path for n in tree.notes if n.local_path.suffix == ".jpg")
    links = {"escape.opus": "/etc/passwd", "photo.opus": os.path.relpath(photo, week), "outside": "/",
             "200001": str(photo.parent)}
    for name, target in links.items():
        (week / name).symlink_to(target)
    return tree, week, contents


def test_hostile_names_and_links_write_nothing_outside_the_archive(hostile_phone, tmp_path, figures):
    tree, week, contents = hostile_phone
    before = tree_listing(tmp_path, skip=tmp_path / "archives")
    reports = {}
    for lister, shell in (("shell", True), ("sync", False)):
        archive = tmp_path / "archives" / lister
        with EmulatedPhone(tree.root, shell=shell) as phone:
            result = run_cli("backup", archive, "--tcp", phone.address, "--json")
        assert result.exit_code == 3, result.stderr
        reports[lister] = json.loads(result.stdout)
    outside = writes_outside(before, tree_listing(tmp_path, skip=tmp_path / "archives"))

    row = figures.row("Hostile phones")
    for lister, report in reports.items():
        archive = tmp_path / "archives" / lister
        files = archived_files(archive)
        by_sha = {sha256(data): path for path, data in files.items()}
        warnings = "\n".join(report["warnings"])
        for name, content in contents.items():
            archived_as = by_sha.get(sha256(content))
            renamed = f"archived as {archived_as}" in warnings
            row.case(fired=archived_as is not None, lost=int(archived_as is None))
            assert archived_as is not None, name
            assert renamed == (Path(archived_as).name.encode() != name), (name, archived_as)
        for link in ("escape.opus", "photo.opus"):
            row.case(fired=True, lost=0)
            assert f"{week.name}/{link}: a symbolic link, not followed" in warnings
        # The folder links lead nowhere: the real notes and the hostile ones, nothing else.
        assert len(files) == 4 + len(contents)
        state = archive_state(archive, {n.sha256 for n in tree.notes} | {sha256(c) for c in contents.values()})
        row.measured(partial=len(state.partial))
        assert state.clean, state
        for path in archive.rglob("*"):
            assert not path.is_symlink() and archive in path.resolve().parents, path
    row.measured(outside=len(outside))
    row.notes["phone listed by shell and by sync"] = 2
    assert outside == []
    assert {n["archive_path"] for n in reports["shell"]["new_notes"]} == {n["archive_path"] for n in reports["sync"]["new_notes"]}
    raw = [r for r in json.loads(run_cli("ls", tmp_path / "archives" / "sync", "--json").stdout) if r["phone_path_hex"]]
    assert sorted(bytes.fromhex(r["phone_path_hex"]).rsplit(b"/", 1)[1] for r in raw) == sorted(
        [b"\xc0\xafoverlong-slash.opus", b"bad\xff\xfebytes.opus"]
    )


def test_a_phone_claiming_absurd_sizes_is_reported_and_nothing_is_written_for_it(tmp_path, archive, figures):
    tree = build_phone_tree(tmp_path / "sdcard", notes=4, business=False, legacy=False, broken=False, audio=False)
    liar = next(n for n in tree.notes if n.kind == "voice" and n.is_note)
    before = tree_listing(tmp_path, skip=archive)
    # Listed over sync (no shell), so the phone's LIST and STAT answers are what the backup sees.
    with EmulatedPhone(tree.root, shell=False, faults=Faults(lie_size_paths=liar.phone_path, lie_size=2**62)) as phone:
        result = run_cli("backup", archive, "--tcp", phone.address, "--json")
        lies = phone.faults_fired["lie_size"]
    outside = writes_outside(before, tree_listing(tmp_path, skip=archive))
    report = json.loads(result.stdout)
    files = archived_files(archive)
    figures.row("Hostile phones").case(fired=lies > 0, outside=len(outside), partial=0,
                                       lost=len({n.sha256 for n in tree.notes if n.is_note} - {liar.sha256}
                                                - {sha256(d) for d in files.values()}))

    assert lies > 0
    assert result.exit_code == 4
    assert report["errors"] == [f"{liar.phone_path}: the phone lists {2**62} bytes but sent {liar.size}; not archived"]
    assert liar.sha256 not in {sha256(d) for d in files.values()}
    assert len(files) == 4 - 1 and outside == []
    assert list((archive / ".adbvoice" / "tmp").iterdir()) == []
