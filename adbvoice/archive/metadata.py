"""Audio metadata for the catalog: the one module that imports mutagen.

Every mutagen call goes through `read_audio_info`, so a broken, truncated or unknown file
becomes an `AudioInfo` whose `error` says why, never an exception (the beets/mediafile
pattern). The product archives such files anyway and flags them in the catalog.

Reading never changes a file: we open it ourselves read-only and hand mutagen the file
object, so no mutagen code path can get a writable handle.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import mutagen
from mutagen.ogg import OggFileType, OggPage
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggspeex import OggSpeex
from mutagen.oggtheora import OggTheora
from mutagen.oggvorbis import OggVorbis

from adbvoice.display import capped

# Ogg granule positions of Opus count 48 kHz samples whatever the input rate (RFC 7845 §4);
# mutagen divides by 48000 and subtracts the pre-skip, which matches opusinfo. A reader that
# divides by the OpusHead input rate reports 3x too long for WhatsApp's 16 kHz notes (tinytag #81).

# Opus goes down to 6 kbit/s and AMR-NB to 4.75 kbit/s: a file claiming fewer than 500 bits
# per second of audio lies about its length (say, a last granule of 2^63-1), and a catalog
# or a summary of listening time must not believe it.
MIN_PLAUSIBLE_BITRATE = 500
# `info` shows at most this many tags, and values of a tag: a 4 MB tag block is not read out.
TAGS_SHOWN = 100

# The largest possible Ogg page: 27-byte header, 255 lacing values, 255 segments of 255 bytes.
_MAX_OGG_PAGE = 27 + 255 + 255 * 255

# An Ogg page's magic: only mutagen's Ogg types need to score it (scoring all of mutagen's
# types took three times as long as parsing a note).
_OGG_TYPES = [OggOpus, OggVorbis, OggFLAC, OggSpeex, OggTheora]

_CODECS = {
    "OggOpus": "opus",
    "OggVorbis": "vorbis",
    "OggFLAC": "flac",
    "OggSpeex": "speex",
    "OggTheora": "theora",
    "FLAC": "flac",
    "MP3": "mp3",
    "EasyMP3": "mp3",
    "AAC": "aac",
    "AC3": "ac3",
    "WAVE": "pcm",
    "AIFF": "pcm",
    "ASF": "wma",
    "MonkeysAudio": "ape",
    "WavPack": "wavpack",
    "Musepack": "musepack",
    "TrueAudio": "tta",
    "OptimFROG": "ofr",
    "DSF": "dsd",
    "DSDIFF": "dsd",
}


@dataclass(frozen=True)
class AudioInfo:
    """What the catalog records about one file's audio; every field may be unknown."""

    codec: str | None = None
    duration_s: float | None = None
    sample_rate: int | None = None  # for Opus the OpusHead input rate (16000 for WhatsApp), not 48000
    channels: int | None = None
    bitrate: int | None = None  # bits per second; size/duration where the container has no nominal
    vendor: str | None = None
    error: str | None = None  # None when readable, else a short human reason

    @property
    def readable(self) -> bool:
        return self.error is None

    def catalog_columns(self) -> dict[str, object]:
        """These fields under the names of the catalog's notes columns."""
        return {
            "codec": self.codec, "duration_s": self.duration_s, "sample_rate": self.sample_rate,
            "channels": self.channels, "bitrate": self.bitrate, "vendor": self.vendor, "audio_error": self.error,
        }


# Voice notes are mostly 5–100 KB: read whole, so that mutagen's dozens of seeks and
# small reads per file cost no system calls.
READ_WHOLE = 4 << 20


