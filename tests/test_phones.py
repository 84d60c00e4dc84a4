"""Remembered phones: a private file in the state folder, replaced whole, checked before use."""

from __future__ import annotations

import os

import pytest

from adbvoice import errors
from adbvoice.unattended.phones import KnownPhone, default_state_dir, forget, known, lookup, remember

PIXEL = KnownPhone("pixel", "adb-1A2B3C-x9Yz", "Pixel 7", "1A2B3C", "192.168.1.20", 37001)
TABLET = KnownPhone("tablet", "adb-77EE-q1", "SM-X200", "R52T", "192.168.1.31", 41000)


def test_a_new_computer_remembers_no_phone_and_says_to_pair_one(tmp_path):
    assert known(tmp_path / "state") == []
    with pytest.raises(errors.NoDeviceError, match="adbvoice pair"):
        lookup(tmp_path / "state", None)


def test_phones_are_remembered_privately_and_replaced_by_guid(tmp_path):
    state = tmp_path / "state"
    remember(state, PIXEL)
    remember(state, TABLET)
    moved = KnownPhone("pixel", PIXEL.guid, "Pixel 7", "1A2B3C", "192.168.1.44", 39999)
    remember(state, moved)
    assert known(state) == [moved, TABLET]
    assert os.stat(state / "phones.json").st_mode & 0o777 == 0o600
    assert os.stat(state).st_mode & 0o777 == 0o700
    assert [p.name for p in state.iterdir()] == ["phones.json"]


def test_lookup_names_one_or_takes_the_only_one(tmp_path):
    remember(tmp_path, PIXEL)
    assert lookup(tmp_path, None) == PIXEL
    remember(tmp_path, TABLET)
    assert lookup(tmp_path, "tablet") == TABLET
    with pytest.raises(errors.SeveralDevicesError, match="pixel, tablet"):
        lookup(tmp_path, None)
    with pytest.raises(errors.UsageError, match="no remembered phone is named 'laptop'"):
        lookup(tmp_path, "laptop")


def test_forget_removes_one_phone_and_an_unknown_name_is_an_error(tmp_path):
    remember(tmp_path, PIXEL)
    remember(tmp_path, TABLET)
    assert forget(tmp_path, "pixel") == PIXEL
    assert known(tmp_path) == [TABLET]
    with pytest.raises(errors.UsageError, match="'pixel'"):
        forget(tmp_path, "pixel")


def test_two_phones_cannot_share_a_name(tmp_path):
    remember(tmp_path, PIXEL)
    with pytest.raises(errors.UsageError, match="already named 'pixel'"):
        remember(tmp_path, KnownPhone("pixel", "adb-OTHER", "", "", "10.0.0.2", 5555))
    assert known(tmp_path) == [PIXEL]


def test_a_file_others_can_read_a_link_or_garbage_is_refused(tmp_path):
    remember(tmp_path, PIXEL)
    path = tmp_path / "phones.json"
    path.chmod(0o644)
    with pytest.raises(errors.ConfigError, match="readable by others"):
        known(tmp_path)
    path.chmod(0o600)
    path.write_text("{not json")
    with pytest.raises(errors.ConfigError, match="not usable"):
        known(tmp_path)
    path.unlink()
    (tmp_path / "elsewhere.json").write_text('{"phones": []}')
    path.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(errors.ConfigError, match="not usable"):
        known(tmp_path)


def test_a_state_folder_that_is_a_link_or_that_others_may_write_into_is_refused(tmp_path):
    real = tmp_path / "real"
    remember(real, PIXEL)
    (tmp_path / "state").symlink_to(real)
    with pytest.raises(errors.ConfigError, match="not a folder"):
        known(tmp_path / "state")
    with pytest.raises(errors.ConfigError, match="not a folder"):
        remember(tmp_path / "state", TABLET)
    real.chmod(0o777)
    with pytest.raises(errors.ConfigError, match="others may write"):
        known(real)
    real.chmod(0o755)
    assert known(real) == [PIXEL]


def test_the_state_folder_is_under_xdg_state_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_state_dir() == tmp_path / "xdg" / "adbvoice"
