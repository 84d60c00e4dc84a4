"""EmulatedPhone: an Android phone's adbd over TCP, serving a folder as its shared storage."""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import socket
import tempfile
import threading
import weakref
from collections import Counter
from pathlib import Path
from types import TracebackType

from adbvoice.emulator import compression
from adbvoice.emulator.auth import AuthPolicy, Gatekeeper
from adbvoice.emulator.faults import Faults, FaultState
from adbvoice.emulator.link import LinkProfile
from adbvoice.emulator.log import PacketLog
from adbvoice.emulator.mdns import Announcement
from adbvoice.emulator.pairing import PairingDialog, new_code
from adbvoice.emulator.sandbox import Sandbox, SandboxError
from adbvoice.emulator.server import Connection, PhoneParts
from adbvoice.emulator.standins import Standins
from adbvoice.emulator.storage import PhoneStorage
from adbvoice.emulator.tls import device_context
from adbvoice.phone import wire

logger = logging.getLogger(__name__)

# Only what this phone implements (transport.cpp lists adbd's full set).
FEATURES = (
    wire.FEATURE_SHELL_V2,
    wire.FEATURE_STAT_V2,
    wire.FEATURE_LS_V2,
    wire.FEATURE_SENDRECV_V2,
    "sendrecv_v2_dry_run_send",  # SND2's dry-run flag (sync.py), what `adb push -n` asks for
    "abb",
    "abb_exec",
    *compression.features(),  # those whose library is installed
)
_STOP_TIMEOUT_S = 5.0
# What adbd announces its TLS port as (adb's adb_mdns.h, ADB_SERVICE_TLS).
CONNECT_SERVICE = "_adb-tls-connect._tcp"


