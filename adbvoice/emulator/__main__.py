"""`python -m adbvoice.emulator PHONE_DIR --port PORT`: run an emulated phone until killed."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import NoReturn

from adbvoice.emulator.auth import MODES, AuthPolicy
from adbvoice.emulator.link import LinkProfile
from adbvoice.emulator.phone import EmulatedPhone
from adbvoice.emulator.sandbox import SandboxError

PROG = "python -m adbvoice.emulator"
EXIT_ERROR = 1
EXIT_USAGE = 2

EPILOG = """\
auth modes:
  none     no authentication (CNXN at once)
  any      AUTH token; the first signature is accepted whatever the key
  keys     signatures must verify against --auth-key files (adbkey.pub format)
  refuse   every key is refused; an offered public key closes the connection
  pending  as keys, but an offered key is accepted --pending-seconds after the
           first offer (the user taps "Allow" then)

exit codes:
  0  stopped by SIGTERM or SIGINT
  1  cannot start: PHONE_DIR missing or not a folder, port in use, unreadable
     or invalid key file, shell requested but not runnable
  2  usage error (unknown option, bad value)

It prints "listening on HOST:PORT" on stdout once it accepts connections, and
with a pairing dialog "pairing on HOST:PORT as GUID" once that port is open.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line on stderr, not argparse's usage block."""
        sys.stderr.write(f"{PROG}: error: {message}\n")
        sys.exit(EXIT_USAGE)


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Serve PHONE_DIR as the shared storage (/sdcard) of an emulated "
        "Android phone that speaks ADB over TCP, as `adb connect` and adb-shell expect.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("phone_dir", metavar="PHONE_DIR", type=Path)
    parser.add_argument("--port", type=_port, required=True, help="TCP port; 0 picks a free one")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--auth", choices=MODES, default="none", help="authentication (default none)")
    parser.add_argument("--auth-key", action="append", default=[], metavar="FILE", type=Path,
                        help="adb public key file (adbkey.pub) trusted by keys/pending; repeatable")
    parser.add_argument("--pending-seconds", type=_non_negative, default=0.0, metavar="N",
                        help="pending mode: seconds until an offered key is allowed")
    parser.add_argument("--rtt-ms", type=_non_negative, default=0.0, metavar="X",
                        help="link round-trip time in milliseconds")
    parser.add_argument("--bandwidth-mbps", type=_non_negative, default=None, metavar="Y",
                        help="link bandwidth in megaBYTES (10^6 bytes) per second, each way; "
                        "35 is USB-2-like, 6 Wi-Fi-like (default unlimited)")
    parser.add_argument("--no-shell", action="store_true",
                        help="no shell: shell/exec services answer with an error (sync still works)")
    parser.add_argument("--tls", action="store_true",
                        help="a Wireless-debugging port: TLS only, for keys the phone trusts "
                        "(--auth keys: the --auth-key files and the keys in --state-dir)")
    parser.add_argument("--announce", action="store_true",
                        help="with --tls: announce the port by mDNS as _adb-tls-connect._tcp, named by the GUID")
    parser.add_argument("--serial", default="EMU0001", help="ro.serialno (default EMU0001)")
    parser.add_argument("--model", default="Pixel 7", help='ro.product.model (default "Pixel 7")')
    parser.add_argument("--state-dir", type=Path, default=None, metavar="DIR",
                        help="what the phone keeps across restarts: trusted keys, its Wireless-debugging "
                        "GUID, /data/local/tmp (default: a temporary folder)")
    pairing = parser.add_mutually_exclusive_group()
    pairing.add_argument("--pairing-code", metavar="CODE",
                         help="open Wireless debugging's pairing dialog with this code")
    pairing.add_argument("--pairing-qr", nargs=2, metavar=("NAME", "PASSWORD"),
                         help="as after scanning the QR code WIFI:T:ADB;S:NAME;P:PASSWORD;; announce "
                         "the pairing service NAME by mDNS and pair with PASSWORD")
    parser.add_argument("--pairing-port", type=_port, default=0, metavar="PORT",
                        help="the pairing dialog's port (default: a free one)")
    return parser


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.exit(EXIT_ERROR)


def _read_keys(files: list[Path]) -> tuple[str, ...]:
    keys: list[str] = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            _fail(f"cannot read key file {file}: {getattr(e, 'strerror', None) or e}")
        keys.extend(line for line in text.splitlines() if line.strip())
    return tuple(keys)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.bandwidth_mbps == 0:
        build_parser().error("--bandwidth-mbps must be > 0")
    try:
        auth = AuthPolicy(mode=args.auth, keys=_read_keys(args.auth_key),
                          pending_seconds=args.pending_seconds)
    except ValueError as e:
        _fail(f"bad --auth-key: {e}")
    link = LinkProfile(
        rtt_s=args.rtt_ms / 1000,
        bandwidth_Bps=args.bandwidth_mbps * 1e6 if args.bandwidth_mbps is not None else None,
    )
    try:
        phone = EmulatedPhone(args.phone_dir, host=args.host, port=args.port, serial=args.serial,
                              model=args.model, auth=auth, link=link,
                              shell=False if args.no_shell else None, tls=args.tls,
                              announce=args.announce, state_dir=args.state_dir)
        phone.start()
    except (FileNotFoundError, NotADirectoryError, SandboxError) as e:
        _fail(str(e))
    except OSError as e:
        _fail(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}")

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    print(f"listening on {phone.address}", flush=True)
    dialog = None
    if args.pairing_code is not None or args.pairing_qr is not None:
        secret = args.pairing_code if args.pairing_qr is None else args.pairing_qr[1]
        service = None if args.pairing_qr is None else args.pairing_qr[0]
        try:
            dialog = phone.open_pairing(secret, service=service, port=args.pairing_port)
        except OSError as e:
            phone.stop()
            _fail(f"cannot open the pairing dialog: {e.strerror or e}")
        print(f"pairing on {dialog.address} as {phone.guid}", flush=True)
    while not stopping.wait(3600):
        pass
    if dialog is not None:
        dialog.close()
    phone.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
