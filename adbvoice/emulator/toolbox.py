"""The phone's own commands that Debian's toybox build lacks: getprop and setprop (bionic's
property area), dd (toybox's, left out of Debian's build), and cmd (the binder service
front end; this phone runs no system services, so it knows none).

The property area is a folder bound at /dev/__properties__ (where bionic maps it), one
file per property holding its value and a newline. getprop and setprop are mksh scripts;
dd is the system's python3, the only tool under /usr that copies binary blocks.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

PROPERTIES = "/dev/__properties__"
_NAME = re.compile(r"[A-Za-z0-9_.:@-]{1,255}\Z")

# getprop (toolbox/getprop.cpp): no argument lists every property as `[name]: [value]`,
# sorted by name; `getprop NAME [DEFAULT]` prints the value, or DEFAULT, or an empty line.
_GETPROP = f"""#!/system/bin/sh
d={PROPERTIES}
if [ $# -eq 0 ]; then
  for f in "$d"/*; do
    [ -f "$f" ] || continue
    IFS= read -r v < "$f"
    printf '[%s]: [%s]\\n' "${{f##*/}}" "$v"
  done
  exit 0
fi
case $1 in
  */*|.*|'') printf '%s\\n' "${{2-}}"; exit 0 ;;
esac
if [ -f "$d/$1" ] && IFS= read -r v < "$d/$1" && [ -n "$v" ]; then
  printf '%s\\n' "$v"
else
  printf '%s\\n' "${{2-}}"
fi
"""

# setprop (toybox/toys/android/setprop.c) asks init through the property service, whose
# SELinux policy lets the shell user set debug.* and log.tag.* (property_contexts); ro.*
# are write-once, and a value is at most 91 bytes (PROP_VALUE_MAX - 1).
_SETPROP = f"""#!/system/bin/sh
if [ $# -ne 2 ]; then
  echo "usage: setprop NAME VALUE" >&2
  exit 1
fi
d={PROPERTIES}
fail() {{
  printf "Failed to set property '%s' to '%s'.\\nSee dmesg for error reason.\\n" "$1" "$2" >&2
  exit 1
}}
case $1 in
  */*|.*|'') echo "setprop: property name '$1' is invalid" >&2; exit 1 ;;
  debug.*|persist.debug.*|log.tag.*|persist.log.tag.*) ;;
  *) fail "$1" "$2" ;;
esac
[ ${{#2}} -le 91 ] || fail "$1" "$2"
printf '%s\\n' "$2" > "$d/.$1.$$" && mv -f "$d/.$1.$$" "$d/$1" || fail "$1" "$2"
"""

# toybox dd: if= of= bs= ibs= obs= count= skip= seek= status=none|noxfer conv=notrunc,
# sizes with toybox's suffixes (c w b k m g: 1 2 512 1024 ...), its "records" summary.
_DD = r"""#!/usr/bin/python3
import os, sys, time
SUFFIX = {"c": 1, "w": 2, "b": 512, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
def size(text):
    mult = SUFFIX.get(text[-1:].lower(), 0)
    return int(text[:-1] if mult else text) * (mult or 1)
opts = {"if": None, "of": None, "bs": None, "ibs": "512", "obs": "512", "count": None,
        "skip": "0", "seek": "0", "status": "", "conv": ""}
for arg in sys.argv[1:]:
    key, eq, value = arg.partition("=")
    if not eq or key not in opts:
        sys.exit(f"dd: unknown argument '{arg}'")
    opts[key] = value
try:
    ibs = size(opts["bs"] or opts["ibs"]); obs = size(opts["bs"] or opts["obs"])
    count = None if opts["count"] is None else size(opts["count"])
    skip, seek = size(opts["skip"]), size(opts["seek"])
except ValueError as e:
    sys.exit(f"dd: bad number: {e}")
conv = opts["conv"].split(",")
try:
    src = os.open(opts["if"], os.O_RDONLY) if opts["if"] else 0
    flags = os.O_WRONLY | os.O_CREAT | (0 if "notrunc" in conv or seek else os.O_TRUNC)
    dst = os.open(opts["of"], flags, 0o666) if opts["of"] else 1
    if skip:
        os.lseek(src, skip * ibs, os.SEEK_SET)
    if seek:
        os.lseek(dst, seek * obs, os.SEEK_SET)
except OSError as e:
    sys.exit(f"dd: {e.filename}: {e.strerror}")
start = time.monotonic()
full = part = out_full = out_part = total = 0
pending = b""
def flush(final):
    global pending, out_full, out_part
    while len(pending) >= obs or (final and pending):
        chunk, pending = pending[:obs], pending[obs:]
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view):]
        out_full += len(chunk) == obs
        out_part += len(chunk) < obs
try:
    while count is None or full + part < count:
        block = os.read(src, ibs)
        if not block:
            break
        full += len(block) == ibs
        part += len(block) < ibs
        total += len(block)
        pending += block
        flush(False)
    flush(True)
except OSError as e:
    sys.exit(f"dd: {e.strerror}")
if opts["status"] != "none":
    lines = [f"{full}+{part} records in", f"{out_full}+{out_part} records out"]
    if opts["status"] != "noxfer":
        secs = max(time.monotonic() - start, 1e-6)
        lines.append(f"{total} bytes copied, {secs:.6f} s, {total / secs / 1e6:.1f} M/s")
    sys.stderr.write("\n".join(lines) + "\n")
"""

# cmd (frameworks/native/cmds/cmd): with no service named it says so and exits 20; the
# service manager of this phone lists none.
_CMD = """#!/system/bin/sh
case ${1-} in
  '') echo "cmd: No service specified; use -l to list all services" >&2; exit 20 ;;
  -l) echo "Currently running services:"; exit 0 ;;
  *) echo "cmd: Can't find service: $1" >&2; exit 20 ;;
esac
"""

COMMANDS = {"getprop": _GETPROP, "setprop": _SETPROP, "dd": _DD, "cmd": _CMD}


def install(bin_dir: Path, properties_dir: Path, properties: dict[str, str]) -> None:
    """Write the commands into /system/bin and the initial properties into their area."""
    for name, text in COMMANDS.items():
        path = bin_dir / name
        path.write_text(text)
        path.chmod(0o755)
    properties_dir.mkdir(exist_ok=True)
    for name, value in properties.items():
        if not _NAME.match(name) or name.startswith("."):
            raise ValueError(f"invalid property name {name!r}")
        (properties_dir / name).write_text(value + "\n")
    os.chmod(properties_dir, 0o755)