class EmulatedPhone:
    """The device side of ADB over TCP, faithful to AOSP's adbd.

    `with EmulatedPhone(folder) as phone:` listens on `phone.address`; Google's adb
    (`adb connect`) and adb-shell talk to it as to a phone whose /sdcard is `folder`.
    With `tls=True` the port is a Wireless-debugging one: TLS only, for trusted keys; with
    `announce=True` too, it is announced by mDNS as adbd does (`_adb-tls-connect._tcp`,
    named by the phone's GUID) while the phone listens.
    The fault state, the trusted keys and the packet log live as long as the object,
    across stop() and start() (which rebinds the same port: a phone that leaves and
    comes back).
    """

    def __init__(
        self,
        root: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        serial: str = "EMU0001",
        model: str = "Pixel 7",
        product: str = "panther",
        device: str = "panther",
        android_release: str = "14",
        sdk: int = 34,
        auth: AuthPolicy = AuthPolicy(mode="none"),
        shell: bool | None = None,
        faults: Faults = Faults(),
        link: LinkProfile = LinkProfile(),
        state_dir: Path | None = None,
        tls: bool = False,
        announce: bool = False,
    ) -> None:
        root = Path(root)
        if not root.exists():
            raise FileNotFoundError(f"phone folder does not exist: {root}")
        if not root.is_dir():
            raise NotADirectoryError(f"phone folder is not a folder: {root}")
        self.root = root
        self.host = host
        self._port = port
        self.serial = serial
        self.model = model
        self.product = product
        self.device = device
        self.android_release = android_release
        self.sdk = sdk
        self.auth = auth
        self.faults = faults
        self.link = link
        self._want_shell = shell
        self.log = PacketLog()
        self.protocol_violations: list[str] = []
        self.connections_accepted = 0
        self.shell_available = False
        self._faults = FaultState(faults)
        self.state_dir = self._own_state_dir(state_dir)
        # /data/misc/adb/adb_keys: a key once allowed (or paired) stays trusted across restarts.
        self._gatekeeper = Gatekeeper(auth, self.state_dir / "data" / "misc" / "adb" / "adb_keys")
        self.tls = tls
        self.announce = announce
        self._announcement: Announcement | None = None
        self._storage = PhoneStorage(root, self.state_dir / "data")
        self.standins = Standins(self.state_dir / "data" / "standins")  # am, content, the media scanner
        self._lock = threading.Lock()
        self._connections: set[Connection] = set()
        self._all_connections: list[Connection] = []
        self._next_stream_id = 1
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._sandbox: Sandbox | None = None

    # -- identity -------------------------------------------------------------------------

    @property
    def banner(self) -> bytes:
        """The CNXN identity string (adb.cpp, get_connection_string)."""
        props = ";".join(
            [
                f"ro.product.name={self.product}",
                f"ro.product.model={self.model}",
                f"ro.product.device={self.device}",
                f"features={','.join(FEATURES)}",
            ]
        )
        return f"device::{props}".encode()

    @property
    def properties(self) -> dict[str, str]:
        """What `getprop` prints in the phone's shell."""
        return {
            "ro.serialno": self.serial,
            "ro.product.model": self.model,
            "ro.product.name": self.product,
            "ro.product.device": self.device,
            "ro.build.version.release": self.android_release,
            "ro.build.version.sdk": str(self.sdk),
            # A production ("user") build: adbd cannot run as root (adb root says so).
            "ro.build.type": "user",
            "ro.debuggable": "0",
            # init's record of its services (init/service.cpp, NotifyStateChange).
            "init.svc.adbd": "running",
        }

    @property
    def guid(self) -> str:
        """The Wireless-debugging GUID (persist.adb.wifi.guid): "adb-SERIAL-xxxxxx", made
        once and kept in the state folder, as adbd keeps it across reboots."""
        path = self.state_dir / "data" / "misc" / "adb" / "wifi_guid"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"adb-{self.serial}-{secrets.token_urlsafe(4)[:6]}")
        return path.read_text()

    def open_pairing(self, secret: str | None = None, *, service: str | None = None, port: int = 0,
                     answer_first: bool = False) -> PairingDialog:
        """Open Wireless debugging's pairing dialog: with a code (a new one if None), or,
        given the QR code's `service` name, with its password as `secret`. Close it to
        close its port."""
        if service is not None and secret is None:
            raise ValueError("a QR code always carries a password")
        return PairingDialog(self.guid, secret if secret is not None else new_code(),
                             self._gatekeeper.allow, host=self.host, port=port, service=service,
                             answer_first=answer_first)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> EmulatedPhone:
        """Listen (on the same port as before after a stop). Raises OSError if the port is
        taken, SandboxError if shell=True and the shell cannot run."""
        if self._listener is not None:
            return self
        if self._want_shell is not False:
            sandbox = Sandbox(self.root, self.state_dir / "data" / "local" / "tmp", self.properties, self.device,
                              standins=self.standins.folder)
            try:
                sandbox.start()
                self._sandbox = sandbox
            except SandboxError:
                if self._want_shell:
                    raise
                logger.warning("no shell on this emulated phone", exc_info=True)
        self.shell_available = self._sandbox is not None
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, self._port))
            listener.listen(16)
        except OSError:
            listener.close()
            self._close_sandbox()
            raise
        self._port = listener.getsockname()[1]
        self._listener = listener
        self._accept_thread = threading.Thread(
            target=self._accept_loop, args=(listener,), name="adbd-accept", daemon=True
        )
        self._accept_thread.start()
        if self.tls and self.announce:
            self._announcement = Announcement(CONNECT_SERVICE, self.guid, self._port, self.host)
        return self

    def stop(self) -> None:
        """Close the listener, every connection and every command; wait for the threads."""
        if self._announcement is not None:
            self._announcement.close()  # Wireless debugging off: the service says goodbye
            self._announcement = None
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):  # not connected: nothing to shut down
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        if self._accept_thread is not None:
            self._accept_thread.join(_STOP_TIMEOUT_S)
            self._accept_thread = None
        self.disconnect_all()
        self._close_sandbox()
        with self._lock:
            connections, self._all_connections = self._all_connections, []
        for conn in connections:
            conn.join(_STOP_TIMEOUT_S)

    def __enter__(self) -> EmulatedPhone:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def disconnect_all(self) -> None:
        """Drop every live TCP connection now (the phone is unplugged); keep listening."""
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            conn.close()

    # -- what tests look at -----------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> str:
        return f"{self.host}:{self._port}"

    @property
    def connections_open(self) -> int:
        """TCP connections live right now."""
        with self._lock:
            return len(self._connections)

    @property
    def file_bytes_sent(self) -> int:
        """RECV payload bytes served so far, over the phone's life."""
        return self._faults.file_bytes_sent

    @property
    def file_bytes_received(self) -> int:
        """SEND payload bytes received so far, over the phone's life."""
        return self._faults.file_bytes_received

    @property
    def faults_fired(self) -> Counter[str]:
        """How often each fault fired: "drop", "stall", "fail_path", "grow", "corrupt",
        "lie_size", "read_only", "drop_push"."""
        return Counter(self._faults.fired)

    @property
    def trusted_keys(self) -> set[str]:
        """adb public keys accepted so far (listed keys that signed, keys allowed, keys
        paired: those are kept in the state folder's data/misc/adb/adb_keys)."""
        return self._gatekeeper.trusted_keys

    def trust_key(self, key_text: str) -> None:
        """Trust an adb public key (an adbkey.pub line) as pairing does, across restarts."""
        self._gatekeeper.allow(key_text)

    # -- internals ----------------------------------------------------------------------------

    def _own_state_dir(self, given: Path | None) -> Path:
        """What the phone keeps besides /sdcard: /data/local/tmp (and, given a folder, what
        must survive the emulator's restarts). Without one, a folder of its own, removed
        with the object."""
        if given is None:
            given = Path(tempfile.mkdtemp(prefix="adbvoice-phone-state-"))
            weakref.finalize(self, shutil.rmtree, given, True)
        tmp = given / "data" / "local" / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        tmp.chmod(0o771)  # drwxrwx--x shell shell, as on a phone
        return given

    def _close_sandbox(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None
        self.shell_available = False

    def _accept_loop(self, listener: socket.socket) -> None:
        parts = PhoneParts(
            banner=self.banner,
            log=self.log,
            storage=self._storage,
            faults=self._faults,
            gatekeeper=self._gatekeeper,
            link=self.link,
            tls=device_context(self._gatekeeper.trusts_tls_key) if self.tls else None,
            sandbox=self._sandbox,
            next_stream_id=self._new_stream_id,
            violation=self._violation,
            closed=self._connection_closed,
        )
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            # adbd's TCP transport disables Nagle (transport_socket_server.cpp).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._listener is not listener:
                    sock.close()
                    return
                self.connections_accepted += 1
                conn = Connection(parts, sock, self.connections_accepted)
                self._connections.add(conn)
                self._all_connections = [c for c in self._all_connections if not c.finished] + [conn]
            conn.start()

    def _new_stream_id(self) -> int:
        with self._lock:
            stream_id = self._next_stream_id
            self._next_stream_id += 1
            return stream_id

    def _violation(self, text: str) -> None:
        with self._lock:
            self.protocol_violations.append(text)

    def _connection_closed(self, conn: Connection) -> None:
        with self._lock:
            self._connections.discard(conn)
