"""A person sets adbvoice up once, in a config file or the environment, and every command
follows it: flags first, then ADBVOICE_<NAME> variables, then the file, then the defaults."""

from __future__ import annotations

import json

import pytest

from tests.conftest import archived_files, free_port, run_cli


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    path = tmp_path / "xdg" / "adbvoice" / "config.toml"
    path.parent.mkdir(parents=True)
    return path


def shown(result) -> dict[str, tuple[str, str]]:
    """`config show` as setting → (value, source)."""
    assert result.exit_code == 0, result.stderr
    found = {}
    for line in result.stdout.splitlines():
        if line.startswith("# "):
            name, rest = line[2:].split(": ", 1)
            found[name] = ("not set", rest.strip().removeprefix("not set").strip(" ()"))
        else:
            assignment, source = line.split("  # ")
            name, value = assignment.split(" = ", 1)
            found[name] = (json.loads(value), source)
    return found


def test_config_path_is_the_per_user_config_folder(config_file, tmp_path):
    assert run_cli("config", "path").stdout.strip() == str(config_file)


def test_config_show_names_where_every_setting_comes_from(config_file, tmp_path, home, monkeypatch):
    defaults = shown(run_cli("config", "show"))
    assert defaults == {
        "archive": (str(home / "WhatsApp Voice Notes"), "default"),
        "tcp": ("not set", "default"),
        "serial": ("not set", "default"),
        "adb_key": (str(home / ".android" / "adbkey"), "default"),
        "include_audio": (False, "default"),
        "layout": ("{year}/{month}/{day}/{name}", "default"),
        "log_file": ("not set", "default"),
        "notify": (False, "default"),
        "notify_always": (False, "default"),
        "wifi": (False, "default"),
        "phone": ("not set", "default"),
        "transcribe": (False, "default"),
        "model": ("base", "default"),
        "language": ("not set", "default"),
        "languages": ([], "default"),
    }

    config_file.write_text(
        "# my phone\n"
        'archive = "~/Voice"\n'
        'tcp = "192.168.1.20"\n'
        'serial = "R58M12345"\n'
        'adb_key = "keys/adbkey"\n'
        "include_audio = true\n"
        'layout = "{device}/{name}"\n'
        'log_file = "/var/tmp/adbvoice.log"\n'
        "notify = true\n"
        "notify_always = false\n"
        "wifi = true\n"
        'phone = "pixel"\n'
        "transcribe = true\n"
        'model = "small"\n'
        'language = "es"\n'
        'languages = ["en", "es"]\n'
    )
    from_file = shown(run_cli("config", "show"))
    assert from_file == {
        "archive": (str(home / "Voice"), f"{config_file}:2"),
        "tcp": ("192.168.1.20", f"{config_file}:3"),
        "serial": ("R58M12345", f"{config_file}:4"),
        "adb_key": (str(config_file.parent / "keys" / "adbkey"), f"{config_file}:5"),  # next to the file
        "include_audio": (True, f"{config_file}:6"),
        "layout": ("{device}/{name}", f"{config_file}:7"),
        "log_file": ("/var/tmp/adbvoice.log", f"{config_file}:8"),
        "notify": (True, f"{config_file}:9"),
        "notify_always": (False, f"{config_file}:10"),
        "wifi": (True, f"{config_file}:11"),
        "phone": ("pixel", f"{config_file}:12"),
        "transcribe": (True, f"{config_file}:13"),
        "model": ("small", f"{config_file}:14"),
        "language": ("es", f"{config_file}:15"),
        "languages": (["en", "es"], f"{config_file}:16"),
    }

    monkeypatch.chdir(tmp_path)
    environment = {
        "ARCHIVE": ("elsewhere", str(tmp_path / "elsewhere")),  # relative to the working folder
        "TCP": ("10.0.0.7:5556", "10.0.0.7:5556"),
        "SERIAL": ("XYZ", "XYZ"),
        "ADB_KEY": ("/etc/adbkey", "/etc/adbkey"),
        "INCLUDE_AUDIO": ("off", False),
        "LAYOUT": ("{year}/{name}", "{year}/{name}"),
        "LOG_FILE": ("~/log.txt", str(home / "log.txt")),
        "NOTIFY": ("no", False),
        "NOTIFY_ALWAYS": ("1", True),
        "WIFI": ("on", True),
        "PHONE": ("tablet", "tablet"),
        "TRANSCRIBE": ("no", False),
        "MODEL": ("/models/tiny.en", "/models/tiny.en"),
        "LANGUAGE": ("de", "de"),
        "LANGUAGES": ("de, fr", ["de", "fr"]),
    }
    for name, (text, _) in environment.items():
        monkeypatch.setenv(f"ADBVOICE_{name}", text)
    from_env = shown(run_cli("config", "show"))
    assert from_env == {name.lower(): (value, f"ADBVOICE_{name}") for name, (_, value) in environment.items()}


