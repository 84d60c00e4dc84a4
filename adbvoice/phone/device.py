"""A connected phone: streams to its services, and the few operations a backup needs from
it (who it is, what it holds, the files, their hashes)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from adbvoice.display import capped
from adbvoice.phone import scripts, wire
from adbvoice.phone.connection import Deadline, ServiceRefused
from adbvoice.phone.shell import CommandResult, RunningCommand, ShellClient
from adbvoice.phone.sync import PullSink, PushItem, PushSink, RemoteEntry, RemoteStat, StreamOpener, SyncClient


@dataclass(frozen=True)
class PhoneIdentity:
    serial: str
    model: str
    android: str | None
    transport: str  # how we reached it: "usb", "tcp 10.0.0.5:5555", "adb server"

    @property
    def label(self) -> str:
        return f"{self.model} ({self.serial})"


@dataclass(frozen=True)
class Survey:
    """What is on the phone under the source roots, and who the phone is."""

    identity: PhoneIdentity
    roots: dict[bytes, RemoteStat]
    entries: list[RemoteEntry]
    listed_by: str  # "shell" or "sync"
    problems: tuple[str, ...] = ()  # what the phone's shell said on stderr (unreadable folders...)
    fingerprint: str | None = None  # SHA-256 of the shell listing (scripts.fingerprint_script)
    unchanged: bool = False  # the fingerprint was the known one: `entries` was not fetched


class Phone:
    """A connected phone: streams to its services and the operations a backup needs."""

    def __init__(
        self,
        opener: StreamOpener,
        features: frozenset[str],
        fallback_identity: PhoneIdentity,
        closer: Callable[[], None],
        deadline: Deadline,
    ) -> None:
        self._opener = opener
        self._closer = closer
        self.deadline = deadline  # what the request under way must finish by (set by the flow)
        self.features = features
        self._fallback_identity = fallback_identity
        self.shell = ShellClient(opener, shell_v2=wire.FEATURE_SHELL_V2 in features)
        self.sync = SyncClient(
            opener,
            stat_v2=wire.FEATURE_STAT_V2 in features,
            ls_v2=wire.FEATURE_LS_V2 in features,
            send_v2=wire.FEATURE_SENDRECV_V2 in features,
        )

    def survey(self, roots: Sequence[str], known: Mapping[str, str] | None = None) -> Survey:
        """Who the phone is and everything below `roots`: one shell command where the phone
        has a shell (one round trip however many notes), else sync LIST level by level.

        `known` maps serials to the fingerprint of the listing their last complete backup
        worked from; when the phone's matches, the listing itself is not fetched."""
        try:
            if known:
                answer = self.shell.run(scripts.fingerprint_script(roots), raw=True)
                props, root_stats, fingerprint = scripts.parse_fingerprint(answer.stdout, roots)
                identity = self._identity(props)
                if known.get(identity.serial) == fingerprint:
                    return Survey(identity, root_stats, [], "shell", (), fingerprint, unchanged=True)
                result = self.shell.run(scripts.listing_script(roots), limit=scripts.LISTING_MAX)
                listing = result.stdout
            else:
                result = self.shell.run(
                    scripts.identity_script() + "; " + scripts.listing_script(roots), limit=scripts.LISTING_MAX
                )
                props, listing = scripts.split_identity(result.stdout)
                identity = self._identity(props)
            root_stats, entries = scripts.parse_listing(listing, roots)
            fingerprint = scripts.listing_fingerprint(listing)
            return Survey(identity, root_stats, entries, "shell", _said(result), fingerprint)
        except (ServiceRefused, scripts.UnexpectedOutput):
            root_stats, entries = self.sync.walk([r.encode() for r in roots])
            return Survey(self._fallback_identity, root_stats, entries, "sync")

    def _identity(self, props: dict[str, str]) -> PhoneIdentity:
        fallback = self._fallback_identity
        android = props.get("ro.build.version.release") or fallback.android
        return PhoneIdentity(  # what the phone says of itself is kept in the catalog: capped
            serial=capped(props.get("ro.serialno") or fallback.serial),
            model=capped(props.get("ro.product.model") or fallback.model),
            android=capped(android) if android else None,
            transport=fallback.transport,
        )

    def start_hashing(self, paths: Sequence[bytes]) -> scripts.PhoneHashes | None:
        """Have the phone SHA-1 the files we are about to pull, on a stream of its own that
        runs alongside the copy; None where the phone cannot (no shell_v2)."""
        if not paths or not self.shell.shell_v2:
            return None
        try:
            command = self.shell.start(scripts.HASH_COMMAND, stdin=scripts.hash_stdin(paths), background=True,
                                       limit=scripts.hash_output_max(paths, scripts.SHA1_HEX))
        except ServiceRefused:
            return None
        return scripts.PhoneHashes(command, paths)

    def prune_hash_tool(self) -> str | None:
        """The best hash command the phone has for a prune (scripts.PRUNE_HASHES), or None
        (no shell, or neither command): then nothing can be proven, and nothing is deleted."""
        if not self.shell.shell_v2:
            return None
        try:
            tool = self.shell.run(scripts.hash_tool_script()).stdout.decode("ascii", "replace")
        except ServiceRefused:
            return None
        return tool if tool in scripts.PRUNE_HASHES else None

    def hash_files(self, paths: Sequence[bytes], tool: str) -> scripts.PhoneHashes:
        """The phone's own `tool` digest of each file, on a stream of its own."""
        command = self.shell.start(scripts.hash_command(tool), stdin=scripts.hash_stdin(paths),
                                   limit=scripts.hash_output_max(paths, scripts.PRUNE_HASHES[tool]))
        return scripts.PhoneHashes(command, paths, scripts.PRUNE_HASHES[tool])

    def start_deleting(self, pairs: Sequence[tuple[bytes, str]], tool: str) -> RunningCommand:
        """Run the delete script (scripts.DELETE_SCRIPT) over (path, digest) pairs; its
        output (scripts.delete_outcomes) says what became of each, in order."""
        return self.shell.start(scripts.delete_script(tool), stdin=scripts.delete_stdin(pairs),
                                limit=scripts.delete_output_max(pairs))

    def find_name(
        self, roots: Sequence[str], name: str, timeout_s: int, skip: Sequence[str] = ()
    ) -> list[bytes] | None:
        """Paths below `roots` (not below `skip`) of files called `name` (links not
        followed), or None when the phone's find did not finish within `timeout_s`."""
        result = self.shell.run(scripts.find_name_script(roots, name, timeout_s, skip))
        return scripts.parse_found(result.stdout, result.exit_code)

    def stat_many(self, paths: Sequence[bytes]) -> list[RemoteStat]:
        return self.sync.stat_many(paths)

    def pull_many(self, paths: Sequence[bytes], sink: PullSink) -> None:
        self.sync.pull_many(paths, sink)

    def push_many(self, items: Sequence[PushItem], sink: PushSink) -> None:
        self.sync.push_many(items, sink)

    def start_finishing(self, pairs: Sequence[tuple[bytes, bytes]]) -> RunningCommand:
        """Give each pushed (temp, final) its final name where none stands
        (scripts.FINISH_SCRIPT), on a stream of its own; scripts.finish_outcomes reads
        its output: one letter per pair."""
        return self.shell.start(scripts.FINISH_SCRIPT, stdin=scripts.finish_stdin(pairs))

    def sweep(self, paths: Sequence[bytes]) -> None:
        """Remove these regular files (links and folders stay): temp files of a cut-off push."""
        if paths:
            self.shell.run(scripts.SWEEP_SCRIPT, stdin=scripts.hash_stdin(paths) + b"\0")

    def run_text(self, command: str) -> bytes:
        """stdout of one shell command (what `am` and `content` print)."""
        return self.shell.run(command).stdout

    def close(self) -> None:
        self._closer()


def _said(result: CommandResult) -> tuple[str, ...]:
    return tuple(result.stderr.decode("utf-8", "replace").splitlines())
