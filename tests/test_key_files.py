"""adb's key files get their modes from adbvoice, not from the umask: the private key 0600,
the public one 0644 (it is public), even under umask 000 — as in a cron job or a
container that sets none."""

from __future__ import annotations

import stat
import subprocess
import sys


def test_a_new_adb_key_is_0600_and_its_public_half_0644_whatever_the_umask(tmp_path):
    for umask in (0o000, 0o077):
        key = tmp_path / f"umask-{umask:03o}" / "adbkey"
        subprocess.run([sys.executable, "-c",
                        "import os, sys; from pathlib import Path; from adbvoice.phone.keys import load_signer\n"
                        f"os.umask({umask}); load_signer(Path(sys.argv[1]))", str(key)], check=True)
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / f"umask-{umask:03o}" / "adbkey.pub").stat().st_mode) == 0o644
        assert (tmp_path / f"umask-{umask:03o}" / "adbkey.pub").read_text().startswith("QAAAA")


def test_a_missing_public_key_is_written_again_0644(tmp_path):
    key = tmp_path / "adbkey"
    subprocess.run([sys.executable, "-c", "import os, sys; from pathlib import Path; "
                    "from adbvoice.phone.keys import load_signer\nos.umask(0); load_signer(Path(sys.argv[1]))",
                    str(key)], check=True)
    (tmp_path / "adbkey.pub").unlink()
    subprocess.run([sys.executable, "-c", "import os, sys; from pathlib import Path; "
                    "from adbvoice.phone.keys import load_signer\nos.umask(0); load_signer(Path(sys.argv[1]))",
                    str(key)], check=True)
    assert stat.S_IMODE((tmp_path / "adbkey.pub").stat().st_mode) == 0o644
