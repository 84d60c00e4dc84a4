"""`python -m bench.tls`: what Wireless debugging's TLS costs a backup, on the Wi-Fi link.

One emulated phone holds N real notes, on the Wi-Fi-like link (6 MB/s, 8 ms round trip).
Each repetition backs them all up into a fresh archive with `adbvoice backup --tcp`, once
from the phone's plain TCP port (`adb tcpip`'s) and once from its TLS port (Wireless
debugging's, this computer's key paired), and pulls the same folders with Google's
`adb pull`: adb 36 over both ports, adb 29 over the plain one (it has no TLS). Printed:
the fastest wall time of each, TLS's overhead over plain TCP for adbvoice and for adb 36,
and adbvoice's time as a ratio to each Google adb; the table goes to bench/results-tls.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from adbvoice.emulator import AuthPolicy, EmulatedPhone, LinkProfile
from bench.clients import GOOGLE_ADBS, AdbServer, Adbvoice
from bench.prune import VOICE, write_notes

HERE = Path(__file__).resolve().parent
PLAIN, TLS = "plain TCP", "TLS"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tls", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notes", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results-tls.md")
    args = parser.parse_args(argv)
    best: dict[tuple[str, str], float] = {}

    def keep(client: str, port: str, seconds: float) -> None:
        best[client, port] = min(seconds, best.get((client, port), seconds))

    with tempfile.TemporaryDirectory(prefix="adbvoice-bench-tls-") as scratch:
        work = Path(scratch)
        sdcard = work / "sdcard"
        write_notes(sdcard, args.notes)
        total_bytes = sum(p.stat().st_size for p in (sdcard / VOICE).rglob("*.opus"))
        adbvoice = Adbvoice(work / "home")
        servers = {version: AdbServer(work / f"home-{version.replace(' ', '')}", version) for version in GOOGLE_ADBS}
        # Both ports at once, measured in turn within each repetition: a machine whose load
        # drifts then weighs on both alike.
        phones = {
            port: EmulatedPhone(sdcard, auth=AuthPolicy(mode="keys" if port == TLS else "any"), tls=port == TLS,
                                link=LinkProfile.wifi(), state_dir=work / f"state-{port}")
            for port in (PLAIN, TLS)
        }
        try:
            for key in [Path(f"{adbvoice.key}.pub"), *(s.home / ".android" / "adbkey.pub" for s in servers.values())]:
                phones[TLS].trust_key(key.read_text())
            for phone in phones.values():
                phone.start()
            for rep in range(args.reps):
                for port, phone in phones.items():
                    archive = work / f"archive-{rep}"
                    keep("adbvoice backup", port, adbvoice.backup(archive, phone.address).seconds)
                    shutil.rmtree(archive)
                    for version, server in servers.items():
                        if port == TLS and version == "adb 29":
                            continue  # no TLS before platform-tools 30
                        server.connect(phone.address)
                        into = work / f"pulled-{rep}"
                        keep(f"{version} pull", port, server.pull(phone.address, [f"/sdcard/{VOICE}"], into).seconds)
                        server.disconnect(phone.address)
                        shutil.rmtree(into)
        finally:
            for phone in phones.values():
                phone.stop()
            for server in servers.values():
                server.close()
    text = _report(best, args.notes, total_bytes, args.reps)
    args.out.write_text(text)
    print(text)
    return 0


def _report(best: dict[tuple[str, str], float], notes: int, total_bytes: int, reps: int) -> str:
    ours = best["adbvoice backup", TLS]
    lines = [
        f"# TLS (Wireless debugging) against plain TCP: {notes:,} notes ({total_bytes / 1e6:.1f} MB), Wi-Fi link",
        "",
        "Wi-Fi-like link (6 MB/s each way, 8 ms round trip); the phone's plain TCP port and its TLS port",
        f"measured in turn in each repetition, the fastest of {reps}. adbvoice backs up into a fresh archive",
        "each time (listing, copying, hashing, cataloguing); Google's adb pulls the same folders. TLS's",
        "overhead is each client's TLS time over its plain TCP time.",
        "",
        "| how | plain TCP s | TLS s | TLS overhead | adbvoice over TLS / this over TLS (or plain) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for client in ("adbvoice backup", *(f"{v} pull" for v in GOOGLE_ADBS)):
        plain, tls = best.get((client, PLAIN)), best.get((client, TLS))
        overhead = f"{(tls / plain - 1) * 100:+.1f} %" if plain and tls else "no TLS"
        tls_text = f"{tls:.2f}" if tls else "-"
        lines.append(f"| {client} | {plain:.2f} | {tls_text} | {overhead} | {ours / (tls or plain):.2f}x |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