def read_audio_info(path: Path) -> AudioInfo:
    """Read `path`'s audio metadata; never raises for a broken or unknown file, never writes.
    The name counts: mutagen knows ADTS AAC by its extension."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size <= READ_WHOLE:
                return audio_info_of(f.read(), path.name)
            return _read(f, size)
    except OSError as e:
        return AudioInfo(error=f"cannot read file: {e.strerror or e}")


def audio_info_of(data: bytes, name: str) -> AudioInfo:
    """The same for a file's bytes in memory; `name` is the file's (its extension counts)."""
    whole = io.BytesIO(data)
    whole.name = name  # what mutagen scores file types by, besides the bytes
    return _read(whole, len(data))


def read_tags(path: Path) -> dict[str, list[str]]:
    """The file's tags (Vorbis comments, ID3 frames, MP4 atoms) as text, for `info`;
    binary values (cover art) as their length. Never raises, never writes: {} when none."""
    try:
        with open(path, "rb") as f:
            tags = mutagen.File(f).tags
            keys = list(tags.keys())[:TAGS_SHOWN]
            return {capped(str(key), 64): [_tag_text(v) for v in _values(tags[key])[:TAGS_SHOWN]] for key in keys}
    except Exception:  # unreadable, not audio, or no tags: there are none to show
        return {}


def _values(value: object) -> list[object]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _tag_text(value: object) -> str:
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return _short(str(value), 200)


def _read(f: BinaryIO, size: int) -> AudioInfo:
    if size == 0:
        return AudioInfo(error="empty file")
    magic = f.read(9)
    f.seek(0)
    if magic.startswith(b"#!AMR"):
        codec = "amr-wb" if magic.startswith(b"#!AMR-WB\n") else "amr"
        return AudioInfo(codec=codec, error="AMR audio, which mutagen cannot read")
    try:
        audio = mutagen.File(f, options=_OGG_TYPES if magic.startswith(b"OggS") else None)
    except Exception as e:  # on hostile bytes mutagen also raises struct.error, IndexError, ...
        return AudioInfo(error=_short(f"unreadable audio: {e}"))
    if audio is None:
        return AudioInfo(error="not an audio file")
    try:
        return _describe(audio, f, size)
    except Exception as e:  # the same, from the objects mutagen built out of such bytes
        return AudioInfo(error=_short(f"unreadable audio: {e}"))


def _describe(audio: mutagen.FileType, f: BinaryIO, size: int) -> AudioInfo:
    info = audio.info
    kind = type(audio).__name__
    codec = _CODECS.get(kind, kind.lower())
    if kind == "MP4":
        mp4_codec = getattr(info, "codec", "") or ""
        codec = "aac" if mp4_codec.startswith("mp4a.40") else (mp4_codec or "mp4")
    duration = float(info.length) if info.length and info.length > 0 else None
    sample_rate = getattr(info, "sample_rate", None) or None
    error = None
    if kind == "OggOpus":
        sample_rate = _opus_input_rate(f)
    if isinstance(audio, OggFileType):
        error = _ogg_ending_problem(f, size)
    if duration is not None and duration > size * 8 / MIN_PLAUSIBLE_BITRATE:
        error = error or f"implausible duration ({duration:.3g} s in {size} bytes)"
        duration = None
    if duration is None and error is None:
        error = "no audio data"
    nominal = getattr(info, "bitrate", None) if kind != "OggOpus" else None
    bitrate = int(nominal) if nominal else (round(size * 8 / duration) if duration else None)
    return AudioInfo(
        codec=codec,
        duration_s=duration,
        sample_rate=sample_rate,
        channels=getattr(info, "channels", None) or None,
        bitrate=bitrate,
        vendor=_vendor(audio, info),
        error=error,
    )


def _opus_input_rate(f: BinaryIO) -> int | None:
    """The OpusHead input sample rate, which mutagen parses but does not keep."""
    f.seek(0)
    head = OggPage(f).packets[0]
    if not head.startswith(b"OpusHead") or len(head) < 16:
        return None
    return struct.unpack_from("<I", head, 12)[0] or None


def _ogg_ending_problem(f: BinaryIO, size: int) -> str | None:
    """Why the Ogg stream does not end on a whole page, or None.

    mutagen reports the duration of the last complete page, so a note cut mid-copy still
    gets a plausible duration; we flag it so the catalog does not call it whole. A stream
    that ends on a whole page without the end-of-stream flag is not flagged: AOSP's
    OggWriter never sets that flag (chenxiaolong/BCR#922), so real notes may lack it.
    """
    start = max(0, size - _MAX_OGG_PAGE)
    f.seek(start)
    tail = f.read()
    at = tail.rfind(b"OggS")
    while at >= 0:
        # A page is real if it re-encodes to the same bytes (mutagen recomputes the CRC);
        # "OggS" can also occur by chance inside audio data.
        try:
            page_bytes = OggPage(io.BytesIO(tail[at:])).write()
            if page_bytes == tail[at:]:
                return None
        except (mutagen.MutagenError, EOFError, ValueError, struct.error):
            pass
        at = tail.rfind(b"OggS", 0, at)
    return "truncated Ogg stream: the last page is incomplete"


def _vendor(audio: mutagen.FileType, info: object) -> str | None:
    """The encoder's name, wherever this format keeps it."""
    tags = audio.tags
    candidates = [getattr(tags, "vendor", None)]  # Vorbis comments: Ogg Opus/Vorbis, FLAC
    if tags is not None and type(audio).__name__ == "MP4":
        candidates += tags.get("\xa9too", [])
    if tags is not None and hasattr(tags, "getall"):
        candidates += [str(frame) for frame in tags.getall("TSSE")]  # ID3 "encoded with"
    candidates.append(getattr(info, "encoder_info", None))  # MP3's LAME/Xing header
    found = next((str(c).strip() for c in candidates if c and str(c).strip()), None)
    return capped(found) if found else None  # stored in the catalog: a vendor of 100 KB was


def _short(reason: str, limit: int = 160) -> str:
    first_line = reason.splitlines()[0] if reason else "unreadable audio"
    return first_line if len(first_line) <= limit else first_line[: limit - 1] + "…"
