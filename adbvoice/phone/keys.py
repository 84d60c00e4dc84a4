"""This computer's adb key: the one Google's adb uses (~/.android/adbkey), so a phone that
trusts Google's adb on this computer trusts adbvoice too."""

from __future__ import annotations

import os
from pathlib import Path

from adb_shell.auth.keygen import keygen, write_public_keyfile
from adb_shell.auth.sign_cryptography import CryptographySigner

from adbvoice import errors
from adbvoice.phone.connection import Signer


def load_signer(key_path: Path) -> Signer:
    """The adb key at `key_path`, created the way adb creates it if there is none, so a
    phone that already trusts Google's adb on this computer trusts us too."""
    try:
        if not key_path.exists():
            key_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # keygen() writes with the default mode; create the file 0600 first so the
            # private key is never readable by others, even for an instant.
            os.close(os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            keygen(str(key_path))
        public = Path(f"{key_path}.pub")
        if not public.exists():
            write_public_keyfile(str(key_path), str(public))
        return CryptographySigner(str(key_path))
    except (OSError, ValueError, TypeError) as exc:
        raise errors.AdbKeyError(f"cannot use the adb key {key_path}: {exc}") from exc
