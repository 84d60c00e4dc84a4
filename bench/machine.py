"""What machine a result came from: a timing means nothing without it."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

from adbvoice.archive.durability import FileByFile, filesystem_type, sealer_for
from bench.clients import GOOGLE_ADBS


def _first(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _archive_disk(folder: Path) -> str:
    """The filesystem of `folder` and how adbvoice makes notes durable on it
    (adbvoice/archive/durability.py): a first backup's cost depends on both."""
    sealer = sealer_for(folder)
    sealer.close()
    syncs = "fsync per note and folder" if isinstance(sealer, FileByFile) else "syncfs per group"
    return f"{filesystem_type(folder) or '?'}; adbvoice syncs with {syncs}"


def adb_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "version"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "not installed"
    lines = [line.strip() for line in out.splitlines()[:2]]
    return ", ".join(lines) or "?"


def describe(workdir: Path) -> list[tuple[str, str]]:
    """(label, value) rows: CPU, cores, RAM, kernel, Python, each Google adb, the work
    folder's filesystem and the way adbvoice syncs there."""
    mem_kb = _first("/proc/meminfo", "MemTotal")
    ram = f"{int(mem_kb.split()[0]) / 1024 / 1024:.1f} GiB" if mem_kb else "?"
    cores = f"{os.cpu_count()} logical, {len(os.sched_getaffinity(0))} usable by this process"
    return [
        ("CPU", _first("/proc/cpuinfo", "model name") or platform.processor() or "?"),
        ("cores", cores),
        ("RAM", ram),
        ("kernel", f"{platform.system()} {platform.release()}"),
        ("Python", sys.version.split()[0]),
        *((version, adb_version(binary)) for version, binary in GOOGLE_ADBS.items()),
        ("work folder", f"{workdir} ({_archive_disk(workdir)})"),
    ]
