"""Where each setting comes from: command-line flags, then `ADBVOICE_<NAME>` environment
variables, then the per-user config file, then the defaults.

Unattended runs (cron, systemd, `watch`) get their settings from the file and the
environment, so every problem there is one line naming the file, line and key (or the
variable), never a silently ignored typo.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import platformdirs

from adbvoice import errors
from adbvoice.archive.layout import DEFAULT_LAYOUT, Layout
from adbvoice.backup.config import BackupConfig
from adbvoice.phone.connect import ConnectOptions, parse_tcp_address
from adbvoice.speech.engine import DEFAULT_MODEL
from adbvoice.unattended.phones import default_state_dir
from adbvoice.unattended.wifi import WifiChoice

if sys.version_info >= (3, 11):
    import tomllib
else:  # tomllib is in the standard library from 3.11; tomli is the same code before
    import tomli as tomllib

DEFAULT_ARCHIVE = Path("~/WhatsApp Voice Notes")
DEFAULT_ADB_KEY = Path("~/.android/adbkey")
ENV_PREFIX = "ADBVOICE_"
FROM_FLAG = "command line"
FROM_DEFAULT = "default"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

Kind = Literal["path", "text", "flag", "list"]


@dataclass(frozen=True)
class Setting:
    name: str  # the key in the file; the variable is ADBVOICE_ + NAME
    kind: Kind
    default: object
    check: Callable[[str], object] | None = None  # raises the AdbVoiceError a bad value gets

    @property
    def variable(self) -> str:
        return ENV_PREFIX + self.name.upper()


SETTINGS = {
    s.name: s
    for s in (
        Setting("archive", "path", DEFAULT_ARCHIVE),
        Setting("tcp", "text", None, parse_tcp_address),
        Setting("serial", "text", None),
        Setting("adb_key", "path", DEFAULT_ADB_KEY),
        Setting("include_audio", "flag", False),
        Setting("layout", "text", DEFAULT_LAYOUT, Layout.parse),
        Setting("log_file", "path", None),
        Setting("notify", "flag", False),
        Setting("notify_always", "flag", False),  # notify also when nothing was new
        Setting("wifi", "flag", False),
        Setting("phone", "text", None),
        Setting("transcribe", "flag", False),
        Setting("model", "text", DEFAULT_MODEL),
        Setting("language", "text", None),
        Setting("languages", "list", ()),  # in the file a list of strings; ADBVOICE_LANGUAGES=en,es
    )
}


def config_path() -> Path:
    """The per-user config file: ~/.config/adbvoice/config.toml on Linux ($XDG_CONFIG_HOME)."""
    return platformdirs.user_config_path("adbvoice") / "config.toml"


@dataclass(frozen=True)
class Resolved:
    value: object  # Path (absolute), str, bool or None
    source: str  # FROM_FLAG, "ADBVOICE_TCP", "/home/u/.config/adbvoice/config.toml:3" or FROM_DEFAULT


@dataclass(frozen=True)
class Settings:
    resolved: dict[str, Resolved]

    def __getitem__(self, name: str):  # noqa: ANN204 - the value's type depends on the setting
        return self.resolved[name].value

    def source(self, name: str) -> str:
        return self.resolved[name].source


def resolve(flags: Mapping[str, object | None]) -> Settings:
    """Each setting from the first source that has it: flags (None = not given), the
    environment, the config file, the default. Paths come back absolute and expanded;
    every value is checked here, so every command reports a bad one the same way."""
    environ = os.environ
    path = config_path()
    from_file = read_config(path)
    resolved = {}
    for name, setting in SETTINGS.items():
        if flags.get(name) is not None:
            found = Resolved(_absolute(setting, flags[name], Path.cwd()), FROM_FLAG)
        elif environ.get(setting.variable, "") != "":
            value = _from_text(setting, environ[setting.variable], setting.variable)
            found = Resolved(_absolute(setting, value, Path.cwd()), setting.variable)
        elif name in from_file:
            value, line = from_file[name]
            found = Resolved(_absolute(setting, value, path.parent), f"{path}:{line}")
        else:
            found = Resolved(_absolute(setting, setting.default, Path.cwd()), FROM_DEFAULT)
        _check(setting, found)
        resolved[name] = found
    return Settings(resolved)


def _check(setting: Setting, found: Resolved) -> None:
    """A value that is unusable is blamed on its source: a flag keeps its own error (and
    exit code), a variable or the file's value becomes a ConfigError naming where it was set."""
    if setting.check is None or found.value is None:
        return
    try:
        setting.check(found.value)
    except errors.AdbVoiceError as exc:
        if found.source == FROM_FLAG:
            raise
        raise errors.ConfigError(f"{found.source}: {setting.name}: {exc}") from exc


