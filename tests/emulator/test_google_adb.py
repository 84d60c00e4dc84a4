"""Google's adb (Debian's 29.0.6 and platform-tools 36.0.0) treats the emulated phone as a
phone: it connects, lists it, runs shell commands with exit codes, pulls and pushes files
byte for byte."""

from __future__ import annotations

import filecmp
import hashlib
import os
from pathlib import Path

from adbvoice.emulator import EmulatedPhone, Faults
from tests.emulator.helpers import FIVE_MB, Adb, tree

NOTES = "/sdcard/Android/media/com.whatsapp/WhatsApp/Media/WhatsApp Voice Notes/202418"


def test_adb_connect_lists_the_phone_with_its_identity(adb: Adb, phone: EmulatedPhone) -> None:
    adb.connect(phone)
    listing = adb.run("devices", "-l").stdout.decode()
    line = next(line for line in listing.splitlines() if line.startswith(phone.address))
    assert line.split()[1] == "device"
    assert "product:panther" in line and "model:Pixel_7" in line and "device:panther" in line
    # adb shows the features both sides know; adb 29 predates sendrecv_v2.
    features = adb.run("-s", phone.address, "features").stdout.decode().split()
    both_know = {"shell_v2", "stat_v2", "ls_v2", "abb", "abb_exec"} | (
        {"sendrecv_v2", "sendrecv_v2_dry_run_send", "sendrecv_v2_brotli", "sendrecv_v2_lz4", "sendrecv_v2_zstd"}
        if adb.version == "adb36" else set())
    assert set(features) == both_know
    adb.disconnect(phone)


def test_adb_shell_runs_androids_userland_with_exit_codes(adb: Adb, phone: EmulatedPhone) -> None:
    adb.connect(phone)
    s = ("-s", phone.address)
    ls = adb.run(*s, "shell", "ls /sdcard")
    assert ls.returncode == 0
    assert ls.stdout.decode().split("\n") == ["Android", "Download", "Music", "empty folder", ""]
    assert adb.run(*s, "shell", "exit 3").returncode == 3
    model = adb.run(*s, "shell", "getprop", "ro.product.model")
    assert model.stdout == b"Pixel 7\n"
    split = adb.run(*s, "shell", "echo out; echo err >&2; exit 7")
    assert (split.stdout, split.stderr, split.returncode) == (b"out\n", b"err\n", 7)
    stdin = adb.run(*s, "shell", "cat", stdin=b"piped through shell v2\n")
    assert stdin.stdout == b"piped through shell v2\n"
    script = adb.run(*s, "shell", stdin=b"echo from a script; exit 5\n")  # no command: a shell reading stdin
    assert (script.stdout, script.returncode) == (b"from a script\n", 5)
    # What adb asks for: shell v2 without a PTY when stdin is not a terminal.
    assert phone.log.services() == [
        "shell,v2,TERM=xterm,raw:ls /sdcard",
        "shell,v2,TERM=xterm,raw:exit 3",
        "shell,v2,TERM=xterm,raw:getprop ro.product.model",
        "shell,v2,TERM=xterm,raw:echo out; echo err >&2; exit 7",
        "shell,v2,TERM=xterm,raw:cat",
        "shell,v2,TERM=xterm,raw:",
    ]
    adb.disconnect(phone)


def test_adb_pull_of_a_folder_tree_is_byte_identical(adb: Adb, phone: EmulatedPhone, tmp_path: Path) -> None:
    adb.connect(phone)
    pulled = adb.run("-s", phone.address, "pull", "/sdcard/", str(tmp_path / "out"))
    assert pulled.returncode == 0, pulled
    assert tree(tmp_path / "out") == tree(phone.root)
    assert phone.file_bytes_sent == sum(len(c) for c in tree(phone.root).values() if c)
    adb.disconnect(phone)


def test_adb_pull_of_single_files_and_exec_out_are_byte_identical(
    adb: Adb, phone: EmulatedPhone, tmp_path: Path
) -> None:
    adb.connect(phone)
    s = ("-s", phone.address)
    for name in ("PTT-20240501-WA0001.opus", ".nomedia", "Sent/PTT-20240503-WA0003.opus"):
        local = tmp_path / Path(name).name
        result = adb.run(*s, "pull", f"{NOTES}/{name}", str(local))
        assert result.returncode == 0, result
        assert filecmp.cmp(local, phone.root / NOTES.removeprefix("/sdcard/") / name, shallow=False)
    unicode_name = "/sdcard/Music/Grüße aus Köln/Lied Nr. 1 – ünïcødé.opus"
    assert adb.run(*s, "pull", unicode_name, str(tmp_path / "lied.opus")).returncode == 0
    assert (tmp_path / "lied.opus").read_bytes() == (phone.root / unicode_name[8:]).read_bytes()
    # exec: is a raw PTY, binary-safe (cfmakeraw), as adbd's exec-out.
    cat = adb.run(*s, "exec-out", f"cat '{NOTES}/PTT-20240501-WA0001.opus'")
    assert len(cat.stdout) == FIVE_MB
    assert cat.stdout == (phone.root / NOTES[8:] / "PTT-20240501-WA0001.opus").read_bytes()
    adb.disconnect(phone)


