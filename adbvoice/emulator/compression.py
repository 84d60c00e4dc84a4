"""Compressed file sync, as adbd offers it since Android 11 (compression_utils.h): one
brotli, LZ4-frame or zstd stream over the whole file, cut into DATA packets of at most
SYNC_DATA_MAX bytes. Google's adb 36 asks for it (`push -z`, `pull -z`) when the phone
announces it, as adbd does with sendrecv_v2_brotli, _lz4 and _zstd.

The three libraries are optional test tools (the `test` extra): a phone whose Python
lacks one simply does not announce that one, as an older adbd would not. This module is
their one home.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

BROTLI, LZ4, ZSTD = 1, 2, 4  # kSyncFlagBrotli, kSyncFlagLZ4, kSyncFlagZstd
MASK = BROTLI | LZ4 | ZSTD


class CodecError(Exception):
    """The host's compressed stream is broken (adbd: "decompress failed")."""


@dataclass(frozen=True)
class Codec:
    feature: str
    module: str
    encoder: Callable[[], Encoder]
    decoder: Callable[[], Decoder]


class Encoder:
    """Bytes in, compressed bytes out; finish() ends the stream."""

    def __init__(self, step: Callable[[bytes], bytes], end: Callable[[], bytes]) -> None:
        self.encode, self.finish = step, end


class Decoder:
    """Compressed bytes in, bytes out; finish() raises CodecError if the stream is cut."""

    def __init__(self, step: Callable[[bytes], bytes], done: Callable[[], bool]) -> None:
        self._step, self._done = step, done

    def decode(self, data: bytes) -> bytes:
        try:
            return self._step(data)
        except Exception as e:  # each library has its own error class
            raise CodecError(str(e)) from None

    def finish(self) -> None:
        if not self._done():
            raise CodecError("truncated stream")


def _brotli_encoder() -> Encoder:
    import brotli

    c = brotli.Compressor(quality=1)  # BrotliEncoder's BROTLI_PARAM_QUALITY
    return Encoder(c.process, c.finish)


def _brotli_decoder() -> Decoder:
    import brotli

    d = brotli.Decompressor()
    return Decoder(d.process, d.is_finished)


def _lz4_encoder() -> Encoder:
    import lz4.frame

    c = lz4.frame.LZ4FrameCompressor()
    started: list[bytes] = [c.begin()]

    def step(data: bytes) -> bytes:
        head = started.pop() if started else b""
        return head + c.compress(data)

    return Encoder(step, lambda: (started.pop() if started else b"") + c.flush())


def _lz4_decoder() -> Decoder:
    import lz4.frame

    d = lz4.frame.LZ4FrameDecompressor()
    return Decoder(d.decompress, lambda: d.eof)


def _zstd_encoder() -> Encoder:
    import zstandard

    c = zstandard.ZstdCompressor(level=1).compressobj()  # ZstdEncoder's ZSTD_c_compressionLevel
    return Encoder(c.compress, c.flush)


def _zstd_decoder() -> Decoder:
    import zstandard

    d = zstandard.ZstdDecompressor().decompressobj()
    return Decoder(d.decompress, lambda: d.eof)


_CODECS = {
    BROTLI: Codec("sendrecv_v2_brotli", "brotli", _brotli_encoder, _brotli_decoder),
    LZ4: Codec("sendrecv_v2_lz4", "lz4", _lz4_encoder, _lz4_decoder),
    ZSTD: Codec("sendrecv_v2_zstd", "zstandard", _zstd_encoder, _zstd_decoder),
}


def available() -> dict[int, Codec]:
    """The codecs whose library is installed, by sync flag."""
    return {flag: codec for flag, codec in _CODECS.items() if importlib.util.find_spec(codec.module)}


def features() -> tuple[str, ...]:
    return tuple(codec.feature for codec in available().values())
