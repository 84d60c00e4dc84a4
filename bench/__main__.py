"""`python -m bench`: adbvoice against Google's `adb pull` (adb 29 and adb 36) on the emulated
phone, with each adb's `adb push` of the same notes measured beside; prints the table and
writes it, with the machine and the verdict on each target, to bench/results.md.

`--quick` is a shorter run (50 and 2,000 notes, one repetition, a 20 MB big file) that
writes bench/results-quick.md instead; the raw samples go to a .json beside the Markdown,
and `--from-json FILE` renders the report again from them. Besides the trees asked for, the smallest tree is
run once more with the big note, on the first profile: the peak-RSS-flat-in-file-size check.
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import machine, report, store
from bench.clients import BenchError
from bench.runner import PROFILES, Bench, TreeSpec, build_tree
from bench.store import Run

HERE = Path(__file__).resolve().parent


def _numbers(text: str) -> list[int]:
    return [int(n.replace("_", "")) for n in text.split(",") if n]


def _profiles(text: str) -> list[str]:
    names = [n for n in text.split(",") if n]
    unknown = [n for n in names if n not in PROFILES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown profile {unknown[0]!r} (known: {', '.join(PROFILES)})")
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="50 and 2,000 notes, 1 repetition, 20 MB big file")
    parser.add_argument("--notes", type=_numbers, help="tree sizes, comma-separated (default 50,2000,10000)")
    parser.add_argument("--profiles", type=_profiles, default=list(PROFILES),
                        help="link profiles, comma-separated (default loopback,usb2,wifi)")
    parser.add_argument("--reps", type=int, help="repetitions of each measurement (default 3)")
    parser.add_argument("--big-mb", type=float, help="the big note in the largest tree and the memory check, "
                        "in MB; 0 for none (default 200)")
    parser.add_argument("--workdir", type=Path, help="where trees and archives go (default: a temp folder, removed)")
    parser.add_argument("--out", type=Path, help="the Markdown results file (default bench/results.md, "
                        "bench/results-quick.md with --quick); the raw samples go beside it (.json)")
    parser.add_argument("--from-json", type=Path, metavar="FILE",
                        help="measure nothing: render the report again from a run's raw samples")
    args = parser.parse_args(argv)
    args.notes = args.notes or ([50, 2000] if args.quick else [50, 2000, 10000])
    args.reps = args.reps or (1 if args.quick else 3)
    args.big_mb = args.big_mb if args.big_mb is not None else (20 if args.quick else 200)
    args.out = args.out or (args.from_json.with_suffix(".md") if args.from_json
                            else HERE / ("results-quick.md" if args.quick else "results.md"))
    return args


def tree_specs(notes: list[int], big_bytes: int | None, profiles: list[str]) -> list[tuple[TreeSpec, list[str]]]:
    """(tree, profiles): every size on every profile, the largest with the big note, and
    the memory check: the smallest tree again with the big note, on the first profile."""
    largest = max(notes)
    specs = [(TreeSpec(n, big_bytes if n == largest and big_bytes else None), profiles) for n in notes]
    if big_bytes and len(notes) > 1:
        specs.append((TreeSpec(min(notes), big_bytes), profiles[:1]))
    return specs


def _commit() -> str:
    out = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    return out.stdout.strip() or "?"


def results_markdown(run: Run) -> str:
    cells = run.cells
    largest = max((c.tree.notes for c in cells), default=0)
    noop = next((c for c in reversed(cells) if c.noop_turns and c.tree.notes == largest), None)
    parts = [
        "# adbvoice against Google's `adb pull`: benchmark results",
        "",
        f"Written by `python -m bench {' '.join(run.argv)}`".rstrip() + f" on {run.date} at commit "
        f"{run.commit}; the raw samples are in the .json file beside this one. Run it again rather "
        "than edit this file.",
        "",
        "## Machine",
        "",
        report.markdown_table(("", ""), run.machine),
        "",
        "## Trees",
        "",
        *report.tree_lines(cells),
        "",
        "## How",
        "",
        "The emulated phone (`adbvoice.emulator`, in the bench's process, auth mode `any`) applies "
        "each link profile to every client alike: loopback (no shaping), usb2 (35 MB/s, 0.3 ms round "
        "trip), wifi (6 MB/s, 8 ms round trip). Per repetition: `adb pull` of the voice-note folders "
        "through each Google adb — Debian's 29.0.6 and platform-tools 36.0.0, what users install today — "
        "(each with its own server, connected beforehand), then `adb push` of the same folders back to "
        "the phone's /data/local/tmp (the baseline for putting notes back), and `python -m adbvoice "
        "backup ARCHIVE --tcp ... --quiet` three times — into an empty archive, again with nothing new, "
        "and after 10 new notes — then once more into an empty archive through adb 36's server "
        "(`--serial`, the fallback when a server holds a USB phone), with adb's runs alternately "
        f"before and after. Times are medians over {run.reps} repetition(s); \"÷ faster adb pull\" is "
        "the median of the per-repetition ratios to the faster of the two pulls in that repetition "
        "(the headline, and what the targets are held to), \"÷ adb 29 pull\" and \"÷ adb 36 pull\" "
        "the same against each. Round trips, messages and wire bytes come from the emulator's packet "
        "log (round trips as `PacketLog.round_trips`, after the connection's handshake; adb's "
        "connection is made before the pull). Bulk throughput is over the middle 80 % of the bytes "
        "that went the busier way (the phone's, or the host's for a push). Peak RSS: adbvoice's from "
        "wait4(2); adb's is its server's VmHWM (reset before each pull or push) plus the client's; CPU s (user + system) likewise counts adb's server. "
        "Every run starts after `sync`, so none pays for what the one before left to write back, "
        "and what runs wrote is deleted only when the whole benchmark ends (on a journal-less ext4 such "
        "as this machine's, new files skip the inodes freed in the last minute one by one: deleting "
        "a run's thousands of files right before the next made file creation up to twice as slow, "
        "for both clients). "
        "The smallest tree runs once more with the big note, to see whether a big file raises "
        "adbvoice's peak RSS. adbvoice's time includes starting Python (`python -m adbvoice --help` "
        f"alone: median {report.median(run.startup_seconds):.3f} s). On loopback and usb2 both "
        "clients are bound by this machine's CPU and disk, so those times move between repetitions "
        "(each one is in the .json); the shell listing's round trips depend on timing by nature "
        "(see below), the other counts do not.",
        "",
        "## Results",
        "",
        report.markdown_table(report.HEADER, [report.row_cells(r) for r in report.rows(cells)]),
        "",
        "## Targets (issue 7)",
        "",
        report.verdict_table(report.verdicts(cells)),
    ]
    if noop:
        parts += ["", f"## Round trips of the no-op sync ({noop.tree.label}, {noop.profile})", "",
                  "Streams are named by service and the order they were opened in.", "",
                  "```", *noop.noop_turns, "```"]
    return "\n".join(parts) + "\n"


def measure(args: argparse.Namespace, argv: list[str]) -> Run:
    """Build each tree, run every cell on it; BenchError if a client fails."""
    big = int(args.big_mb * 1e6) or None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="adbvoice-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    bench = None
    try:
        run = Run(argv, args.reps, datetime.date.today().isoformat(), _commit(), machine.describe(workdir), [])
        bench = Bench(workdir, args.reps, lambda line: print(line, flush=True))
        run.startup_seconds = bench.startup_seconds()
        for spec, profiles in tree_specs(args.notes, big, args.profiles):
            root = workdir / "sdcard"
            print(f"building {spec.label} ...", flush=True)
            tree = build_tree(spec, root)
            try:
                for profile in profiles:
                    run.cells.append(bench.run_cell(tree, spec, profile))
            finally:
                bench.put_aside(root)
        return run
    finally:
        if bench is not None:
            bench.close()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up (adb server, work folder) when killed
    args = parse_args(argv)
    if args.from_json:
        run = store.load(args.from_json)
    else:
        try:
            run = measure(args, argv)
        except BenchError as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 1
        store.save(run, args.out.with_suffix(".json"))
    print()
    print(report.text_table(report.rows(run.cells)))
    print()
    for verdict in report.verdicts(run.cells):
        narrowly = " (narrowly: repetitions on both sides of the target)" if verdict.narrow else ""
        state = "MISSED" if verdict.state == "missed" else verdict.state
        print(f"{state:12} {verdict.target}: {verdict.measured}{narrowly}")
    args.out.write_text(results_markdown(run))
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
