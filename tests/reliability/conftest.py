"""The reliability suite's shared parts: the figures every test adds to (printed at the end
of the run and written to test-artifacts/reliability.md), and the checks that say what a
fault left in the archive.

A figure here is counted by the run that prints it: a test adds a case when it ran one, a
fired fault when the fault proved it fired, and the damage it measured afterwards.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from adbvoice.archive.verify import verify_archive
from adbvoice.emulator.phonetree import PhoneTree, build_phone_tree
from tests.conftest import archived_files

# The table's rows, in the order of the issue that asked for them.
ROWS = (
    "Kill-point sweep",
    "SIGKILL sweep",
    "Restore SIGKILL sweep",
    "Transport faults",
    "Source changes during copy",
    "Disk full",
    "Two runs at once",
    "Bit rot (verify)",
    "Hostile phones",
    "Malformed audio",
    "Model-based (hypothesis)",
    "Exit-code contract",
)
ARTIFACT = Path("test-artifacts") / "reliability.md"


@dataclass
class Figure:
    """One row of the table; "–" for a measure its test does not take."""

    test: str
    cases: int = 0
    fired: int = 0
    lost: int | None = None
    partial: int | None = None
    outside: int | None = None
    notes: Counter[str] = field(default_factory=Counter)

    def case(
        self, *, fired: bool | int, cases: int = 1, lost: int | None = None, partial: int | None = None,
        outside: int | None = None,
    ) -> None:
        """A case tried (or `cases` of them, `fired` being how many fired); a measure left
        None was not taken."""
        self.cases += cases
        self.fired += int(fired)
        self.lost = _add(self.lost, lost)
        self.partial = _add(self.partial, partial)
        self.outside = _add(self.outside, outside)

    def measured(self, *, partial: int | None = None, outside: int | None = None) -> None:
        """A measure taken once for several cases (say, a listing before and after them all)."""
        self.partial = _add(self.partial, partial)
        self.outside = _add(self.outside, outside)

    def after_fault(self, *, fired: bool, wanted: set[str], states: tuple[ArchiveState, ...]) -> None:
        """One case, measured on the archive as the fault left it and after the next run:
        notes lost at the end, partial files seen at any point."""
        self.case(fired=fired, lost=states[-1].lost(wanted), partial=sum(len(s.partial) for s in states))

    def cells(self) -> list[str]:
        detail = ", ".join(f"{what}: {count:,}" for what, count in self.notes.items())
        measures = ["–" if value is None else f"{value:,}" for value in (self.lost, self.partial, self.outside)]
        return [self.test, f"{self.cases:,}", f"{self.fired:,}", *measures, detail]


def _add(total: int | None, more: int | None) -> int | None:
    return total if more is None else (total or 0) + more


class Figures:
    HEADER = ["test", "cases tried", "faults fired", "notes lost", "partial files seen", "writes outside archive", "details"]

    def __init__(self) -> None:
        self._rows: dict[str, Figure] = {}

    def row(self, test: str) -> Figure:
        assert test in ROWS, test
        return self._rows.setdefault(test, Figure(test))

    def markdown(self) -> str:
        rows = [self._rows[name].cells() for name in ROWS if name in self._rows]
        lines = ["| " + " | ".join(self.HEADER) + " |", "|" + " --- |" * len(self.HEADER)]
        return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in rows]) + "\n"

    def __bool__(self) -> bool:
        return bool(self._rows)


_FIGURES = Figures()


@pytest.fixture(scope="session")
def figures() -> Figures:
    return _FIGURES


def pytest_configure(config) -> None:  # noqa: ANN001 - pytest's hook
    config.addinivalue_line("markers", "order_last: run after every other test of the session")


def pytest_collection_modifyitems(items) -> None:  # noqa: ANN001 - pytest's hook
    """The exit-code contract looks at what all the other tests saw: it goes last."""
    items.sort(key=lambda item: item.get_closest_marker("order_last") is not None)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001 - pytest's hook
    if not _FIGURES:
        return
    table = _FIGURES.markdown()
    terminalreporter.write_sep("=", "reliability figures (counted by this run)")
    terminalreporter.write(table)
    path = config.rootpath / ARTIFACT
    path.parent.mkdir(exist_ok=True)
    path.write_text(table)
    terminalreporter.write_line(f"written to {ARTIFACT}")


@pytest.fixture
def small_tree(tmp_path) -> PhoneTree:
    """Eight voice notes (personal, Business with a name clash, legacy) plus broken ones,
    WhatsApp Audio and unrelated files: every kind of file, quick to back up many times."""
    return build_phone_tree(tmp_path / "sdcard", notes=8)


# --- what a fault left behind ------------------------------------------------------------


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ArchiveState:
    """The archive as a fault left it, against every version of every note the phone held."""

    partial: list[str]  # files in the archive that are no whole note
    missing: list[str]  # catalogued, but no file
    changed: list[str]  # catalogued, but other bytes
    unknown: list[str]  # not catalogued (a whole note whose run was cut off is adopted next time)
    copies: Counter[str]  # sha256 -> how many files in the archive hold it

    @property
    def catalog_sound(self) -> bool:
        """The catalog refers to no missing or wrong file, and nothing partial is visible."""
        return not (self.partial or self.missing or self.changed)

    @property
    def clean(self) -> bool:
        """What `verify` calls all well, and no partial file."""
        return self.catalog_sound and not self.unknown

    def lost(self, wanted: set[str]) -> int:
        return len(wanted - set(self.copies))

    def complete(self, wanted: set[str]) -> bool:
        """Clean, every wanted note there, and each content exactly once."""
        return self.clean and not self.lost(wanted) and set(self.copies.values()) <= {1}


def archive_state(archive: Path, whole: set[str]) -> ArchiveState:
    """Look at the archive with the verify core: which files are partial (no whole version
    of a note), and where the catalog and the files disagree."""
    files = archived_files(archive)
    copies = Counter(sha256(data) for data in files.values())
    partial = sorted(path for path, data in files.items() if sha256(data) not in whole)
    if not (archive / ".adbvoice" / "catalog.sqlite").exists():
        return ArchiveState(partial, [], [], sorted(files), copies)
    report = verify_archive(archive)
    return ArchiveState(partial, report.missing, [c.archive_path for c in report.changed], report.unknown, copies)


def note_hashes(tree: PhoneTree, *, include_audio: bool = False) -> set[str]:
    """What a backup must archive from a phone tree."""
    return {n.sha256 for n in tree.notes if n.is_note and (include_audio or n.kind != "audio")}


def tree_listing(root: Path, *, skip: Path | None = None) -> dict[str, tuple]:
    """Every path under `root` (links not followed) with its type, size and mtime, except
    those under `skip`: compared before and after a run, any difference is a write."""
    found = {}
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if Path(folder, name) != skip]
        for name in subfolders + files:
            path = Path(folder, name)
            st = path.lstat()
            found[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return found


def writes_outside(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    return sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))
