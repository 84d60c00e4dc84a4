"""`python -m tests.reliability.crash_driver KEY FIRED_FILE adbvoice-args…`: the real CLI
with one publishing step (killpoints.KILL_POINTS[KEY]) patched to end the process on the
spot, as a power cut would: os._exit runs no `finally`, flushes nothing, and leaves the
lock for the kernel to drop. FIRED_FILE gets a line first, as proof the seam was reached.
"""

from __future__ import annotations

import os
import sys

from tests.reliability.killpoints import CRASH_EXIT, KILL_POINTS, arm


def main() -> None:
    key, fired_file, *args = sys.argv[1:]

    def crash() -> None:
        with open(fired_file, "a") as proof:
            proof.write(f"{key}\n")
        os._exit(CRASH_EXIT)

    arm(next(p for p in KILL_POINTS if p.key == key), setattr, crash)
    from adbvoice.cli import app

    app(args, prog_name="adbvoice")


if __name__ == "__main__":
    main()