def _absolute(setting: Setting, value: object, base: Path) -> object:
    """Paths are expanded (~) and made absolute against `base`: the working folder for
    flags and variables, the config file's own folder for the file (cron's working folder
    is not yours)."""
    if setting.kind != "path" or value is None:
        return value
    return base / Path(value).expanduser()


def _from_text(setting: Setting, text: str, where: str) -> object:
    if setting.kind == "list":
        return tuple(word.strip() for word in text.split(",") if word.strip())
    if setting.kind != "flag":
        return text
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise errors.ConfigError(f"{where}={text!r}: use 1/true/yes/on or 0/false/no/off")


def read_config(path: Path) -> dict[str, tuple[object, int]]:
    """The config file's settings with the line each is on; {} when there is no file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise errors.ConfigError(f"{path}: cannot read the config file: {reason}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise errors.ConfigError(_syntax_error(path, text, str(exc))) from exc
    found = {}
    for key, value in data.items():
        line = _line_of(text, key)
        where = f"{path}:{line}" if line else str(path)
        setting = SETTINGS.get(key)
        if setting is None:
            close = difflib.get_close_matches(key.replace("-", "_"), SETTINGS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else f"; known keys: {', '.join(SETTINGS)}"
            raise errors.ConfigError(f"{where}: {key}: unknown key{hint}")
        if setting.kind == "list":
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise errors.ConfigError(f"{where}: {key}: must be a list of quoted strings, such as [\"en\", \"es\"], not {value!r}")
            found[key] = (tuple(value), line)
            continue
        wanted = bool if setting.kind == "flag" else str
        if not isinstance(value, wanted):
            kind = "true or false" if wanted is bool else "a quoted string"
            raise errors.ConfigError(f"{where}: {key}: must be {kind}, not {value!r}")
        found[key] = (value, line)
    return found


def _line_of(text: str, key: str) -> int | None:
    """The line where `key` is set, as a bare or quoted key, a dotted key or a [table]."""
    pattern = re.compile(r"^\s*\[*\s*(?:" + re.escape(key) + r'|"' + re.escape(key) + r"\"|'" + re.escape(key)
                         + r"')\s*[=.\]]")
    for number, line in enumerate(text.splitlines(), 1):
        if pattern.match(line):
            return number
    return None


def _syntax_error(path: Path, text: str, message: str) -> str:
    """tomllib says `Invalid value (at line 3, column 9)`; we say `config.toml:3: layout: …`."""
    match = re.search(r"\(at line (\d+), column (\d+)\)$", message)
    if not match:
        return f"{path}: not valid TOML: {message}"
    line, column = int(match[1]), int(match[2])
    problem = message[: match.start()].strip()
    lines = text.splitlines()
    key = lines[line - 1].split("=", 1)[0].strip() if line <= len(lines) and "=" in lines[line - 1] else ""
    return f"{path}:{line}: {key + ': ' if key else ''}not valid TOML: {problem} (column {column})"


def backup_config(
    settings: Settings, *, dry_run: bool = False, auth_timeout_s: float = 60.0, io_timeout_s: float = 30.0
) -> BackupConfig:
    """The frozen config a backup runs with, from settings already checked by `resolve`."""
    return BackupConfig(
        archive=settings["archive"],
        connect=connect_options(settings, auth_timeout_s=auth_timeout_s, io_timeout_s=io_timeout_s),
        include_audio=settings["include_audio"],
        layout=Layout.parse(settings["layout"]),
        dry_run=dry_run,
    )


def wifi_choice(settings: Settings) -> WifiChoice | None:
    """`--wifi` (or `--phone NAME`): a remembered phone found by mDNS, instead of --tcp/USB."""
    if not (settings["wifi"] or settings["phone"]):
        return None
    if settings["tcp"]:
        raise errors.UsageError(
            f"--tcp ({settings.source('tcp')}) and --wifi ({settings.source('wifi' if settings['wifi'] else 'phone')}) "
            "both say where the phone is: keep one"
        )
    return WifiChoice(default_state_dir(), settings["phone"])


def connect_options(settings: Settings, *, auth_timeout_s: float = 60.0, io_timeout_s: float = 30.0) -> ConnectOptions:
    """How to reach the phone, for every command that talks to one."""
    return ConnectOptions(
        tcp=parse_tcp_address(settings["tcp"]) if settings["tcp"] else None,
        serial=settings["serial"],
        adb_key=settings["adb_key"],
        auth_timeout_s=auth_timeout_s,
        io_timeout_s=io_timeout_s,
    )
