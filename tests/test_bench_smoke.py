"""The benchmark runs end to end on a tiny tree and prints its table (no timing is checked:
numbers on a shared test machine mean nothing; `python -m bench` is for real runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_bench_measures_both_clients_and_writes_its_results(tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--notes", "5,10", "--profiles", "wifi", "--reps", "1",
         "--big-mb", "1", "--workdir", str(tmp_path / "work"), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    table = result.stdout.split("tree ", 1)[1]
    cells = [("5 notes", "wifi"), ("10 notes + 1 MB file", "wifi"), ("5 notes + 1 MB file", "wifi")]
    for tree, link in cells:  # the last one is the memory check: the big file on the smaller tree
        for case in ("adb pull", "first backup", "no-op sync", "10 new notes", "first, via adb server"):
            assert any(line.startswith(tree + " ") and f" {link} " in line and f" {case} " in line
                       for line in table.splitlines()), (tree, link, case)
    assert "Peak RSS flat in file size" in result.stdout
    written = out.read_text()
    for heading in ("## Machine", "## Results", "## Targets (issue 7)", "## Round trips of the no-op sync"):
        assert heading in written
    assert "| adb | Android Debug Bridge version" in written