def test_adb_pull_of_a_missing_file_fails_with_adbs_message(adb: Adb, phone: EmulatedPhone, tmp_path: Path) -> None:
    adb.connect(phone)
    result = adb.run("-s", phone.address, "pull", "/sdcard/nope.opus", str(tmp_path / "x"))
    assert result.returncode == 1
    assert (
        b"adb: error: failed to stat remote object '/sdcard/nope.opus': No such file or directory"
        in result.stdout + result.stderr
    )
    assert not (tmp_path / "x").exists()
    adb.disconnect(phone)


def test_adb_ls_sees_sync_listing_with_dot_entries(adb: Adb, phone: EmulatedPhone) -> None:
    adb.connect(phone)
    listing = adb.run("-s", phone.address, "ls", "/sdcard/Download/").stdout.decode().splitlines()
    names = [line.split(" ", 3)[3] for line in listing]
    assert names[:2] == [".", ".."] and "with space.txt" in names
    adb.disconnect(phone)


def test_adb_reconnects_by_itself_to_a_phone_that_left_and_came_back(adb: Adb, phone: EmulatedPhone) -> None:
    adb.connect(phone)
    phone.stop()
    assert adb.wait_state(phone.address, "offline", timeout=10) == "offline"
    phone.start()
    # adb retries a lost TCP device on its own schedule (about 10 s after the loss);
    # its CNXN then carries no checksum, as the transport had agreed to skip them.
    assert adb.wait_state(phone.address, "device", timeout=30) == "device"
    assert adb.run("-s", phone.address, "shell", "echo back").stdout == b"back\n"
    assert phone.protocol_violations == []
    adb.disconnect(phone)


def test_adb_push_of_files_and_a_folder_lands_byte_identical_with_its_time(
    adb: Adb, phone: EmulatedPhone, tmp_path: Path
) -> None:
    local = tmp_path / "local"
    (local / "tree" / "deeper").mkdir(parents=True)
    (local / "memo.m4a").write_bytes(os.urandom(300_000))
    (local / "tree" / "deeper" / "PTT-20240601-WA0009.opus").write_bytes(b"OggS" + os.urandom(5000))
    os.utime(local / "memo.m4a", (1_600_000_000, 1_600_000_000))
    os.chmod(local / "memo.m4a", 0o640)
    adb.connect(phone)
    s = ("-s", phone.address)
    pushed = adb.run(*s, "push", str(local / "memo.m4a"), "/data/local/tmp/")
    assert pushed.returncode == 0, pushed
    # A folder pushed to a folder that does not exist yet becomes it; the phone makes
    # every missing folder on the way.
    tree_push = adb.run(*s, "push", str(local / "tree"), "/sdcard/Music/new/")
    assert tree_push.returncode == 0, tree_push
    on_phone = phone.root / "Music/new/deeper/PTT-20240601-WA0009.opus"
    assert on_phone.read_bytes() == (local / "tree/deeper/PTT-20240601-WA0009.opus").read_bytes()
    # /data/local/tmp is the shell's too: the phone's own tools see what was pushed.
    seen = adb.run(*s, "shell", "sha256sum /data/local/tmp/memo.m4a; stat -c '%Y %a' /data/local/tmp/memo.m4a")
    digest, when = seen.stdout.decode().splitlines()
    assert digest.split()[0] == hashlib.sha256((local / "memo.m4a").read_bytes()).hexdigest()
    assert when == "1600000000 666"  # its time; its user's bits given to group and others (send_impl)
    adb.disconnect(phone)


def test_adb_push_replaces_a_file_and_fails_where_the_phone_cannot_write(
    adb: Adb, phone_dir: Path, tmp_path: Path, small_disk: Path
) -> None:
    memo = tmp_path / "memo.opus"
    memo.write_bytes(os.urandom(2000))
    full = small_disk / "sdcard"
    full.mkdir()
    with EmulatedPhone(phone_dir, faults=Faults(read_only_paths="/sdcard/Alarms/*")) as phone, \
            EmulatedPhone(full) as tiny:
        adb.connect(phone)
        s = ("-s", phone.address)
        (phone_dir / "Download" / "memo.opus").write_bytes(b"an older file")
        assert adb.run(*s, "push", str(memo), "/sdcard/Download/memo.opus").returncode == 0
        assert (phone_dir / "Download" / "memo.opus").read_bytes() == memo.read_bytes()
        refused = adb.run(*s, "push", str(memo), "/system/memo.opus")
        assert refused.returncode == 1
        assert b"remote couldn't create file: Permission denied" in refused.stdout + refused.stderr
        read_only = adb.run(*s, "push", str(memo), "/sdcard/Alarms/memo.opus")
        assert b"remote couldn't create file: Read-only file system" in read_only.stdout + read_only.stderr
        assert phone.faults_fired["read_only"] == 1
        adb.disconnect(phone)
        big = tmp_path / "big.bin"
        big.write_bytes(os.urandom(600_000))  # more than the 400 KB disk holds
        adb.connect(tiny)
        no_room = adb.run("-s", tiny.address, "push", str(big), "/sdcard/big.bin")
        assert no_room.returncode == 1
        assert b"write failed: No space left on device" in no_room.stdout + no_room.stderr
        assert not (full / "big.bin").exists()  # adbd removes the half file
        adb.disconnect(tiny)
