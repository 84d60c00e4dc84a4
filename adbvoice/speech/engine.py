"""faster-whisper (CTranslate2 Whisper, int8 on the CPU): loading a model, hearing one note.

A model is named by a faster-whisper name (`base`, `small`, `large-v3-turbo`, …) or by the
path of a CTranslate2 model folder. A folder is loaded as it is and never touches the
network. A name is looked up in faster-whisper's cache first (no network); only a name that
is not on disk is downloaded, once — the only network access adbvoice ever makes — and
`HF_HUB_OFFLINE=1` forbids even that. faster_whisper is imported only inside `load`, so
the base install, and every command that does not transcribe, never pays for it.

Language: Whisper's own detection is unreliable on short notes (a 3-second English note
was heard as Thai in a trial), so a user may force one language, or list theirs: detection
then picks the likeliest of those, and below THRESHOLD falls back to the first of them.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from adbvoice import errors

DEFAULT_MODEL = "base"
THRESHOLD = 0.5  # below this probability a detected language is not trusted
COMPUTE_TYPE = "int8"  # CTranslate2's 8-bit weights: the fastest on a CPU, no GPU needed
BEAM_SIZE = 1  # greedy decoding; bench/transcribe.py measured what beams cost and bought
VAD_FILTER = False  # Silero VAD before decoding; see bench/results.md for what it bought
INSTALL_HINT = "pip install 'adbvoice[transcribe]'"


@dataclass(frozen=True)
class LanguageChoice:
    """`forced` wins; else detection restricted to `allowed` (first = the fallback); else free."""

    forced: str | None = None
    allowed: tuple[str, ...] = ()
    threshold: float = THRESHOLD


@dataclass(frozen=True)
class Heard:
    language: str
    probability: float | None
    how: str  # detected, forced, fallback, only (an English-only model)
    segments: list[tuple[float, float, str]]
    duration_s: float

    @property
    def text(self) -> str:
        return " ".join(text for _, _, text in self.segments)


class AudioUnreadable(Exception):
    """The file does not decode to audio; the message says why."""


def _printable(text: str) -> str:
    """A sentence as it may be stored and printed: no control characters (a model emits
    whatever tokens it learned; a terminal must never receive an escape sequence from one)."""
    return "".join(" " if unicodedata.category(c) == "Cc" else c for c in text).strip()


def model_label(spec: str) -> str:
    """How the catalog names the model: the name, or the folder's absolute path."""
    return str(Path(spec).expanduser().absolute()) if _is_path(spec) else spec


def _is_path(spec: str) -> bool:
    return "/" in spec or spec.startswith((".", "~")) or Path(spec).expanduser().is_dir()


class Engine:
    def __init__(self, model: Any, label: str) -> None:
        self._model = model
        self.label = label
        self.multilingual: bool = model.model.is_multilingual
        self.languages: list[str] = model.supported_languages

    def check(self, choice: LanguageChoice) -> None:
        """A language the model does not know is the user's to fix, before any note is heard.
        The list of the user's languages only narrows detection, which an English-only model
        does not do: it is not held against one."""
        allowed = choice.allowed if self.multilingual else ()
        for code in filter(None, (choice.forced, *allowed)):
            if code not in self.languages:
                known = "English only (en)" if not self.multilingual else "codes such as en, es, de, zh, ja, th"
                raise errors.LanguageError(f"the model {self.label} does not know the language {code!r} ({known})")

    def hear(self, path: Path, choice: LanguageChoice) -> Heard:
        from faster_whisper import decode_audio

        try:
            audio = decode_audio(str(path))
        except Exception as exc:  # noqa: BLE001 - PyAV raises many kinds; all mean "not audio"
            raise AudioUnreadable(f"cannot decode it: {exc}") from exc
        if len(audio) == 0:
            raise AudioUnreadable("it holds no audio")
        chosen, probability, how = self._language(audio, choice)
        segments, info = self._model.transcribe(
            audio, language=chosen, beam_size=BEAM_SIZE, vad_filter=VAD_FILTER, condition_on_previous_text=False
        )
        heard = [(round(s.start, 2), round(s.end, 2), text) for s in segments if (text := _printable(s.text))]
        language = chosen
        if chosen is None:  # detected by transcribe() itself
            language, probability = info.language, info.language_probability
        return Heard(language, probability, how, heard, info.duration)

    def _language(self, audio: Any, choice: LanguageChoice) -> tuple[str | None, float | None, str]:
        if not self.multilingual:
            return "en", 1.0, "only"
        if choice.forced:
            return choice.forced, None, "forced"
        if len(choice.allowed) == 1:
            return choice.allowed[0], None, "forced"
        if not choice.allowed:
            return None, None, "detected"  # transcribe() detects, in the same pass
        _, _, every = self._model.detect_language(audio)
        likely = {code: p for code, p in every if code in choice.allowed}
        best = max(choice.allowed, key=lambda code: likely.get(code, 0.0))
        if likely.get(best, 0.0) < choice.threshold:
            return choice.allowed[0], likely.get(best, 0.0), "fallback"
        return best, likely[best], "detected"


def load(spec: str, *, threads: int | None = None) -> Engine:
    """The model `spec` names, ready on the CPU (`threads`: all cores by default)."""
    try:
        from faster_whisper import WhisperModel, available_models
    except ImportError as exc:
        raise errors.TranscribeExtraMissingError(
            f"transcription needs faster-whisper, which is not installed: {INSTALL_HINT}"
        ) from exc
    if _is_path(spec):
        folder = Path(spec).expanduser().absolute()
        if not ((folder / "model.bin").is_file() and (folder / "config.json").is_file()):
            raise errors.ModelNotFoundError(
                f"{folder} is not a speech model folder (a CTranslate2 Whisper model has model.bin and config.json)"
            )
    elif spec in available_models():
        folder = Path(_fetch(spec))
    else:
        raise errors.ModelNotFoundError(
            f"no speech model is called {spec!r}: use one of {', '.join(available_models())}, or a model folder's path"
        )
    try:
        model = _whisper(WhisperModel, str(folder), threads or os.cpu_count() or 1)
    except (RuntimeError, ValueError, OSError) as exc:
        raise errors.ModelNotFoundError(f"{folder} is not a usable speech model: {exc}") from exc
    return Engine(model, model_label(spec))


@lru_cache(maxsize=2)
def _whisper(whisper_model: type, folder: str, threads: int) -> Any:
    """A loaded model is kept: `watch` transcribes after every backup, and loading one
    costs a second (tiny) to many (large) and hundreds of MB read each time."""
    return whisper_model(folder, device="cpu", compute_type=COMPUTE_TYPE, cpu_threads=threads)


def _fetch(name: str) -> str:
    """The cached folder of a model by name, downloading it only when it is not on disk."""
    from faster_whisper import download_model

    try:
        return download_model(name, local_files_only=True)
    except Exception:  # noqa: BLE001 - huggingface_hub's "not in the cache", in its several forms
        pass
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise errors.ModelUnavailableError(
            f"the model {name!r} is not on disk, and HF_HUB_OFFLINE forbids downloading it: "
            "unset it, or give --model the path of a model folder"
        )
    try:
        return download_model(name)
    except Exception as exc:  # noqa: BLE001 - any failure to download leaves the same choice to the user
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise errors.ModelUnavailableError(
            f"the model {name!r} is not on disk and could not be downloaded ({reason[:200]}); "
            "connect to the network once, or give --model the path of a model folder"
        ) from exc
