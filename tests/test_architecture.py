"""The package folders are the architecture: these tests keep each import in its room.

Layers, lowest first: the base modules (errors, the run's events and cancel token, how
values are shown, WhatsApp's rules); phone/ and archive/, which never import each other;
the flows that join them (backup/); what sits above a flow (unattended/, views/, the demo);
and the CLI (commands/, cli.py), the only code that parses and prints. A module may import
its own package, any lower layer, and, in the lowest and the highest layer, its neighbours.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "adbvoice"
BASE = {"errors", "cancel", "events", "display", "whatsapp", "__init__"}
LAYERS = [BASE, {"phone", "archive", "speech"}, {"backup", "prune", "restore", "transcribe"}, {"unattended", "views", "demo"},
          {"commands", "cli", "__main__"}]
LAYER_OF = {room: level for level, rooms in enumerate(LAYERS) for room in rooms}
# The emulated phone is the project's test phone: it shares only the wire format, and
# only the demo (besides tests and benchmarks) starts one.
EMULATOR_MAY_IMPORT = {"adbvoice.phone.wire", "adbvoice.phone.pairing_wire", "adbvoice.phone.spake2"}
EMULATOR_IMPORTERS = {"demo"}
PRINTING_ROOMS = {"commands", "cli", "__main__"}
# One import boundary per outside library: every fault test has one seam to patch.
LIBRARY_HOMES = {
    "typer": ("adbvoice/commands/", "adbvoice/cli.py"),
    "tqdm": ("adbvoice/commands/",),
    "sqlite3": ("adbvoice/archive/catalog.py",),
    "mutagen": ("adbvoice/archive/metadata.py",),
    "adb_shell": ("adbvoice/phone/",),
    "jeepney": ("adbvoice/unattended/desktop.py",),
    "desktop_notifier": ("adbvoice/unattended/desktop.py",),
    "zeroconf": ("adbvoice/phone/mdns.py", "adbvoice/emulator/mdns.py"),
    "nacl": ("adbvoice/phone/spake2.py",),
    "segno": ("adbvoice/commands/pairing.py",),
    "OpenSSL": ("adbvoice/phone/pairing_wire.py", "adbvoice/emulator/"),
    "brotli": ("adbvoice/emulator/compression.py",),
    "lz4": ("adbvoice/emulator/compression.py",),
    "zstandard": ("adbvoice/emulator/compression.py",),
    "faster_whisper": ("adbvoice/speech/engine.py",),
}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def name_of(path: Path) -> str:
    return ".".join(("adbvoice", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")


def room_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, function-level ones included;
    `from package import module` counts as an import of the module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            submodules = [m for m in submodules if (PACKAGE.parent / m.replace(".", "/")).with_suffix(".py").exists()]
            found += [(node.lineno, m) for m in submodules or [node.module]]
    return found


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(PACKAGE.parent)}:{line}"


def upward_imports(path: Path) -> list[str]:
    module = name_of(path)
    room = room_of(module)
    wrong = []
    for line, imported in imports_of(path):
        if not imported.startswith("adbvoice"):
            continue
        target = room_of(imported)
        if room == "emulator":
            allowed = target == "emulator" or imported in EMULATOR_MAY_IMPORT or imported == "adbvoice"
        elif target == "emulator":
            allowed = room in EMULATOR_IMPORTERS
        else:
            mine, theirs = LAYER_OF[room], LAYER_OF[target]
            allowed = target == room or theirs < mine or (mine == theirs and mine in (0, len(LAYERS) - 1))
        if not allowed:
            wrong.append(f"{where(path, line)}: {module} imports {imported}")
    return wrong


@pytest.mark.parametrize("path", modules(), ids=lambda p: name_of(p))
def test_each_module_imports_only_its_own_package_and_the_layers_below(path):
    assert room_of(name_of(path)) in LAYER_OF or room_of(name_of(path)) == "emulator", (
        f"{name_of(path)} sits in no known package: add its room to LAYERS"
    )
    assert upward_imports(path) == []


def test_the_phone_never_imports_the_archive_and_the_archive_never_imports_the_phone():
    crossing = [
        problem
        for path in modules()
        if room_of(name_of(path)) in ("phone", "archive")
        for problem in upward_imports(path)
    ]
    assert crossing == []


def test_each_outside_library_is_imported_in_one_place_only():
    strays = []
    for path in modules():
        relative = path.relative_to(PACKAGE.parent).as_posix()
        for line, imported in imports_of(path):
            homes = LIBRARY_HOMES.get(imported.split(".")[0])
            if homes and not relative.startswith(homes):
                strays.append(f"{where(path, line)}: {imported} (belongs in {', '.join(homes)})")
    assert strays == []


def test_only_the_command_line_prints_or_exits():
    offenders = []
    for path in modules():
        module = name_of(path)
        # The emulator's own programs: its command line, and the stand-ins the phone's shell runs.
        if room_of(module) in PRINTING_ROOMS or module in ("adbvoice.emulator.__main__", "adbvoice.emulator.standins"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            called = ast.unparse(node.func)
            if called in ("print", "sys.exit", "exit", "sys.stdout.write", "sys.stderr.write"):
                offenders.append(f"{where(path, node.lineno)}: {called}()")
    assert offenders == []


def test_every_package_says_what_it_is_for_and_what_it_may_import():
    for init in PACKAGE.glob("*/__init__.py"):
        docstring = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert len(docstring.split()) >= 15, f"{init.parent.name}/__init__.py needs a docstring saying what it holds"
