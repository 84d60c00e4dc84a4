"""This computer's adb key: the one Google's adb uses (~/.android/adbkey), so a phone that
trusts Google's adb on this computer trusts adbvoice too."""

from __future__ import annotations

import os
from pathlib import Path

from adb_shell.auth.keygen import keygen, write_public_keyfile
from adb_shell.auth.sign_cryptography import CryptographySigner

from adbvoice import errors
from adbvoice.phone.connection import Signer

PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644


def _create(path: Path, mode: int) -> None:
    """A new empty file of exactly `mode` (fchmod: the umask only ever takes bits away)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def load_signer(key_path: Path) -> Signer:
    """The adb key at `key_path`, created the way adb creates it if there is none, so a
    phone that already trusts Google's adb on this computer trusts us too."""
    public = Path(f"{key_path}.pub")
    try:
        if not key_path.exists():
            key_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # keygen() writes both files with the process umask (0666 under umask 000):
            # create them first, the private key 0600 so it is never readable by others even
            # for an instant, the public one 0644 (it is public), whatever the umask.
            _create(key_path, PRIVATE_MODE)
            if not public.exists():
                _create(public, PUBLIC_MODE)
            keygen(str(key_path))
        if not public.exists():
            _create(public, PUBLIC_MODE)
            write_public_keyfile(str(key_path), str(public))
        return CryptographySigner(str(key_path))
    except (OSError, ValueError, TypeError) as exc:
        raise errors.AdbKeyError(f"cannot use the adb key {key_path}: {exc}") from exc
