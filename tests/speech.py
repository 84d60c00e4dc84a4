"""The speech models and spoken notes the transcription tests use.

The models are test tools, unpacked by .ci/install-test-models into .venv/test-models/:
Whisper tiny.en (English only, the fast one) and base (multilingual). The notes are real
Ogg Opus files of espeak-ng speech from fixtures/audio/, placed where WhatsApp keeps them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from adbvoice.emulator.phonetree import VOICE

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / ".venv" / "test-models"
AUDIO = ROOT / "fixtures" / "audio"
WEEK = "202418"
# name on the phone → (fixture, what it says: words a search finds it by)
SPOKEN = {
    "PTT-20240429-WA0001.opus": ("speech-en-birthday.opus", "Happy birthday, grandma! We sang for you in the kitchen tonight."),
    "PTT-20240430-WA0002.opus": ("voice-4s.opus", "Hi, I'm running about ten minutes late, see you at the station."),
    "PTT-20240501-WA0003.opus": ("speech-es-birthday.opus", "La canción de cumpleaños para la abuela fue preciosa."),
    "PTT-20240502-WA0004.opus": ("not-audio.opus", None),
    "PTT-20240503-WA0005.opus": ("empty.opus", None),
}


def model(name: str) -> Path:
    folder = MODELS / name
    if not (folder / "model.bin").is_file():
        pytest.fail(f"the test model {name} is not installed: run .ci/install-test-models")
    return folder


def spoken_phone(root: Path) -> Path:
    """A phone's /sdcard holding the spoken notes (and two that hold no audio)."""
    week = root / VOICE / WEEK
    week.mkdir(parents=True)
    for number, (name, (fixture, _)) in enumerate(SPOKEN.items()):
        shutil.copyfile(AUDIO / fixture, week / name)
        when = 1714395600 + number * 86400  # 2024-04-29 13:00 UTC, a day apart
        os.utime(week / name, (when, when))
    return root


def archive_path_of(phone_name: str) -> str:
    day = phone_name[4:12]
    return f"{day[:4]}/{day[4:6]}/{day[6:]}/{phone_name}"
