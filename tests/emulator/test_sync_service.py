"""The sync: service answered byte by byte as adbd's file_sync_service.cpp does: pipelined
requests in order, FAIL ends the service, /sdcard is Android's symlink chain, names are
raw bytes, and nothing outside PHONE_DIR can be reached."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

from adbvoice.emulator import EmulatedPhone
from adbvoice.phone import wire
from tests.emulator.helpers import (
    RawHost,
    RawHostFactory,
    parse_sync_replies,
    sync_request,
)

W = wire
NOTES = b"/sdcard/Android/media/com.whatsapp/WhatsApp/Media/WhatsApp Voice Notes/202418"


def open_sync(raw_host: RawHostFactory, phone: EmulatedPhone, **kwargs: object) -> tuple[RawHost, int, int]:
    host = raw_host(phone, **kwargs)
    assert host.connect().name == "CNXN"
    local, remote = host.open(b"sync:")
    return host, local, remote


def ask(host: RawHost, local: int, remote: int, requests: list[tuple[bytes, bytes]]) -> list[object]:
    """Send all requests in one WRTE, then QUIT; parse every answer up to the CLSE."""
    payload = b"".join(sync_request(i, p) for i, p in requests) + sync_request(W.ID_QUIT, b"")
    host.send(W.A_WRTE, local, remote, payload)
    okay = host.recv()
    assert (okay.name, okay.arg1) == ("OKAY", local)
    return parse_sync_replies(host.read_until_close(local, remote), [i for i, _ in requests])


def test_pipelined_requests_in_one_write_are_answered_in_order(raw_host: RawHostFactory, phone: EmulatedPhone) -> None:
    host, local, remote = open_sync(raw_host, phone)
    small = NOTES + b"/PTT-20240502-WA0002.opus"
    answers = ask(host, local, remote, [
        (W.ID_LSTAT_V1, small),
        (W.ID_LIST_V2, NOTES + b"/Sent"),
        (W.ID_RECV_V1, small),
        (W.ID_STAT_V2, b"/sdcard/Download/with space.txt"),
        (W.ID_LIST_V1, b"/sdcard/empty folder"),
        (W.ID_RECV_V1, b"/sdcard/Download/with space.txt"),
    ])
    content = (phone.root / small[8:].decode()).read_bytes()
    mode, size, _ = answers[0]
    assert stat.S_ISREG(mode) and size == len(content)
    assert [name for _, name in answers[1]] == [b".", b"..", b"PTT-20240503-WA0003.opus"]
    assert answers[2] == content
    assert answers[3][7] == len("a file name with a space\n")  # STA2: error, dev, ino, mode, nlink, uid, gid, size
    assert [name for _, name in answers[4]] == [b".", b".."]
    assert answers[5] == b"a file name with a space\n"


def test_requests_split_across_writes_are_reassembled(raw_host: RawHostFactory, phone: EmulatedPhone) -> None:
    host, local, remote = open_sync(raw_host, phone)
    request = sync_request(W.ID_STAT_V2, b"/sdcard/Download") + sync_request(W.ID_LSTAT_V2, b"/sdcard")
    for piece in (request[:3], request[3:20], request[20:]):
        host.send(W.A_WRTE, local, remote, piece)
        assert host.recv().name == "OKAY"
    replies = parse_sync_replies(host.read_stream(local, remote, 2 * W.SYNC_STAT_V2.size), [W.ID_STAT_V2, W.ID_LSTAT_V2])
    assert stat.S_ISDIR(replies[0][3])
    assert stat.S_ISLNK(replies[1][3]) and replies[1][7] == len("/storage/self/primary")


def test_a_fail_ends_the_service_and_later_requests_are_not_answered(raw_host: RawHostFactory, phone: EmulatedPhone) -> None:
    host, local, remote = open_sync(raw_host, phone)
    answers = ask(host, local, remote, [(W.ID_RECV_V1, b"/sdcard/missing.opus"), (W.ID_STAT_V2, b"/sdcard")])
    assert answers == [("FAIL", "open failed: No such file or directory")]
    host2, local2, remote2 = open_sync(raw_host, phone)
    assert ask(host2, local2, remote2, [(W.ID_RECV_V1, b"/sdcard/Download")]) == [("FAIL", "read failed: Is a directory")]
    host3, local3, remote3 = open_sync(raw_host, phone)
    long_path = b"/sdcard/" + b"x" * 1100
    assert ask(host3, local3, remote3, [(W.ID_LSTAT_V1, long_path)]) == [("FAIL", "path too long")]
    host4, local4, remote4 = open_sync(raw_host, phone)
    assert ask(host4, local4, remote4, [(b"NOPE", b"/sdcard/x")]) == [("FAIL", "unknown command 45504f4e")]


def test_sdcard_is_androids_symlink_chain_data_local_tmp_exists_and_other_paths_do_not(raw_host: RawHostFactory, phone: EmulatedPhone) -> None:
    host, local, remote = open_sync(raw_host, phone)
    answers = ask(host, local, remote, [
        (W.ID_LSTAT_V2, b"/sdcard"),
        (W.ID_LSTAT_V2, b"/storage/self/primary"),
        (W.ID_STAT_V2, b"/sdcard"),
        (W.ID_LSTAT_V2, b"/sdcard/"),
        (W.ID_STAT_V2, b"/storage/emulated/0/Download"),
        (W.ID_STAT_V2, b"sdcard/Download"),  # adbd's cwd is /
        (W.ID_STAT_V2, b"/data/local/tmp"),
        (W.ID_LSTAT_V1, b"/etc/passwd"),
        (W.ID_LIST_V2, b"/storage/self/primary/Download"),
    ])
    sdcard_link, self_link, sdcard, sdcard_slash, download, relative, data, etc, listing = answers
    assert stat.S_ISLNK(sdcard_link[3]) and sdcard_link[7] == 21
    assert stat.S_ISLNK(self_link[3]) and self_link[7] == len("/storage/emulated/0")
    assert stat.S_ISDIR(sdcard[3]) and stat.S_ISDIR(sdcard_slash[3])
    assert stat.S_ISDIR(download[3]) and relative == download
    assert data[0] == 0 and stat.S_ISDIR(data[3])  # the one folder of /data the shell may write
    assert etc == (0, 0, 0)
    assert [name for _, name in listing] == [b".", b"..", b"with space.txt"]


def test_names_are_raw_bytes(raw_host: RawHostFactory, phone: EmulatedPhone) -> None:
    name = b"PTT-\xff\xfe-not-utf8.opus"
    with open(os.path.join(os.fsencode(phone.root), b"Download", name), "wb") as f:
        f.write(b"latin1 note")
    host, local, remote = open_sync(raw_host, phone)
    listing, content = ask(host, local, remote, [
        (W.ID_LIST_V2, b"/sdcard/Download"),
        (W.ID_RECV_V1, b"/sdcard/Download/" + name),
    ])
    assert name in [n for _, n in listing]
    assert content == b"latin1 note"


def test_links_leading_out_of_phone_dir_are_listed_but_never_followed(
    raw_host: RawHostFactory, phone: EmulatedPhone, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    (phone.root / "Download" / "escape.txt").symlink_to(secret)
    (phone.root / "Download" / "escape-dir").symlink_to(tmp_path)
    (phone.root / "Download" / "alias.txt").symlink_to("with space.txt")
    host, local, remote = open_sync(raw_host, phone)
    listing, escape_l, escape_s, escape_dir, alias, dotdot = ask(host, local, remote, [
        (W.ID_LIST_V2, b"/sdcard/Download"),
        (W.ID_LSTAT_V2, b"/sdcard/Download/escape.txt"),
        (W.ID_STAT_V2, b"/sdcard/Download/escape.txt"),
        (W.ID_LIST_V2, b"/sdcard/Download/escape-dir"),
        (W.ID_RECV_V1, b"/sdcard/Download/alias.txt"),
        (W.ID_STAT_V2, b"/sdcard/../../" + os.fsencode(secret).lstrip(b"/")),
    ])
    modes = {name: fields[3] for fields, name in listing}
    assert stat.S_ISLNK(modes[b"escape.txt"]) and stat.S_ISLNK(modes[b"escape-dir"])
    assert stat.S_ISLNK(escape_l[3])
    assert escape_s[0] == errno.ENOENT
    assert escape_dir == []
    assert alias == b"a file name with a space\n"
    assert dotdot[0] == errno.ENOENT
    host2, local2, remote2 = open_sync(raw_host, phone)
    failed = ask(host2, local2, remote2, [(W.ID_RECV_V1, b"/sdcard/Download/escape.txt")])
    assert failed == [("FAIL", "open failed: No such file or directory")]
    assert phone.file_bytes_sent == len(b"a file name with a space\n")


def test_recv_v2_without_compression_and_refusing_unknown_flags(raw_host: RawHostFactory, phone: EmulatedPhone) -> None:
    host, local, remote = open_sync(raw_host, phone)
    path = b"/sdcard/Download/with space.txt"
    request = sync_request(W.ID_RECV_V2, path) + W.SYNC_RECV_V2.pack(W.ID_RECV_V2, 0)
    request += sync_request(W.ID_RECV_V2, path) + W.SYNC_RECV_V2.pack(W.ID_RECV_V2, 8)  # no such flag
    host.send(W.A_WRTE, local, remote, request)
    assert host.recv().name == "OKAY"
    answers = parse_sync_replies(host.read_until_close(local, remote), [W.ID_RECV_V2, W.ID_RECV_V2])
    assert answers == [b"a file name with a space\n", ("FAIL", "unknown flags: 8")]
    # Compression is one codec or none (do_recv_v2): brotli and LZ4 at once is refused.
    host, local, remote = open_sync(raw_host, phone)
    host.send(W.A_WRTE, local, remote, sync_request(W.ID_RECV_V2, path) + W.SYNC_RECV_V2.pack(W.ID_RECV_V2, 1 | 2))
    assert host.recv().name == "OKAY"
    answers = parse_sync_replies(host.read_until_close(local, remote), [W.ID_RECV_V2])
    assert answers == [("FAIL", "multiple compression flags received: 3")]


def test_file_data_is_cut_in_64k_chunks_and_writes_fit_the_hosts_maxdata(raw_host: RawHostFactory, phone: EmulatedPhone) -> None:
    host, local, remote = open_sync(raw_host, phone, maxdata=4096)
    path = NOTES + b"/Sent/PTT-20240503-WA0003.opus"
    host.send(W.A_WRTE, local, remote, sync_request(W.ID_RECV_V1, path) + sync_request(W.ID_QUIT, b""))
    assert host.recv().name == "OKAY"
    data = host.read_until_close(local, remote)
    writes = [r.length for r in phone.log.records() if r.command == "WRTE" and r.direction == "device"]
    assert max(writes) <= 4096 and len(writes) >= 70_000 // 4096
    chunks, i = [], 0
    while data[i : i + 4] == W.ID_DATA:
        (length,) = W.SYNC_REQUEST.unpack_from(data, i)[1:]
        chunks.append(length)
        i += 8 + length
    assert chunks == [65536, 70_000 - 65536] and data[i:] == W.ID_DONE + bytes(4)


def test_a_300_mb_file_is_streamed_without_growing_the_phones_memory(tmp_path: Path) -> None:
    root = tmp_path / "sdcard"
    root.mkdir()
    size = 300 * 1000 * 1000
    with open(root / "big.opus", "wb") as f:
        f.truncate(size)  # sparse: costs no disk
    proc = subprocess.Popen(
        [sys.executable, "-m", "adbvoice.emulator", str(root), "--port", "0", "--no-shell"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().rsplit(":", 1)[1])

        def peak_rss_kb() -> int:
            status = Path(f"/proc/{proc.pid}/status").read_text()
            return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])

        host = RawHost(port)
        host.connect()
        local, remote = host.open(b"sync:")
        before = peak_rss_kb()
        started = time.monotonic()
        host.send(W.A_WRTE, local, remote, sync_request(W.ID_RECV_V1, b"/sdcard/big.opus") + sync_request(W.ID_QUIT, b""))
        received = 0
        while True:
            msg = host.recv()
            if msg.name == "CLSE":
                break
            if msg.name == "WRTE":
                received += len(msg.data)
                host.send(W.A_OKAY, local, remote)
        elapsed = time.monotonic() - started
        host.close()
        growth_mb = (peak_rss_kb() - before) / 1024
        chunks = -(-size // W.SYNC_DATA_MAX)
        assert received == size + 8 * chunks + 8
        assert growth_mb < 40, f"RSS grew by {growth_mb:.0f} MB while serving 300 MB in {elapsed:.1f} s"
    finally:
        proc.terminate()
        proc.wait(10)
