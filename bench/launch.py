"""`python -I -S launch.py RESULT_FILE COMMAND...`: run COMMAND, then write its wall time,
peak RSS, exit code and CPU time to RESULT_FILE; exit with its code.

Why a launcher: a child's ru_maxrss counts the memory of the process it was forked from
(Linux keeps the pre-exec high-water mark), so a child forked by the benchmark, which
hosts the emulated phone, would report the benchmark's size. Forked from this small
interpreter instead, it reports its own (anything under ~8 MB reads as ~8 MB).
"""

import os
import sys
import time


def main() -> int:
    result_file, argv = sys.argv[1], sys.argv[2:]
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    _pid, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    with open(result_file, "w") as out:
        out.write(f"{seconds!r} {usage.ru_maxrss} {code} {usage.ru_utime + usage.ru_stime!r}\n")
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