def test_flags_beat_the_environment_which_beats_the_file_which_beats_the_defaults(
    phone, phone_tree, config_file, tmp_path, monkeypatch
):
    dead = f"127.0.0.1:{free_port()}"
    config_file.write_text(f'tcp = "{dead}"\nlayout = "{{device}}/{{name}}"\narchive = "from-file"\n')

    # The file alone: its phone address (nobody there) and its archive.
    result = run_cli("backup")
    assert result.exit_code == 16 and dead in result.stderr

    # The environment beats the file: the phone is found, the file's layout still applies.
    monkeypatch.setenv("ADBVOICE_TCP", phone.address)
    result = run_cli("backup")
    assert result.exit_code == 3, result.stderr
    from_file = config_file.parent / "from-file"
    assert {p.split("/")[0] for p in archived_files(from_file)} == {"Pixel_7"}

    # A flag beats both.
    result = run_cli("backup", tmp_path / "from-flag", "--tcp", dead, "--layout", "{year}/{name}")
    assert result.exit_code == 16 and dead in result.stderr
    result = run_cli("backup", tmp_path / "from-flag", "--layout", "{year}/{name}")
    assert result.exit_code == 3
    assert all(p.count("/") == 1 for p in archived_files(tmp_path / "from-flag"))

    # --no-include-audio beats a file's include_audio = true.
    config_file.write_text(f'tcp = "{phone.address}"\ninclude_audio = true\n')
    monkeypatch.delenv("ADBVOICE_TCP")
    assert run_cli("backup", tmp_path / "no-audio", "--no-include-audio").exit_code == 3
    assert not any("AUD-" in p for p in archived_files(tmp_path / "no-audio"))
    assert run_cli("backup", tmp_path / "audio").exit_code == 3
    assert any("AUD-" in p for p in archived_files(tmp_path / "audio"))

    # Without the file, the defaults: USB, where there is no phone.
    config_file.unlink()
    assert run_cli("backup", tmp_path / "x").exit_code == 10


def test_ls_reads_the_archive_named_in_the_config_file(phone, config_file, tmp_path):
    config_file.write_text(f'archive = "{tmp_path / "voice"}"\n')
    assert run_cli("backup", "--tcp", phone.address).exit_code == 3
    assert len(run_cli("ls").stdout.splitlines()) == len(archived_files(tmp_path / "voice"))


@pytest.mark.parametrize(
    ("content", "line", "needles"),
    [
        ('archive = "x"\ntcp = 192.168.1.20\n', 2, ["tcp", "not valid TOML"]),
        ('archive = "x"\n\ninclude-audio = true\n', 3, ["include-audio", "unknown key", "include_audio?"]),
        ("frobnicate = 1\n", 1, ["frobnicate", "unknown key", "known keys: archive"]),
        ('# mine\ninclude_audio = "yes"\n', 2, ["include_audio", "true or false"]),
        ('[tcp]\nhost = "x"\n', 1, ["tcp", "quoted string"]),
        ('tcp = "phone:99999"\n', 1, ["tcp", "port"]),
        ('layout = "../{name}"\n', 1, ["layout", ".."]),
        ('archive = "a"\narchive = "b"\n', 2, ["archive", "not valid TOML"]),
    ],
)
def test_a_bad_config_file_is_one_line_naming_file_line_and_key(config_file, content, line, needles):
    config_file.write_text(content)
    for command in (["config", "show"], ["backup"], ["ls"], ["watch"], ["schedule", "--every", "1h", "--cron"]):
        result = run_cli(*command)
        assert result.exit_code == 26, (command, result.stdout, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert result.stderr.startswith(f"adbvoice: {config_file}:{line}: "), result.stderr
        for needle in needles:
            assert needle in result.stderr


def test_an_unreadable_config_file_and_a_bad_variable_are_named(config_file, monkeypatch):
    config_file.write_bytes(b'archive = "\xff"\n')
    result = run_cli("config", "show")
    assert result.exit_code == 26 and str(config_file) in result.stderr
    config_file.unlink()
    monkeypatch.setenv("ADBVOICE_INCLUDE_AUDIO", "maybe")
    result = run_cli("backup")
    assert result.exit_code == 26
    assert result.stderr.strip() == "adbvoice: ADBVOICE_INCLUDE_AUDIO='maybe': use 1/true/yes/on or 0/false/no/off"
    monkeypatch.setenv("ADBVOICE_INCLUDE_AUDIO", "1")
    monkeypatch.setenv("ADBVOICE_TCP", "phone:0")
    result = run_cli("backup")
    assert result.exit_code == 26 and result.stderr.startswith("adbvoice: ADBVOICE_TCP: tcp: ")
