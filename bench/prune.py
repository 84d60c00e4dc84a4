"""`python -m bench.prune`: what prune's checks cost, against deleting the same notes blind.

One emulated phone holds N notes of 2021, backed up once. Each repetition puts the phone's
notes back, then deletes them all, once with `adbvoice prune --older-than 90d --yes` (every
archived copy read back, the phone's own SHA-256 of each note, again right before each
`rm`) and once per Google adb with `adb shell xargs -0 rm -f --` fed the same list on stdin:
the fastest way a person deletes a known list, with no check at all. Printed: wall time and
round trips (counted by the phone, free of noise), and prune's time as a ratio to each; the
table goes to bench/results-prune.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from adbvoice.emulator import AuthPolicy, EmulatedPhone
from bench.clients import GOOGLE_ADBS, AdbServer, Adbvoice, BenchError, run_child

HERE = Path(__file__).resolve().parent
FIXTURE = HERE.parent / "fixtures" / "audio" / "voice-4s.opus"
VOICE = "Android/media/com.whatsapp/WhatsApp/Media/WhatsApp Voice Notes"


def write_notes(sdcard: Path, count: int) -> list[str]:
    """`count` distinct real notes, 100 to a week folder; their phone paths."""
    audio = FIXTURE.read_bytes()
    paths = []
    for index in range(count):
        folder = sdcard / VOICE / f"2021{index // 100 % 52 + 1:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        note = folder / f"PTT-2021{index % 12 + 1:02d}01-WA{index:05d}.opus"
        note.write_bytes(audio + index.to_bytes(4, "big"))  # distinct bytes: each a note of its own
        when = 1_610_000_000 + index
        os.utime(note, (when, when))
        paths.append(f"/sdcard/{note.relative_to(sdcard).as_posix()}")
    return paths


def put_back(pristine: Path, sdcard: Path) -> None:
    """The phone's storage as it was, in the same folder: the phone's namespaces bound
    that folder when it started, so a new folder of the same name would not be its."""
    for entry in sdcard.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    shutil.copytree(pristine, sdcard, symlinks=True, dirs_exist_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.prune", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notes", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "results-prune.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="adbvoice-bench-prune-") as scratch:
        work = Path(scratch)
        sdcard, pristine, archive = work / "sdcard", work / "pristine", work / "archive"
        paths = write_notes(sdcard, args.notes)
        shutil.copytree(sdcard, pristine, symlinks=True)
        listing = work / "list"
        listing.write_bytes(b"".join(p.encode() + b"\0" for p in paths))
        adbvoice = Adbvoice(work / "home")
        with EmulatedPhone(sdcard, auth=AuthPolicy(mode="any"), state_dir=work / "state") as phone:
            adbvoice.backup(archive, phone.address)
            catalog = archive / ".adbvoice" / "catalog.sqlite"
            before_prune = work / "catalog-before-prune"
            shutil.copyfile(catalog, before_prune)
            rows: dict[str, list[tuple[float, int]]] = {}
            for _rep in range(args.reps):
                put_back(pristine, sdcard)
                shutil.copyfile(before_prune, catalog)
                for suffix in ("-wal", "-shm"):
                    Path(f"{catalog}{suffix}").unlink(missing_ok=True)
                phone.log.clear()
                run = run_child([sys.executable, "-m", "adbvoice", "prune", str(archive), "--tcp", phone.address,
                                 "--yes", "--quiet", "--adb-key", str(adbvoice.key)], adbvoice.env)
                if run.exit_code != 0 or any((sdcard / p.removeprefix("/sdcard/")).exists() for p in paths):
                    raise BenchError(f"prune exited {run.exit_code}: {run.output[-2000:]}")
                rows.setdefault("adbvoice prune", []).append((run.seconds, phone.log.round_trips()))
                for version in GOOGLE_ADBS:
                    put_back(pristine, sdcard)
                    server = AdbServer(work / f"home-{version.replace(' ', '')}", version)
                    try:
                        server.connect(phone.address)
                        phone.log.clear()
                        seconds = _blind_rm(server, phone.address, listing)
                        rows.setdefault(f"{version} shell xargs -0 rm", []).append((seconds, phone.log.round_trips()))
                    finally:
                        server.close()
                    if any((sdcard / p.removeprefix("/sdcard/")).exists() for p in paths):
                        raise BenchError(f"{version} shell rm left notes behind")
    text = _report(rows, args.notes)
    args.out.write_text(text)
    print(text)
    return 0


def _blind_rm(server: AdbServer, address: str, listing: Path) -> float:
    with open(listing, "rb") as stdin:
        started = time.perf_counter()
        done = subprocess.run([server.binary, "-s", address, "shell", "xargs -0 rm -f --"], env=server.env,
                              stdin=stdin, capture_output=True, timeout=600, check=False)
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError(f"{server.version} shell rm exited {done.returncode}: {done.stderr[-500:]!r}")
    return seconds


def _report(rows: dict[str, list[tuple[float, int]]], notes: int) -> str:
    best = {name: (min(s for s, _ in samples), samples[0][1]) for name, samples in rows.items()}
    prune_s = best["adbvoice prune"][0]
    lines = [
        f"# prune of {notes:,} notes against deleting the same list blind",
        "",
        "Loopback link, one emulated phone; the fastest of the repetitions. Round trips are",
        "counted by the phone (turns in which the host waited for it).",
        "",
        "| how | seconds | round trips | round trips per note | prune's time / this |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, (seconds, trips) in best.items():
        lines.append(f"| {name} | {seconds:.2f} | {trips:,} | {trips / notes:.3f} | {prune_s / seconds:.2f}x |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
