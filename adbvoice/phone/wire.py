"""Byte layouts of the ADB wire protocols, shared by our client and the emulated phone.

Everything here is transcribed from AOSP's packages/modules/adb: `adb.h` and
`docs/dev/protocol.md` (transport messages), `file_sync_protocol.h` and
`docs/dev/sync.md` (the `sync:` service), `shell_protocol.h` (shell v2 packets) and
`sysdeps/errno.cpp` (errno values on the wire). All integers are little-endian.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Transport message commands: four ASCII letters read as a little-endian uint32.
A_SYNC = 0x434E5953
A_CNXN = 0x4E584E43
A_AUTH = 0x48545541
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_CLSE = 0x45534C43
A_WRTE = 0x45545257
A_STLS = 0x534C5453
COMMAND_NAMES = {
    A_SYNC: "SYNC",
    A_CNXN: "CNXN",
    A_AUTH: "AUTH",
    A_OPEN: "OPEN",
    A_OKAY: "OKAY",
    A_CLSE: "CLSE",
    A_WRTE: "WRTE",
    A_STLS: "STLS",
}

A_VERSION_MIN = 0x01000000
# From this version on, neither side computes nor checks the payload checksum.
A_VERSION_SKIP_CHECKSUM = 0x01000001
A_VERSION = 0x01000001

# CNXN and AUTH travel before maxdata is agreed, so they must fit the old 4 KiB limit.
MAX_PAYLOAD_V1 = 4 * 1024
MAX_PAYLOAD = 1024 * 1024

# STLS (Wireless debugging): both sides send it, then TLS 1.3 starts on the same socket.
A_STLS_VERSION = 0x01000000

AUTH_TOKEN = 1
AUTH_SIGNATURE = 2
AUTH_RSAPUBLICKEY = 3
AUTH_TOKEN_SIZE = 20

HEADER = struct.Struct("<6I")


class WireError(Exception):
    """The peer sent bytes that are not an ADB message; the connection must be closed.
    `header` holds the bytes that were not a header, to tell what answered instead."""

    def __init__(self, message: str, header: bytes = b"") -> None:
        super().__init__(message)
        self.header = header


# What other servers say first, by their first bytes: what answered a TCP port that is
# not a phone's, in words (RFC 9112's status line, RFC 4253's identification string, a TLS
# record header of RFC 8446: an alert or a handshake).
_STRANGERS = ((b"HTTP/", "an HTTP server"), (b"SSH-", "an SSH server"), (b"\x15\x03", "a TLS server"),
              (b"\x16\x03", "a TLS server"))


def what_answered(header: bytes) -> str:
    """`an HTTP server`, ...: who sent `header` instead of an ADB message, in words."""
    return next((who for start, who in _STRANGERS if header.startswith(start)), "something that does not speak ADB")


@dataclass(frozen=True)
class Message:
    """One transport message: the header's fields and its payload."""

    command: int
    arg0: int
    arg1: int
    data: bytes = b""

    @property
    def name(self) -> str:
        return COMMAND_NAMES.get(self.command, f"0x{self.command:08x}")


def payload_checksum(data: bytes) -> int:
    """The legacy `data_check` field: the byte sum of the payload."""
    return sum(data) & 0xFFFFFFFF


def pack_header(command: int, arg0: int, arg1: int, data: bytes = b"", *, version: int = A_VERSION_MIN) -> bytes:
    """The 24-byte header for a message carrying `data` on a connection at protocol
    `version`. As adb's send_packet: the checksum is filled in below
    A_VERSION_SKIP_CHECKSUM (and so before CNXN settled the version), 0 from it on,
    where summing every payload byte would only cost time."""
    check = payload_checksum(data) if version < A_VERSION_SKIP_CHECKSUM else 0
    return HEADER.pack(command, arg0, arg1, len(data), check, command ^ 0xFFFFFFFF)


def pack_message(command: int, arg0: int, arg1: int, data: bytes = b"", *, version: int = A_VERSION_MIN) -> bytes:
    """Header plus payload, ready to write."""
    return pack_header(command, arg0, arg1, data, version=version) + data


