"""mDNS on this machine's loopback: what the emulated phone announces, adbvoice finds.

Real zeroconf on both sides: multicast on 127.0.0.1 reaches a browser on all interfaces."""

from __future__ import annotations

import time
import uuid

from adbvoice.emulator.mdns import Announcement
from adbvoice.phone import mdns

CONNECT = "_adb-tls-connect._tcp"


def test_a_phone_is_found_by_its_guid_and_a_duplicate_name_still_matches():
    guid = f"adb-{uuid.uuid4().hex[:12]}"
    with Announcement(CONNECT, guid, 37001), Announcement(CONNECT, guid, 37002):
        found = mdns.find(CONNECT, guid, timeout=5)
        assert found is not None and found.instance.startswith(guid) and found.host == "127.0.0.1"
        listed = {s.port for s in mdns.browse(CONNECT + ".local.", timeout=1.5) if s.instance.startswith(guid)}
        assert listed == {37001, 37002}


def test_nothing_announced_is_none_after_the_timeout():
    started = time.monotonic()
    assert mdns.find(CONNECT, f"adb-{uuid.uuid4().hex}", timeout=0.8) is None
    assert 0.7 < time.monotonic() - started < 3


def test_a_closed_announcement_is_gone():
    guid = f"adb-{uuid.uuid4().hex[:12]}"
    with Announcement(CONNECT, guid, 37003):
        assert mdns.find(CONNECT, guid, timeout=5) is not None
    assert mdns.find(CONNECT, guid, timeout=1) is None


def test_a_machine_where_mdns_cannot_open_its_sockets_finds_nothing(monkeypatch):
    import zeroconf

    def no_multicast(*args, **kwargs):
        raise OSError(19, "No such device")

    monkeypatch.setattr(zeroconf, "Zeroconf", no_multicast)
    assert mdns.find(CONNECT, "adb-", timeout=5) is None
    assert mdns.browse(CONNECT, timeout=5) == []
