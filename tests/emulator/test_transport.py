"""The transport as adbd runs it (adb.cpp, sockets.cpp): the CNXN handshake, several
streams at once on one connection, flow control, and a host that breaks the rules."""

from __future__ import annotations

from adbvoice.emulator import EmulatedPhone
from adbvoice.phone import wire
from tests.emulator.helpers import (
    RawHost,
    RawHostFactory,
    parse_sync_replies,
    sync_request,
)

W = wire
BIG = b"/sdcard/Android/media/com.whatsapp/WhatsApp/Media/WhatsApp Voice Notes/202418/PTT-20240501-WA0001.opus"


def connected(raw_host: RawHostFactory, phone: EmulatedPhone, **kwargs: object) -> RawHost:
    host = raw_host(phone, **kwargs)
    assert host.connect().name == "CNXN"
    return host


def test_cnxn_negotiates_version_and_maxdata_and_announces_the_phone(raw_host: RawHostFactory, phone: EmulatedPhone) -> None:
    host = raw_host(phone, maxdata=256 * 1024)
    reply = host.connect(version=W.A_VERSION_MIN)
    assert reply.name == "CNXN"
    assert (reply.arg0, reply.arg1) == (W.A_VERSION, 256 * 1024)  # adbd sends A_VERSION
    kind, props = W.parse_banner(reply.data)
    assert kind == "device"
    assert props == {
        "ro.product.name": "panther",
        "ro.product.model": "Pixel 7",
        "ro.product.device": "panther",
        "features": "shell_v2,stat_v2,ls_v2,sendrecv_v2,sendrecv_v2_dry_run_send,abb,abb_exec,"
        "sendrecv_v2_brotli,sendrecv_v2_lz4,sendrecv_v2_zstd",
    }
    big = raw_host(phone, maxdata=16 * 1024 * 1024)
    assert big.connect().arg1 == W.MAX_PAYLOAD


def test_messages_before_cnxn_are_ignored(raw_host: RawHostFactory, phone: EmulatedPhone) -> None:
    host = raw_host(phone)
    host.send(W.A_OPEN, 1, 0, b"sync:\0")
    assert host.connect().name == "CNXN"  # the first thing the phone says
    assert phone.log.count("OKAY", direction="device") == 0


def test_several_streams_share_one_connection(raw_host: RawHostFactory, phone: EmulatedPhone) -> None:
    host = connected(raw_host, phone)
    pull_local, pull_remote = host.open(b"sync:")
    host.send(W.A_WRTE, pull_local, pull_remote, sync_request(W.ID_RECV_V1, BIG))
    assert host.recv().name == "OKAY"
    first = host.recv()  # the pull's first WRTE, left unacknowledged for now
    assert (first.name, first.arg1) == ("WRTE", pull_local)

    shell_local, shell_remote = host.open(b"shell,v2,raw:echo from the shell")
    out = host.read_until_close(shell_local, shell_remote)
    assert out == (W.SHELL_HEADER.pack(W.SHELL_STDOUT, 15) + b"from the shell\n"
                   + W.SHELL_HEADER.pack(W.SHELL_EXIT, 1) + b"\0")
    host.send(W.A_CLSE, shell_local, shell_remote)

    list_local, list_remote = host.open(b"sync:")
    host.send(W.A_WRTE, list_local, list_remote, sync_request(W.ID_LIST_V2, b"/sdcard") + sync_request(W.ID_QUIT, b""))
    assert host.recv().name == "OKAY"
    listing = parse_sync_replies(host.read_until_close(list_local, list_remote), [W.ID_LIST_V2])
    assert len(listing[0]) == 6

    host.send(W.A_OKAY, pull_local, pull_remote)
    host.send(W.A_WRTE, pull_local, pull_remote, sync_request(W.ID_QUIT, b""))
    rest = bytearray()
    while True:
        msg = host.recv()
        if msg.name == "CLSE":
            break
        if msg.name == "WRTE":
            rest += msg.data
            host.send(W.A_OKAY, pull_local, pull_remote)
    content = parse_sync_replies(first.data + bytes(rest), [W.ID_RECV_V1])[0]
    assert content == (phone.root / BIG[8:].decode()).read_bytes()
    assert phone.protocol_violations == []


