"""`python -m bench.restore`: putting notes back, against `adb push` of the same files.

One emulated phone holds N notes of 2021, backed up once. For each link profile (loopback,
USB-2-like, Wi-Fi-like) and repetition, the phone's voice-note folder is deleted and put back
three ways: `adbvoice restore ARCHIVE --tcp … --quiet` (temp names, the phone's SHA-256 of
each batch, `mv -n`, file times), and each Google adb's `adb push` of a copy of the same
folder (one push of the folder tree; adb sends each file's time too, and checks nothing).
Each time, the folder must come back byte for byte. Printed: wall time (the fastest of the
repetitions), round trips counted by the phone, and restore's time as a ratio to each adb and
to the faster; the table goes to bench/results-restore.md.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from adbvoice.emulator import AuthPolicy, EmulatedPhone, LinkProfile
from bench.clients import GOOGLE_ADBS, AdbServer, Adbvoice, BenchError, run_child
from bench.prune import VOICE, write_notes

HERE = Path(__file__).resolve().parent
LINKS = {"loopback": LinkProfile.loopback(), "usb2": LinkProfile.usb2(), "wifi": LinkProfile.wifi()}


def folder_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.restore", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notes", type=int, default=2_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results-restore.md")
    args = parser.parse_args(argv)
    rows: dict[str, dict[str, list[tuple[float, int]]]] = {}
    with tempfile.TemporaryDirectory(prefix="adbvoice-bench-restore-") as scratch:
        work = Path(scratch)
        sdcard, archive = work / "sdcard", work / "archive"
        write_notes(sdcard, args.notes)
        pristine = folder_bytes(sdcard / VOICE)
        local = work / "local" / "WhatsApp Voice Notes"  # what `adb push` sends: the same folder, on this computer
        shutil.copytree(sdcard / VOICE, local)
        adbvoice = Adbvoice(work / "home")
        for link_name, link in LINKS.items():
            with EmulatedPhone(sdcard, auth=AuthPolicy(mode="any"), state_dir=work / f"state-{link_name}",
                               link=link) as phone:
                if not archive.exists():
                    adbvoice.backup(archive, phone.address)
                samples = rows.setdefault(link_name, {})
                servers = {version: AdbServer(work / f"home-{link_name}-{version.replace(' ', '')}", version)
                           for version in GOOGLE_ADBS}
                try:
                    for server in servers.values():
                        server.connect(phone.address)
                    for _rep in range(args.reps):
                        shutil.rmtree(sdcard / VOICE)
                        phone.log.clear()
                        run = run_child([sys.executable, "-m", "adbvoice", "restore", str(archive), "--tcp",
                                         phone.address, "--quiet", "--adb-key", str(adbvoice.key)], adbvoice.env)
                        if run.exit_code != 0 or folder_bytes(sdcard / VOICE) != pristine:
                            raise BenchError(f"restore exited {run.exit_code}: {run.output[-2000:]}")
                        samples.setdefault("adbvoice restore", []).append((run.seconds, phone.log.round_trips()))
                        for version, server in servers.items():
                            shutil.rmtree(sdcard / VOICE)
                            phone.log.clear()
                            pushed = server.push(phone.address, [local], f"/sdcard/{VOICE.rsplit('/', 1)[0]}/")
                            if folder_bytes(sdcard / VOICE) != pristine:
                                raise BenchError(f"{version} push did not put the folder back")
                            samples.setdefault(f"{version} push", []).append((pushed.seconds, phone.log.round_trips()))
                finally:
                    for server in servers.values():
                        server.close()
    text = _report(rows, args.notes, sum(map(len, pristine.values())), args.reps)
    args.out.write_text(text)
    print(text)
    return 0


def _report(rows: dict[str, dict[str, list[tuple[float, int]]]], notes: int, size: int, reps: int) -> str:
    lines = [
        f"# restore of {notes:,} notes ({size / 1e6:.1f} MB) against `adb push` of the same folder",
        "",
        f"Written by `python -m bench.restore --notes {notes} --reps {reps}` on {time.strftime('%Y-%m-%d')} at "
        f"commit {_commit()}. One emulated phone per link",
        "profile: loopback (no shaping), usb2 (35 MB/s, 0.3 ms round trip), wifi (6 MB/s, 8 ms). The fastest",
        "of the repetitions; restore's time includes starting Python, connecting and surveying the phone,",
        "adb's connection is made beforehand. Round trips are counted by the phone (turns in which the host",
        "waited for it). Ratios are restore's time over the other's: above 1 restore is slower.",
        "",
        "| link | how | seconds | round trips | restore ÷ this |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for link, samples in rows.items():
        best = {name: min(runs) for name, runs in samples.items()}
        restore_s = best["adbvoice restore"][0]
        for name, (seconds, trips) in best.items():
            lines.append(f"| {link} | {name} | {seconds:.2f} | {trips:,} | {restore_s / seconds:.2f}x |")
        faster = min(seconds for name, (seconds, _) in best.items() if name != "adbvoice restore")
        lines.append(f"| {link} | **restore ÷ the faster adb** | | | **{restore_s / faster:.2f}x** |")
    return "\n".join(lines) + "\n"


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
