"""`pair`, `phones`, `forget`: Wireless debugging's one-time pairing and the phones remembered."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer

from adbvoice import errors
from adbvoice.commands.common import JsonOpt, VerboseOpt, call, fail
from adbvoice.display import printable
from adbvoice.unattended.phones import KnownPhone
from adbvoice.unattended.settings import resolve

app = typer.Typer()

NameOpt = Annotated[Optional[str], typer.Option(metavar="NAME", help="What to call the phone "
                                                "(default: its Wireless-debugging GUID).")]


def _adb_key() -> Path:
    return resolve({})["adb_key"]


def _said(phone: KnownPhone) -> str:
    details = ", ".join(x for x in (phone.model, phone.serial) if x)
    return f"{printable(phone.name)}" + (f" ({printable(details)})" if details else "")


@app.command()
def pair(
    address: Annotated[Optional[str], typer.Argument(metavar="[HOST:PORT]", show_default=False,
                       help="The address the phone shows under Pair device with pairing code. "
                       "Without it: a QR code to scan.")] = None,
    code: Annotated[Optional[str], typer.Argument(metavar="[CODE]", show_default=False,
                    help="The 6-digit code (asked for, without echo, when not given).")] = None,
    name: NameOpt = None,
    timeout: Annotated[float, typer.Option(metavar="SECONDS", min=0.1,
                       help="How long to wait for the phone to scan the QR code.")] = 120.0,
    verbose: VerboseOpt = False,
) -> None:
    """Pair with a phone's Wireless debugging (Android 11+), once: by QR code, or with
    HOST:PORT and the code the phone shows. The phone then trusts this computer's adb key.

    Example: adbvoice pair 192.168.1.20:37125
    """
    import segno

    from adbvoice.phone.pairing import check_code, new_invitation, parse_pairing_address
    from adbvoice.unattended.pairing import pair_by_code, pair_by_qr
    from adbvoice.unattended.phones import default_state_dir

    key = call(verbose, _adb_key)
    state = default_state_dir()
    if address is None:
        invitation = new_invitation()
        print("On the phone: Settings › Developer options › Wireless debugging › Pair device with QR code, "
              "and scan:", file=sys.stderr)
        segno.make(invitation.text, error="l").terminal(out=sys.stdout, compact=True)
        print(f"(the QR code says: {invitation.text})", flush=True)
        print(f"Waiting up to {timeout:g} s for the phone…", file=sys.stderr, flush=True)
        try:
            phone = call(verbose, lambda: pair_by_qr(state, invitation, key, timeout, name))
        except KeyboardInterrupt:
            raise typer.Exit(errors.EXIT_INTERRUPTED) from None
    else:
        host, port = call(verbose, lambda: parse_pairing_address(address))
        if code is None:
            try:
                code = typer.prompt("Pairing code", hide_input=True, err=True)
            except typer.Abort:  # no terminal and nothing on stdin (a script, cron)
                raise fail(errors.PairingInputError(
                    "no pairing code: give it after the address, or run this on a terminal"), verbose) from None
        digits = call(verbose, lambda: check_code(code))
        phone = call(verbose, lambda: pair_by_code(state, host, port, digits, key, name))
    guid = "" if phone.name == phone.guid else f", GUID {printable(phone.guid)}"
    print(f"paired: {_said(phone)} now trusts this computer{guid}; `adbvoice backup --wifi` finds it on the "
          "network from now on")


@app.command()
def phones(
    timeout: Annotated[float, typer.Option(metavar="SECONDS", min=0.0,
                       help="How long to look for them on the network.")] = 2.0,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """The phones paired with this computer, and whether each is on the network now.

    Example: adbvoice phones
    """
    from adbvoice.phone import mdns
    from adbvoice.phone.pairing import CONNECT_SERVICE
    from adbvoice.unattended.phones import default_state_dir, known

    remembered = call(verbose, lambda: known(default_state_dir()), as_json=json_out)
    seen = (call(verbose, lambda: mdns.browse(CONNECT_SERVICE, timeout), as_json=json_out)
            if remembered and timeout else [])
    rows = []
    for phone in remembered:
        now = next((s for s in seen if s.instance.startswith(phone.guid)), None)
        rows.append({**asdict(phone), "visible": now is not None,
                     "address": f"{now.host}:{now.port}" if now else None})
    if json_out:
        print(json.dumps({"phones": rows}, indent=2))
        return
    if not rows:
        print("no phone paired yet: adbvoice pair", file=sys.stderr)
        return
    for row, phone in zip(rows, remembered):
        where = f"on the network at {row['address']}" if row["visible"] else \
            f"not seen now (last at {phone.host}:{phone.port})" if phone.port else "not seen now"
        guid = "" if phone.name == phone.guid else f"  {printable(phone.guid)}"
        print(f"{_said(phone)}{guid}  {printable(where)}")


@app.command()
def forget(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The phone's name, as `adbvoice phones` shows it.")],
    verbose: VerboseOpt = False,
) -> None:
    """Forget a paired phone (to revoke this computer on the phone too: Wireless debugging ›
    this computer › Forget).

    Example: adbvoice forget pixel
    """
    from adbvoice.unattended.phones import default_state_dir
    from adbvoice.unattended.phones import forget as forget_phone

    phone = call(verbose, lambda: forget_phone(default_state_dir(), name))
    print(f"forgot {_said(phone)}")