def test_a_second_write_before_the_phones_okay_closes_the_connection(raw_host: RawHostFactory, phone: EmulatedPhone) -> None:
    host = connected(raw_host, phone)
    local, remote = host.open(b"sync:")
    host.send(W.A_WRTE, local, remote, sync_request(W.ID_RECV_V1, BIG))
    assert host.recv().name == "OKAY"
    assert host.recv().name == "WRTE"  # not acknowledged: the service now waits for us
    host.send(W.A_WRTE, local, remote, sync_request(W.ID_STAT_V2, b"/sdcard"))  # fine, after an OKAY
    host.send(W.A_WRTE, local, remote, sync_request(W.ID_STAT_V2, b"/sdcard"))  # no OKAY for the last one
    host.sock.settimeout(5)
    assert host.sock.recv(1) == b""
    assert len(phone.protocol_violations) == 1
    assert "before our OKAY" in phone.protocol_violations[0]


def test_garbage_and_bad_checksums_close_the_connection(raw_host: RawHostFactory, phone: EmulatedPhone) -> None:
    garbage = raw_host(phone)
    garbage.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    garbage.sock.settimeout(5)
    assert garbage.sock.recv(1) == b""
    # A host that negotiated the legacy version is held to checksums (old adbd was).
    old = raw_host(phone)
    assert old.connect(version=W.A_VERSION_MIN).name == "CNXN"
    service = b"sync:\0"
    old.sock.sendall(W.HEADER.pack(W.A_OPEN, 9, 0, len(service), 12345, W.A_OPEN ^ 0xFFFFFFFF) + service)
    old.sock.settimeout(5)
    assert old.sock.recv(1) == b""
    assert len(phone.protocol_violations) == 2
    assert "checksum" in phone.protocol_violations[1]
    # Once both sides speak A_VERSION_SKIP_CHECKSUM, nobody checks it.
    new = connected(raw_host, phone)
    new.sock.sendall(W.HEADER.pack(W.A_OPEN, 9, 0, len(service), 0, W.A_OPEN ^ 0xFFFFFFFF) + service)
    assert new.recv().name == "OKAY"
    assert len(phone.protocol_violations) == 2


def test_unknown_services_and_delayed_acks_are_refused_with_clse(raw_host: RawHostFactory, phone: EmulatedPhone) -> None:
    host = connected(raw_host, phone)
    for arg1, service in ((0, b"reboot:\0"), (0, b"jdwp\0"), (0, b"shell\0"), (4096, b"sync:\0")):
        host.send(W.A_OPEN, 7, arg1, service)
        reply = host.recv()
        assert (reply.name, reply.arg0, reply.arg1) == ("CLSE", 0, 7)


def test_close_is_answered_once_and_strays_get_a_clse(raw_host: RawHostFactory, phone: EmulatedPhone) -> None:
    host = connected(raw_host, phone)
    local, remote = host.open(b"sync:")
    host.send(W.A_CLSE, local, remote)
    reply = host.recv()  # adbd echoes the CLSE (sockets.cpp, local_socket_close)
    assert (reply.name, reply.arg0, reply.arg1) == ("CLSE", remote, local)
    host.send(W.A_CLSE, local, remote)  # unknown now: not answered
    host.send(W.A_OKAY, local, remote)  # an OKAY for a stream that is gone: CLSE back
    reply = host.recv()
    assert (reply.name, reply.arg0, reply.arg1) == ("CLSE", remote, local)
    host.send(W.A_WRTE, local, remote, b"ignored")  # a WRTE for it is ignored
    local2, _ = host.open(b"sync:")
    assert local2 != local
