"""The phones this computer has paired with, remembered in the state folder.

One JSON file, `phones.json`, private (0600) in a private folder: it names the phones and
the addresses they were last seen at. It is replaced whole (written beside, synced,
renamed), so a crash leaves the old list or the new one, never half of one; before it is
read it is checked to be a regular file of ours that only we can read (DESIGN rule 11).
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import platformdirs

from adbvoice import errors

FILE_NAME = "phones.json"
_FORMAT = 1
# A handful of phones is a few hundred bytes: anything much bigger is not ours.
_MAX_BYTES = 1 << 20


@dataclass(frozen=True)
class KnownPhone:
    name: str
    guid: str
    model: str
    serial: str
    host: str
    port: int


def default_state_dir() -> Path:
    """~/.local/state/adbvoice on Linux ($XDG_STATE_HOME)."""
    return platformdirs.user_state_path("adbvoice")


def _path(state_dir: Path) -> Path:
    return state_dir / FILE_NAME


def _unusable(path: Path, why: str) -> errors.ConfigError:
    return errors.ConfigError(f"the remembered phones in {path} are not usable: {why}")


def _check_folder(state_dir: Path) -> None:
    """The state folder, if it exists, is a real folder of ours that nobody else may write
    into (who could, could swap the file); a link is refused, not followed."""
    try:
        st = os.lstat(state_dir)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _unusable(_path(state_dir), exc.strerror or str(exc)) from exc
    if not stat.S_ISDIR(st.st_mode):
        raise _unusable(_path(state_dir), f"{state_dir} is not a folder (a link?)")
    if st.st_uid != os.geteuid():
        raise _unusable(_path(state_dir), f"{state_dir} belongs to another user")
    if st.st_mode & 0o022:
        raise _unusable(_path(state_dir), f"others may write into {state_dir} (chmod go-w it)")


def _read_checked(path: Path) -> bytes | None:
    _check_folder(path.parent)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _unusable(path, exc.strerror or str(exc)) from exc
    with os.fdopen(fd, "rb") as file:
        st = os.fstat(file.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise _unusable(path, "not a regular file")
        if st.st_uid != os.geteuid():
            raise _unusable(path, "owned by another user")
        if st.st_mode & 0o077:
            raise _unusable(path, f"readable by others (mode {stat.S_IMODE(st.st_mode):o}; chmod 600 it)")
        data = file.read(_MAX_BYTES + 1)
    if len(data) > _MAX_BYTES:
        raise _unusable(path, "too big")
    return data


def _parse(path: Path, data: bytes) -> list[KnownPhone]:
    try:
        document = json.loads(data)
        rows = document["phones"]
        names = {f.name: f.type for f in fields(KnownPhone)}
        phones = []
        for row in rows:
            if set(row) != set(names):
                raise ValueError(f"a phone with keys {sorted(row)}")
            if not all(isinstance(row[k], int if k == "port" else str) for k in names):
                raise ValueError(f"a phone with a value of the wrong kind: {row.get('name')!r}")
            phones.append(KnownPhone(**row))
        return phones
    except (ValueError, KeyError, TypeError) as exc:
        raise _unusable(path, str(exc)) from exc


def known(state_dir: Path) -> list[KnownPhone]:
    """The remembered phones, in the order they were first paired (none if no file yet)."""
    path = _path(state_dir)
    data = _read_checked(path)
    return [] if data is None else _parse(path, data)


def _write(state_dir: Path, phones: list[KnownPhone]) -> None:
    path = _path(state_dir)
    text = json.dumps({"format": _FORMAT, "phones": [asdict(p) for p in phones]}, indent=2) + "\n"
    temporary = state_dir / f".{FILE_NAME}.{os.getpid()}.tmp"
    _check_folder(state_dir)
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
        directory = os.open(state_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise _unusable(path, f"cannot write it: {exc.strerror or exc}") from exc


def remember(state_dir: Path, phone: KnownPhone) -> None:
    """Insert the phone, or replace the one with its GUID (a phone paired again, or seen
    at a new address); its place in the list is kept."""
    phones = known(state_dir)
    taken = [p for p in phones if p.name == phone.name and p.guid != phone.guid]
    if taken:
        raise errors.UsageError(f"another remembered phone is already named {phone.name!r} (its GUID is "
                                f"{taken[0].guid}): choose another name or forget that one first")
    for index, old in enumerate(phones):
        if old.guid == phone.guid:
            phones[index] = phone
            break
    else:
        phones.append(phone)
    _write(state_dir, phones)


def _names(phones: list[KnownPhone]) -> str:
    return ", ".join(p.name for p in phones)


def lookup(state_dir: Path, name: str | None) -> KnownPhone:
    """The phone of that name; with no name, the only remembered one."""
    phones = known(state_dir)
    if not phones:
        raise errors.NoDeviceError("no phone is remembered yet: pair one first with `adbvoice pair`")
    if name is None:
        if len(phones) > 1:
            raise errors.SeveralDevicesError(f"several phones are remembered ({_names(phones)}): name one")
        return phones[0]
    for phone in phones:
        if phone.name == name:
            return phone
    raise errors.UsageError(f"no remembered phone is named {name!r} (remembered: {_names(phones)})")


def forget(state_dir: Path, name: str) -> KnownPhone:
    """Remove the phone of that name and return it (the phone itself still trusts this
    computer until its user revokes it in Settings › Wireless debugging)."""
    phone = lookup(state_dir, name)
    _write(state_dir, [p for p in known(state_dir) if p.guid != phone.guid])
    return phone
