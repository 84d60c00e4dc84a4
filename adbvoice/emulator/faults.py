"""Things that go wrong with real phones, on demand, each counted when it fires.

A fault test must prove its fault happened (DESIGN.md, "Fault tests prove their fault
fired"), so every knob here bumps `EmulatedPhone.faults_fired[name]`.
"""

from __future__ import annotations

import fnmatch
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace

from adbvoice.emulator.storage import FileStat

DROP = "drop"
STALL = "stall"
FAIL_PATH = "fail_path"
GROW = "grow"
LIE_SIZE = "lie_size"
CORRUPT = "corrupt"
READ_ONLY = "read_only"
DROP_PUSH = "drop_push"


@dataclass(frozen=True)
class Faults:
    """What to break.

    drop_after_bytes: once this many RECV payload bytes were served (over the phone's
        life), the TCP connection is closed mid-file. Fires once.
    stall_after_bytes: once this many RECV payload bytes were served, that connection
        goes silent (open, input read and ignored) until the client closes it. Fires once.
    fail_paths: fnmatch pattern on the requested phone path; RECV answers adbd's FAIL for
        a permission error and the sync service ends. Fires every time.
    grow_paths: fnmatch pattern; while such a file is being sent, after its first chunk,
        `grow_bytes` are appended to it on disk and its mtime moves on by >= 1 s, as for a
        voice note still being recorded. Fires `grow_times` times per file.
    lie_size_paths: fnmatch pattern; LIST and STAT answers claim such a file holds
        `lie_size` bytes (a phone whose storage reports nonsense), while RECV still sends
        its real bytes. Fires for every answer that lies.
    corrupt_paths: fnmatch pattern; RECV sends such a file with one byte of its first
        chunk flipped (bad memory or a bad cable: the file on the phone is intact, and the
        phone's own hash of it is right). Fires `corrupt_times` times per file.
    read_only_paths: fnmatch pattern; a push (SEND) to such a path fails as on a read-only
        filesystem ("couldn't create file: Read-only file system"). Fires every time.
    drop_push_after_bytes: once this many SEND payload bytes were received (over the
        phone's life), the TCP connection is closed mid-file. Fires once.
    """

    drop_after_bytes: int | None = None
    stall_after_bytes: int | None = None
    fail_paths: str | None = None
    grow_paths: str | None = None
    grow_bytes: int = 4096
    grow_times: int = 1
    lie_size_paths: str | None = None
    lie_size: int = 2**62
    corrupt_paths: str | None = None
    corrupt_times: int = 1
    read_only_paths: str | None = None
    drop_push_after_bytes: int | None = None

    def __post_init__(self) -> None:
        for name in ("drop_after_bytes", "stall_after_bytes", "drop_push_after_bytes"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.grow_bytes < 1 or self.grow_times < 0 or self.corrupt_times < 0:
            raise ValueError("grow_bytes must be >= 1, grow_times and corrupt_times >= 0")
        if not 0 <= self.lie_size < 2**64:
            raise ValueError("lie_size must fit the sync protocol's 64-bit size")


class FaultState:
    """The phone-wide bookkeeping behind Faults: bytes served, what fired, how often."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._lock = threading.Lock()
        self.fired: Counter[str] = Counter()
        self.file_bytes_sent = 0
        self.file_bytes_received = 0
        self._grown: Counter[bytes] = Counter()
        self._corrupted: Counter[str] = Counter()

    def fails(self, phone_path: str) -> bool:
        """Whether a RECV of this path must fail; counts each time it does."""
        pattern = self.faults.fail_paths
        if pattern is None or not fnmatch.fnmatchcase(phone_path, pattern):
            return False
        with self._lock:
            self.fired[FAIL_PATH] += 1
        return True

    def read_only(self, phone_path: str) -> bool:
        """Whether a push to this path must fail as on a read-only filesystem."""
        pattern = self.faults.read_only_paths
        if pattern is None or not fnmatch.fnmatchcase(phone_path, pattern):
            return False
        with self._lock:
            self.fired[READ_ONLY] += 1
        return True

    def pushed(self, nbytes: int) -> str | None:
        """Account for pushed bytes just received; "drop" when the connection must break."""
        with self._lock:
            self.file_bytes_received += nbytes
            limit = self.faults.drop_push_after_bytes
            if limit is not None and not self.fired[DROP_PUSH] and self.file_bytes_received >= limit:
                self.fired[DROP_PUSH] += 1
                return DROP
            return None

    def claimed(self, phone_path: str, st: FileStat) -> FileStat:
        """The stat to answer with: `st`, or `st` with a lying size for a matching path."""
        pattern = self.faults.lie_size_paths
        if pattern is None or not fnmatch.fnmatchcase(phone_path, pattern):
            return st
        with self._lock:
            self.fired[LIE_SIZE] += 1
        return replace(st, size=self.faults.lie_size)

    def garble(self, phone_path: str, chunk: bytes) -> bytes:
        """`chunk` (a file's first), with its middle byte flipped for a matching path, at
        most `corrupt_times` times per file."""
        pattern = self.faults.corrupt_paths
        if not chunk or pattern is None or not fnmatch.fnmatchcase(phone_path, pattern):
            return chunk
        with self._lock:
            if self._corrupted[phone_path] >= self.faults.corrupt_times:
                return chunk
            self._corrupted[phone_path] += 1
            self.fired[CORRUPT] += 1
        middle = len(chunk) // 2
        return chunk[:middle] + bytes([chunk[middle] ^ 0xFF]) + chunk[middle + 1 :]

    def admit(self, nbytes: int) -> tuple[int, str | None]:
        """Account for a chunk of file data about to be served.

        Returns how many of its bytes may go out, and "drop" or "stall" when the
        connection must break right after them.
        """
        with self._lock:
            sent = self.file_bytes_sent
            for name, limit in (
                (DROP, self.faults.drop_after_bytes),
                (STALL, self.faults.stall_after_bytes),
            ):
                if limit is not None and not self.fired[name] and sent + nbytes >= limit:
                    self.fired[name] += 1
                    allowed = max(0, limit - sent)
                    self.file_bytes_sent += allowed
                    return allowed, name
            self.file_bytes_sent += nbytes
            return nbytes, None

    def maybe_grow(self, phone_path: str, real_path: bytes) -> None:
        """Append to a matching file being sent, at most `grow_times` times per file."""
        pattern = self.faults.grow_paths
        if pattern is None or not fnmatch.fnmatchcase(phone_path, pattern):
            return
        with self._lock:
            if self._grown[real_path] >= self.faults.grow_times:
                return
            self._grown[real_path] += 1
            self.fired[GROW] += 1
        before = os.stat(real_path)
        with open(real_path, "ab") as f:
            f.write(b"\0" * self.faults.grow_bytes)
        # A note still being recorded: mtime is "now", and at least 1 s later than before
        # so that a size-and-mtime check cannot miss the change on a 1 s clock.
        mtime_ns = max(before.st_mtime_ns + 1_000_000_000, time.time_ns())
        os.utime(real_path, ns=(before.st_atime_ns, mtime_ns))
