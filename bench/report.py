"""Turning samples into the table, the verdict on each target, and bench/results.md."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from bench.runner import CASES, FIRST, GOOGLE_CASES, NOOP, PROFILES, PULLS, VIA_SERVER, Cell, Sample, TreeSpec

MB = 1e6
BULK_MIN_BYTES = 10 * MB  # below this, "the bulk of the copy" is a handful of messages


@dataclass(frozen=True)
class Row:
    tree: str
    link: str
    case: str
    seconds: float
    ratio: float | None  # median over repetitions of adbvoice's time / the faster adb pull's in the same one
    by_adb: dict[str, float]  # the same against each adb's pull
    turns: int
    messages: int
    wire_mb: float
    bulk: str  # throughput over the bulk of the copy, and its share of the link's bandwidth
    peak_rss_mb: float  # the highest of the repetitions
    cpu_seconds: float  # the client's user + system time (with adb, its server's too)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def ratios(cell: Cell, case: str, baselines: Sequence[str] = tuple(PULLS.values())) -> list[float]:
    """Per repetition, the case's time over the fastest of the baselines in that repetition
    (by default: the faster of adb 29's and adb 36's pull)."""
    fastest: dict[int, float] = {}
    for baseline in baselines:
        for s in cell.of(baseline):
            fastest[s.rep] = min(fastest.get(s.rep, s.run.seconds), s.run.seconds)
    return [s.run.seconds / fastest[s.rep] for s in cell.of(case) if s.rep in fastest]


def bulk_share(cell: Cell, sample: Sample) -> float | None:
    bandwidth = PROFILES[cell.profile].bandwidth_Bps
    rate = sample.wire.bulk_bytes_per_s
    return rate / bandwidth if rate and bandwidth else None


def _bulk_text(cell: Cell, samples: Sequence[Sample]) -> str:
    rates = [s.wire.bulk_bytes_per_s for s in samples if s.wire.bulk_bytes_per_s]
    if not rates or samples[0].case not in (*GOOGLE_CASES, FIRST, VIA_SERVER) or cell.folder_bytes < BULK_MIN_BYTES:
        return ""
    rate = median(rates)
    bandwidth = PROFILES[cell.profile].bandwidth_Bps
    share = f" ({rate / bandwidth:.0%})" if bandwidth else ""
    return f"{rate / MB:.1f} MB/s{share}"


def rows(cells: Sequence[Cell]) -> list[Row]:
    out = []
    for cell in cells:
        for case in CASES:
            samples = cell.of(case)
            if not samples:
                continue
            ratio = ratios(cell, case) if case not in GOOGLE_CASES else []
            by_adb = {version: ratios(cell, case, (pull,)) for version, pull in PULLS.items()} if ratio else {}
            out.append(Row(
                tree=cell.tree.label,
                link=cell.profile,
                case=case,
                seconds=median([s.run.seconds for s in samples]),
                ratio=median(ratio) if ratio else None,
                by_adb={version: median(values) for version, values in by_adb.items() if values},
                turns=round(median([s.wire.turns for s in samples])),
                messages=round(median([s.wire.messages for s in samples])),
                wire_mb=median([s.wire.wire_bytes for s in samples]) / MB,
                bulk=_bulk_text(cell, samples),
                peak_rss_mb=max(s.run.peak_rss_kb for s in samples) / 1024,
                cpu_seconds=median([s.run.cpu_seconds for s in samples]),
            ))
    return out


HEADER = ("tree", "link", "case", "time s", "÷ faster adb pull", *(f"÷ {v} pull" for v in PULLS), "CPU s",
          "round trips", "messages", "wire MB", "bulk throughput", "peak RSS MB")


def row_cells(row: Row) -> list[str]:
    against = [ratio_text(row.by_adb[v]) if v in row.by_adb else "" for v in PULLS]
    return [row.tree, row.link, row.case, f"{row.seconds:.3f}", ratio_text(row.ratio) if row.ratio is not None else "",
            *against, f"{row.cpu_seconds:.2f}", f"{row.turns:,}", f"{row.messages:,}", f"{row.wire_mb:.1f}", row.bulk,
            f"{row.peak_rss_mb:.1f}"]


def ratio_text(ratio: float) -> str:
    return f"{ratio:.2f}×" if ratio >= 0.1 else f"{ratio:.3f}×"


def text_table(table: Sequence[Row]) -> str:
    lines = [list(HEADER)] + [row_cells(r) for r in table]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)


def markdown_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |" for line in body]
    return "\n".join(lines)


# --- targets (issue 7) ------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    target: str
    measured: str
    met: bool | None  # None: not measured in this run
    narrow: bool = False  # repetitions fell on both sides of the target: noise decided the verdict

    @property
    def state(self) -> str:
        return "not measured" if self.met is None else "met" if self.met else "missed"


def _find(cells: Sequence[Cell], notes: int, profile: str, big: bool | None = None) -> Cell | None:
    for cell in cells:
        if cell.tree.notes == notes and cell.profile == profile and (big is None or bool(cell.tree.big_file_bytes) == big):
            return cell
    return None


def _ratio_target(cells: Sequence[Cell], notes: int, profile: str, case: str, limit: float, name: str) -> Verdict:
    cell = _find(cells, notes, profile)
    values = ratios(cell, case) if cell else []
    if not values:
        return Verdict(name, "not measured in this run", None)
    middle = median(values)
    spread = ", ".join(ratio_text(v) for v in values)
    narrow = min(values) <= limit < max(values)
    return Verdict(name, f"{ratio_text(middle)} (median; each repetition: {spread})", middle <= limit, narrow)


def verdicts(cells: Sequence[Cell]) -> list[Verdict]:
    out = [
        _ratio_target(cells, 2000, "wifi", FIRST, 0.5, "First backup, 2,000 notes, Wi-Fi: ≤ 0.5× the faster adb pull"),
        _ratio_target(cells, 2000, "loopback", FIRST, 1.0,
                      "First backup, 2,000 notes, loopback: ≤ 1.0× the faster adb pull"),
    ]
    shaped = [c for c in cells if PROFILES[c.profile].bandwidth_Bps and c.tree.notes >= 2000]
    shares = [(c, bulk_share(c, s)) for c in shaped for s in c.of(FIRST)]
    shares = [(c, v) for c, v in shares if v is not None]
    if shares:
        by_cell: dict[str, list[float]] = {}
        for c, v in shares:
            by_cell.setdefault(f"{c.tree.label} {c.profile}", []).append(v)
        text = "; ".join(f"{k}: {median(v):.0%}" for k, v in by_cell.items())
        out.append(Verdict("First backup throughput on the shaped links: ≥ 85 % of the bandwidth", text,
                           min(median(v) for v in by_cell.values()) >= 0.85))
    else:
        out.append(Verdict("First backup throughput on the shaped links: ≥ 85 % of the bandwidth",
                           "not measured in this run", None))
    big_noop = [(c, s) for c in cells if c.tree.notes == 10000 for s in c.of(NOOP)]
    if big_noop:
        turns: dict[str, list[int]] = {}
        for c, s in big_noop:
            turns.setdefault(c.profile, []).append(s.wire.turns)
        out.append(Verdict("No-op sync, 10,000 notes: ≤ 2 round trips after connecting",
                           "; ".join(f"{p}: {min(t):,} to {max(t):,}" for p, t in turns.items()),
                           max(max(t) for t in turns.values()) <= 2))
        for profile in dict.fromkeys(c.profile for c, _ in big_noop):
            out.append(_ratio_target(cells, 10000, profile, NOOP, 0.1,
                                     f"No-op sync, 10,000 notes, {profile}: ≤ 0.1× the faster adb pull"))
    else:
        out.append(Verdict("No-op sync, 10,000 notes: ≤ 2 round trips, ≤ 0.1× the faster adb pull",
                           "not measured in this run", None))
    out += _memory_verdicts(cells)
    return out


def _adbvoice_peak_mb(cell: Cell, case: str | None = None) -> float:
    return max(s.run.peak_rss_kb for s in cell.samples
               if s.case not in GOOGLE_CASES and (case is None or s.case == case)) / 1024


def _memory_verdicts(cells: Sequence[Cell]) -> list[Verdict]:
    out = []
    big = [c for c in cells if c.tree.notes == 10000]
    if big:
        peak = max(_adbvoice_peak_mb(c) for c in big)
        out.append(Verdict("Peak RSS, 10,000 notes: ≤ 150 MB", f"{peak:.1f} MB (highest of every adbvoice run)", peak <= 150))
    else:
        out.append(Verdict("Peak RSS, 10,000 notes: ≤ 150 MB", "not measured in this run", None))
    pairs = [(c, _find(cells, c.tree.notes, c.profile, big=False)) for c in cells if c.tree.big_file_bytes]
    pairs = [(with_big, without) for with_big, without in pairs if without is not None]
    if pairs:
        with_big, without = pairs[0]
        a, b = _adbvoice_peak_mb(without, FIRST), _adbvoice_peak_mb(with_big, FIRST)
        out.append(Verdict(
            "Peak RSS flat in file size: the big file does not raise it",
            f"first backup of {without.tree.label}: {a:.1f} MB; of {with_big.tree.label}: {b:.1f} MB ({b - a:+.1f} MB)",
            b - a <= 5,
        ))
    return out


def verdict_table(items: Sequence[Verdict]) -> str:
    return markdown_table(("target", "measured", "verdict"), [(v.target, v.measured, _verdict_word(v)) for v in items])


def _verdict_word(verdict: Verdict) -> str:
    word = "**missed**" if verdict.state == "missed" else verdict.state
    return f"{word}, narrowly: repetitions on both sides of the target" if verdict.narrow else word


def tree_lines(cells: Sequence[Cell]) -> list[str]:
    seen: dict[TreeSpec, Cell] = {}
    for cell in cells:
        seen.setdefault(cell.tree, cell)
    return [f"- {spec.label}: {cell.files:,} files, {cell.folder_bytes / MB:.1f} MB in the voice-note folders"
            for spec, cell in seen.items()]
