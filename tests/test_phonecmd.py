"""The commands we run on the phone, run here by Android's own userland (mksh + toybox),
and the parsing of exactly what they print."""

import hashlib
import os
import pathlib
import shutil
import subprocess

import pytest

from adbvoice.phone import scripts
from adbvoice.phone.shell import RunningCommand

MKSH = shutil.which("mksh")
TOYBOX = shutil.which("toybox")


def android_shell(script: str, stdin: bytes = b"") -> bytes:
    assert MKSH and TOYBOX, "mksh and toybox are needed: run .ci/install-tools"
    # Put toybox's applets first on PATH, as on a phone.
    bindir = os.environ["ANDROID_BIN"]
    result = subprocess.run([MKSH, "-c", script], input=stdin, capture_output=True, env={"PATH": bindir}, check=False)
    return result.stdout


@pytest.fixture(autouse=True)
def toybox_path(tmp_path_factory, monkeypatch):
    bindir = tmp_path_factory.mktemp("system-bin")
    for applet in ("find", "printf", "xargs", "sha1sum", "sha256sum", "md5sum", "sort", "rm", "sh"):
        (bindir / applet).symlink_to(TOYBOX if applet != "sh" else MKSH)
    getprop = bindir / "getprop"
    getprop.write_text("#!" + MKSH + "\necho \"value of $1\"\n")
    getprop.chmod(0o755)
    monkeypatch.setenv("ANDROID_BIN", str(bindir))


def test_the_listing_names_every_file_below_each_root_with_size_and_mtime(tmp_path):
    root = tmp_path / "WhatsApp Voice Notes"
    (root / "202118" / "Sent").mkdir(parents=True)
    note = root / "202118" / "PTT-20210503-WA0007.opus"
    note.write_bytes(b"x" * 1234)
    os.utime(note, (1620036001, 1620036001))
    (root / "202118" / "Sent" / "PTT-20210503-WA0008.opus").write_bytes(b"y")
    (root / "202118" / "odd\nname it's.opus").write_bytes(b"z")
    (root / "202118" / "link.opus").symlink_to("/etc/passwd")
    missing = tmp_path / "WhatsApp Business"
    roots = [str(root), str(missing)]

    stats, entries = scripts.parse_listing(android_shell(scripts.listing_script(roots)), roots)

    assert stats[str(root).encode()].is_dir and not stats[str(missing).encode()].exists
    by_name = {e.path.rsplit(b"/", 1)[-1]: e.stat for e in entries}
    assert set(by_name) == {b"PTT-20210503-WA0007.opus", b"PTT-20210503-WA0008.opus", b"odd\nname it's.opus", b"link.opus"}
    assert (by_name[b"PTT-20210503-WA0007.opus"].size, by_name[b"PTT-20210503-WA0007.opus"].mtime) == (1234, 1620036001)
    assert by_name[b"link.opus"].is_link and by_name[b"PTT-20210503-WA0008.opus"].is_file
    assert any(e.path == str(root).encode() + b"/202118/Sent/PTT-20210503-WA0008.opus" for e in entries)


def test_a_cut_off_listing_is_not_mistaken_for_a_complete_one(tmp_path):
    roots = [str(tmp_path)]
    output = android_shell(scripts.listing_script(roots))
    with pytest.raises(scripts.UnexpectedOutput):
        scripts.parse_listing(output[:-2], roots)
    with pytest.raises(scripts.UnexpectedOutput):
        scripts.parse_listing(b"/system/bin/sh: not found\n", roots)


class FinishedCommand(RunningCommand):
    """A command whose whole output is already here."""

    def __init__(self, stdout: bytes) -> None:
        self.stdout = bytearray(stdout)
        self.finished = True

    def read_more(self) -> bool:
        return False


def test_phone_hashes_match_each_file_even_when_one_is_missing_or_has_a_newline(tmp_path):
    files = []
    for name, content in [("a.opus", b"one"), ("gone.opus", None), ("new\nline.opus", b"two"), ("c.opus", b"three")]:
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        files.append(str(path).encode())
    output = android_shell(scripts.HASH_COMMAND, stdin=scripts.hash_stdin(files))

    hashes = scripts.PhoneHashes(FinishedCommand(output), files)

    assert hashes.get(0) == hashlib.sha1(b"one").hexdigest()
    assert hashes.get(1) is None
    assert hashes.get(2) == hashlib.sha1(b"two").hexdigest()
    assert hashes.get(3) == hashlib.sha1(b"three").hexdigest()


def test_the_fingerprint_is_the_hash_of_exactly_what_the_listing_prints(tmp_path):
    root = tmp_path / "WhatsApp Voice Notes"
    (root / "202118").mkdir(parents=True)
    (root / "202118" / "PTT-20210503-WA0007.opus").write_bytes(b"x" * 1234)
    roots = [str(root), str(tmp_path / "missing")]

    props, stats, digest = scripts.parse_fingerprint(android_shell(scripts.fingerprint_script(roots)), roots)
    listing = android_shell(scripts.listing_script(roots))

    assert digest == scripts.listing_fingerprint(listing) == hashlib.sha256(listing).hexdigest()
    assert props["ro.serialno"] == "value of ro.serialno"
    assert stats[str(root).encode()].is_dir and not stats[roots[1].encode()].exists
    (root / "202118" / "PTT-20210503-WA0008.opus").write_bytes(b"new")
    _props, _stats, changed = scripts.parse_fingerprint(android_shell(scripts.fingerprint_script(roots)), roots)
    assert changed != digest


def test_the_delete_script_removes_exactly_the_notes_whose_bytes_match_and_never_follows_a_link(tmp_path):
    folder = tmp_path / "202118"
    folder.mkdir()
    names = ["PTT-20210503-WA0001.opus", "-rf.opus", "odd\nname $(touch pwned) 'q'.opus", "changed.opus"]
    for name in names:
        (folder / name).write_bytes(name.encode() * 10)
    target = tmp_path / "elsewhere.opus"
    target.write_bytes(b"not a note here")
    (folder / "link.opus").symlink_to(target)
    digest = {n: hashlib.sha256(n.encode() * 10).hexdigest() for n in names}
    digest["changed.opus"] = hashlib.sha256(b"what the archive holds").hexdigest()
    digest["link.opus"] = hashlib.sha256(b"not a note here").hexdigest()
    asked = [*names, "link.opus", "gone.opus"]
    pairs = [(str(folder / n).encode(), digest.get(n, "0" * 64)) for n in asked]

    out = android_shell(scripts.delete_script("sha256sum"), stdin=scripts.delete_stdin(pairs))

    assert scripts.delete_outcomes(out) == ["D", "D", "D", "C", "S", "S"]
    assert sorted(p.name for p in folder.iterdir()) == ["changed.opus", "link.opus"]
    assert target.read_bytes() == b"not a note here" and not (tmp_path / "pwned").exists()
    assert list(tmp_path.rglob("pwned")) == []


def test_prune_hashes_with_sha256sum_and_with_md5sum_on_a_phone_without_it():
    assert android_shell(scripts.hash_tool_script()) == b"sha256sum"
    (pathlib.Path(os.environ["ANDROID_BIN"]) / "sha256sum").unlink()
    assert android_shell(scripts.hash_tool_script()) == b"md5sum"
