"""What machine a result came from: a timing means nothing without it."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path


def _first(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _filesystem(folder: Path) -> str:
    """The filesystem type of `folder` (fsync cost depends on it), from /proc/mounts."""
    best, kind = "", "?"
    target = str(folder.resolve())
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            _dev, mount, fstype = line.split()[:3]
            if (target == mount or target.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best):
                best, kind = mount, fstype
    except OSError:
        pass
    return kind


def adb_version() -> str:
    out = subprocess.run(["adb", "version"], capture_output=True, text=True, check=False).stdout
    lines = [line.strip() for line in out.splitlines()[:2]]
    return ", ".join(lines) or "?"


def describe(workdir: Path) -> list[tuple[str, str]]:
    """(label, value) rows: CPU, cores, RAM, kernel, Python, adb, the work folder's filesystem."""
    mem_kb = _first("/proc/meminfo", "MemTotal")
    ram = f"{int(mem_kb.split()[0]) / 1024 / 1024:.1f} GiB" if mem_kb else "?"
    cores = f"{os.cpu_count()} logical, {len(os.sched_getaffinity(0))} usable by this process"
    return [
        ("CPU", _first("/proc/cpuinfo", "model name") or platform.processor() or "?"),
        ("cores", cores),
        ("RAM", ram),
        ("kernel", f"{platform.system()} {platform.release()}"),
        ("Python", sys.version.split()[0]),
        ("adb", adb_version()),
        ("work folder", f"{workdir} ({_filesystem(workdir)})"),
    ]