def unpack_header(header: bytes) -> tuple[int, int, int, int, int]:
    """(command, arg0, arg1, data_length, data_check); raises WireError on a bad magic."""
    command, arg0, arg1, length, check, magic = HEADER.unpack(header)
    if magic != command ^ 0xFFFFFFFF or command not in COMMAND_NAMES:
        raise WireError(f"not an ADB message header: {header.hex()}", header)
    return command, arg0, arg1, length, check


# --- the sync: service -------------------------------------------------------

SYNC_DATA_MAX = 64 * 1024
SYNC_PATH_MAX = 1024

ID_LSTAT_V1 = b"STAT"
ID_STAT_V2 = b"STA2"
ID_LSTAT_V2 = b"LST2"
ID_LIST_V1 = b"LIST"
ID_LIST_V2 = b"LIS2"
ID_DENT_V1 = b"DENT"
ID_DENT_V2 = b"DNT2"
ID_SEND_V1 = b"SEND"
ID_SEND_V2 = b"SND2"
ID_RECV_V1 = b"RECV"
ID_RECV_V2 = b"RCV2"
ID_DONE = b"DONE"
ID_DATA = b"DATA"
ID_OKAY = b"OKAY"
ID_FAIL = b"FAIL"
ID_QUIT = b"QUIT"

# Request and `sync_data` / `sync_status` share one shape: id, then a uint32.
SYNC_REQUEST = struct.Struct("<4sI")
SYNC_STAT_V1 = struct.Struct("<4sIII")  # id, mode, size, mtime
# id, error, dev, ino, mode, nlink, uid, gid, size, atime, mtime, ctime
SYNC_STAT_V2 = struct.Struct("<4sIQQIIIIQqqq")
SYNC_DENT_V1 = struct.Struct("<4sIIII")  # id, mode, size, mtime, namelen
# as STAT_V2, then namelen
SYNC_DENT_V2 = struct.Struct("<4sIQQIIIIQqqqI")
SYNC_RECV_V2 = struct.Struct("<4sI")  # id, flags
SYNC_SEND_V2 = struct.Struct("<4sII")  # id, mode, flags
SYNC_FLAG_DRY_RUN = 0x80000000  # SND2: check the path, write nothing

# --- shell protocol v2 --------------------------------------------------------

SHELL_STDIN = 0
SHELL_STDOUT = 1
SHELL_STDERR = 2
SHELL_EXIT = 3
SHELL_CLOSE_STDIN = 4
SHELL_WINDOW_SIZE_CHANGE = 5
SHELL_HEADER = struct.Struct("<BI")  # id, length

# --- feature names advertised in the CNXN banner (transport.cpp) ---------------

FEATURE_SHELL_V2 = "shell_v2"
FEATURE_CMD = "cmd"
FEATURE_STAT_V2 = "stat_v2"
FEATURE_LS_V2 = "ls_v2"
FEATURE_SENDRECV_V2 = "sendrecv_v2"
FEATURE_DELAYED_ACK = "delayed_ack"

# errno values on the wire (sysdeps/errno.cpp): Linux's numbering, fixed by the protocol.
WIRE_ENOENT = 2
WIRE_EACCES = 13
WIRE_ENOTDIR = 20
WIRE_ELOOP = 40
WIRE_ENAMETOOLONG = 36


def parse_banner(banner: bytes) -> tuple[str, dict[str, str]]:
    """Split a CNXN identity string `systemtype:serial:k=v;k=v;...` into its kind and properties.

    The device side looks like `device::ro.product.name=x;ro.product.model=y;features=a,b`.
    """
    text = banner.rstrip(b"\0").decode("utf-8", "replace")
    kind, _, rest = text.partition(":")
    _serial, _, props_text = rest.partition(":")
    props: dict[str, str] = {}
    for item in props_text.split(";"):
        key, sep, value = item.partition("=")
        if sep:
            props[key] = value
    return kind, props
