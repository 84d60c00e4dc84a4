"""A run's raw samples on disk (JSON beside the Markdown), so the report can be rendered
again, or differently, without repeating a run that takes most of an hour."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from bench.clients import ChildRun
from bench.runner import Cell, Sample, TreeSpec
from bench.wire import WireStats


@dataclass
class Run:
    """Everything a report needs: how the run was asked for, where it ran, what it measured."""

    argv: list[str]
    reps: int
    date: str
    commit: str
    machine: list[tuple[str, str]]
    startup_seconds: list[float]
    cells: list[Cell] = field(default_factory=list)


def save(run: Run, path: Path) -> None:
    data = asdict(run)
    for cell in data["cells"]:
        for sample in cell["samples"]:
            sample["run"]["output"] = ""  # client chatter, not a measurement
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def load(path: Path) -> Run:
    data = json.loads(path.read_text())
    cells = [
        Cell(
            tree=TreeSpec(**c["tree"]),
            profile=c["profile"],
            files=c["files"],
            folder_bytes=c["folder_bytes"],
            samples=[Sample(s["case"], s["rep"], ChildRun(**s["run"]), WireStats(**s["wire"])) for s in c["samples"]],
            noop_turns=c["noop_turns"],
        )
        for c in data.pop("cells")
    ]
    run = Run(**data)
    return replace(run, machine=[tuple(row) for row in run.machine], cells=cells)
