"""A fake phone's shared storage (/sdcard) as a local folder, laid out the way WhatsApp does.

The emulated phone serves this folder; tests, benchmarks and `adbvoice demo` fill it from here.
Nothing in this module talks ADB: only `PhoneNote.local_path` exists on this machine.

Every note is a real Ogg Opus file rebuilt from a fixture voice note (`fixtures/audio/voice-*.opus`
in a source checkout). The backup deduplicates by SHA-256, so each note gets its own OpusTags
comment (its phone path), and its size comes from repeating the fixture's audio pages (a
bigger note is a longer note, about 2.5 KB per second as WhatsApp's) plus OpusTags padding to
hit the size exactly. Pages are renumbered, their granule positions continued and their CRCs
recomputed, so mutagen, ffprobe and opusinfo read every note whole.

Times: the phone clock is UTC and every note is stamped between 10:00 and 15:00, so the date
in its name is also its mtime's date in any time zone from UTC-10 to UTC+9.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "audio"
SAMPLES = Path(__file__).resolve().parent / "samples"

VOICE = "Android/media/com.whatsapp/WhatsApp/Media/WhatsApp Voice Notes"
BUSINESS = "Android/media/com.whatsapp.w4b/WhatsApp Business/Media/WhatsApp Business Voice Notes"
LEGACY = "WhatsApp/Media/WhatsApp Voice Notes"
LEGACY_BUSINESS = "WhatsApp Business/Media/WhatsApp Business Voice Notes"
AUDIO = "Android/media/com.whatsapp/WhatsApp/Media/WhatsApp Audio"
PLACES = {"voice": VOICE, "business": BUSINESS, "legacy": LEGACY, "legacy-business": LEGACY_BUSINESS}
PHONE_ROOT = "/sdcard"
VENDOR = "WhatsApp"


@dataclass(frozen=True)
class PhoneNote:
    """One file written into the tree; `is_note` says whether a backup must copy it."""

    phone_path: str
    local_path: Path
    size: int
    mtime: int
    sha256: str
    kind: str  # voice | business | legacy | legacy-business | audio | broken | unrelated
    is_note: bool


@dataclass
class PhoneTree:
    """Everything written under `root`, including files a backup must leave alone."""

    root: Path
    notes: list[PhoneNote] = field(default_factory=list)


# --- Ogg Opus ----------------------------------------------------------------------------

_PAGE_HEADER = struct.Struct("<4sBBqIIIB")
_CONTINUED, _EOS = 0x01, 0x04
_BITSWAP = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def _ogg_crc(page: bytes) -> bytes:
    """Ogg's CRC-32 (unreflected) from zlib's reflected one on bit-swapped bytes, as mutagen
    does: C speed, where a Python loop would make 10,000 notes take minutes."""
    crc = ~zlib.crc32(page.translate(_BITSWAP), 0xFFFFFFFF) & 0xFFFFFFFF
    return crc.to_bytes(4, "big").translate(_BITSWAP)


def _page(flags: int, granule: int, serial: int, sequence: int, lacing: bytes, body: bytes) -> bytes:
    page = _PAGE_HEADER.pack(b"OggS", 0, flags, granule, serial, sequence, 0, len(lacing)) + lacing + body
    return page[:22] + _ogg_crc(page) + page[26:]


@dataclass(frozen=True)
class _AudioPage:
    flags: int
    granule: int
    lacing: bytes
    body: bytes


@dataclass(frozen=True)
class _Seed:
    """A fixture note split into what we keep (OpusHead page, audio pages) and what we rewrite."""

    head_page: bytes
    serial: int
    pages: tuple[_AudioPage, ...]
    samples: int  # 48 kHz samples in all audio packets, trimmed end included
    audio_size: int


def _split_pages(data: bytes) -> Iterator[tuple[bytes, int, int, int, bytes, bytes]]:
    offset = 0
    while offset < len(data):
        _, _, flags, granule, serial, _, _, count = _PAGE_HEADER.unpack_from(data, offset)
        lacing = data[offset + 27 : offset + 27 + count]
        end = offset + 27 + count + sum(lacing)
        yield data[offset:end], flags, granule, serial, lacing, data[offset + 27 + count : end]
        offset = end


def _packet_samples(packet: bytes) -> int:
    """48 kHz samples in one Opus packet, from its TOC byte (RFC 6716 section 3.1)."""
    config, code = packet[0] >> 3, packet[0] & 3
    if config < 12:
        frame = (480, 960, 1920, 2880)[config & 3]
    elif config < 16:
        frame = (480, 960)[config & 1]
    else:
        frame = (120, 240, 480, 960)[config & 3]
    frames = 1 if code == 0 else 2 if code < 3 else packet[1] & 0x3F
    return frame * frames


def _load_seed(path: Path) -> _Seed:
    pages = list(_split_pages(path.read_bytes()))
    head_page, _, _, serial, _, _ = pages[0]
    first_audio = 1
    while pages[first_audio][4][-1] == 255:  # OpusTags continues on the next page
        first_audio += 1
    audio = tuple(_AudioPage(p[1], p[2], p[4], p[5]) for p in pages[first_audio + 1 :])
    lacing = b"".join(p.lacing for p in audio)
    body = b"".join(p.body for p in audio)
    samples, start, length = 0, 0, 0
    for value in lacing:
        length += value
        if value < 255:
            if length:
                samples += _packet_samples(body[start : start + length])
            start, length = start + length, 0
    size = sum(len(p[0]) for p in pages[first_audio + 1 :])
    return _Seed(head_page, serial, audio, samples, size)


@lru_cache(maxsize=None)
def _seeds(folder: Path, pattern: str) -> tuple[_Seed, ...]:
    paths = sorted(folder.glob(pattern))
    if not paths:
        raise FileNotFoundError(f"no {pattern} in {folder}: build_phone_tree needs a source checkout's fixtures")
    return tuple(_load_seed(p) for p in paths)


def _tags_packet(comment: str, padding: int) -> bytes:
    vendor, text = VENDOR.encode(), comment.encode()
    return (
        b"OpusTags"
        + struct.pack("<I", len(vendor))
        + vendor
        + struct.pack("<II", 1, len(text))
        + text
        + bytes(padding)  # padding whose first byte has its low bit clear may be dropped (RFC 7845 5.2)
    )


def _tags_bytes(length: int, pages: int) -> int:
    return length + length // 255 + 1 + 27 * pages


def _tags_layout(base: int, target: int) -> tuple[int, int] | None:
    """(packet length >= base, page count) whose pages take exactly `target` bytes, if any.

    A packet of L bytes has L//255 + 1 lacing values, so some totals are unreachable with
    one page count; another page (27 bytes more header) reaches them."""
    for pages in range(1, target // 27 + 1):
        a, b = divmod(target - 27 * pages - 1, 256)  # L + L//255 = 256a + b when L = 255a + b
        length = 255 * a + b
        if length < base:
            return None
        if b < 255 and math.ceil((a + 1) / 255) <= pages <= a + 1:
            return length, pages
    return None


def _plan_note(seed: _Seed, base: int, size: int) -> tuple[int, int, int]:
    """(repetitions, tags packet length, tags pages) for a note of `size` bytes, or the
    smallest note above it when `size` cannot be met exactly."""
    fixed = len(seed.head_page)
    smallest = _tags_bytes(base, 1)
    reps = max(1, (size - fixed - smallest) // seed.audio_size)
    for reps_try in (reps, reps - 1):  # one repetition fewer leaves room for any padding
        if reps_try >= 1:
            layout = _tags_layout(base, size - fixed - reps_try * seed.audio_size)
            if layout:
                return (reps_try, *layout)
    target = max(size - fixed - reps * seed.audio_size, smallest)
    while not (layout := _tags_layout(base, target)):
        target += 1
    return (reps, *layout)


def _tags_pages(serial: int, packet: bytes, pages: int) -> Iterator[bytes]:
    """The OpusTags packet spread evenly over `pages` pages (sequence numbers 1...)."""
    lacing = b"\xff" * (len(packet) // 255) + bytes([len(packet) % 255])
    segment = offset = 0
    for i in range(pages):
        count = len(lacing) // pages + (1 if i < len(lacing) % pages else 0)
        chunk = lacing[segment : segment + count]
        yield _page(_CONTINUED if i else 0, 0, serial, 1 + i, chunk, packet[offset : offset + sum(chunk)])
        segment, offset = segment + count, offset + sum(chunk)


def _audio_repetitions(seed: _Seed, reps: int, first_sequence: int) -> Iterator[bytes]:
    """The seed's audio pages `reps` times over, renumbered, with granules running on."""
    sequence, last = first_sequence, len(seed.pages) - 1
    for rep in range(reps):
        final_rep = rep == reps - 1
        out = []
        for i, p in enumerate(seed.pages):
            granule = p.granule
            if granule != -1:  # -1: no packet ends on this page
                granule += rep * seed.samples
                if i == last and not final_rep:  # only the very end trims its padding samples
                    granule += seed.samples - p.granule
            flags = (p.flags & _CONTINUED) | (_EOS if final_rep and i == last else 0)
            out.append(_page(flags, granule, seed.serial, sequence, p.lacing, p.body))
            sequence += 1
        yield b"".join(out)


def _note_chunks(seed: _Seed, comment: str, size: int) -> Iterator[bytes]:
    """A note holding `comment`, `size` bytes long (or the smallest possible), in pieces."""
    base = len(_tags_packet(comment, 0))
    reps, length, pages = _plan_note(seed, base, size)
    yield seed.head_page
    yield from _tags_pages(seed.serial, _tags_packet(comment, length - base), pages)
    yield from _audio_repetitions(seed, reps, 1 + pages)


# --- writing the tree ----------------------------------------------------------------------


@dataclass
class _Item:
    """A file to write: where, when, and what it holds (a rebuilt note, a copy, or bytes)."""

    when: datetime
    kind: str
    folder: str  # place folder, relative to the root
    weekly: bool = True  # inside <YYYYWW>/ (voice notes) or directly in the folder
    sent: bool = False
    ext: str = "opus"
    size: int = 0  # rebuilt note of this size
    copy_of: Path | None = None
    content: bytes | None = None
    name: str = ""
    is_note: bool = True


def _week_folder(day: date) -> str:
    iso = day.isocalendar()
    return f"{iso[0]}{iso[1]:02d}"


def _relative(item: _Item) -> str:
    if not item.weekly:
        return f"{item.folder}/{item.name}"
    sent = "/Sent" if item.sent else ""
    return f"{item.folder}/{_week_folder(item.when.date())}{sent}/{item.name}"


def _name_items(items: list[_Item]) -> None:
    """WhatsApp numbering: WA0000, WA0001... restarting every day, per app folder."""
    counters: dict[tuple[str, date], int] = {}
    for item in sorted(items, key=lambda i: i.when):
        if item.name:
            continue
        key = (item.folder, item.when.date())
        number = counters.get(key, 0)
        counters[key] = number + 1
        prefix = "PTT" if item.weekly else "AUD"
        item.name = f"{prefix}-{item.when:%Y%m%d}-WA{number:04d}.{item.ext}"


class _Writer:
    """Writes files under the tree's root, stamps their mtimes and records each as a PhoneNote."""

    def __init__(self, tree: PhoneTree, seeds: tuple[_Seed, ...]) -> None:
        self.tree, self.seeds = tree, seeds
        self.made: set[Path] = set()

    def write(self, relative: str, chunks: Iterable[bytes], when: datetime, kind: str, is_note: bool) -> PhoneNote:
        path = self.tree.root / relative
        if path.parent not in self.made:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.made.add(path.parent)
        digest, size = hashlib.sha256(), 0
        with open(path, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        mtime = int(when.timestamp())
        os.utime(path, (mtime, mtime))
        note = PhoneNote(f"{PHONE_ROOT}/{relative}", path, size, mtime, digest.hexdigest(), kind, is_note)
        self.tree.notes.append(note)
        return note

    def write_item(self, item: _Item) -> PhoneNote:
        relative = _relative(item)
        if item.copy_of is not None:
            chunks: Iterable[bytes] = [item.copy_of.read_bytes()]
        elif item.content is not None:
            chunks = [item.content]
        else:
            seed = _best_seed(self.seeds, item.size)
            chunks = _note_chunks(seed, f"ADBVOICE_NOTE={PHONE_ROOT}/{relative}", item.size)
        return self.write(relative, chunks, item.when, item.kind, item.is_note)

    def nomedia(self, items: list[_Item]) -> None:
        """WhatsApp keeps a .nomedia in each voice-note folder and weekly folder."""
        folders: dict[str, tuple[datetime, str]] = {}
        for item in sorted(items, key=lambda i: i.when):
            if item.weekly:
                folders.setdefault(item.folder, (item.when, _kind_of_place(item.folder)))
                week = f"{item.folder}/{_week_folder(item.when.date())}"
                folders.setdefault(week, (item.when, _kind_of_place(item.folder)))
        for folder, (when, kind) in folders.items():
            if not (self.tree.root / folder / ".nomedia").exists():
                self.write(f"{folder}/.nomedia", [], when, kind, is_note=False)


def _kind_of_place(folder: str) -> str:
    return next(kind for kind, place in PLACES.items() if place == folder)


def _best_seed(seeds: tuple[_Seed, ...], size: int) -> _Seed:
    """The fixture that reaches `size` with the least padding, so a note's duration follows
    its size; for megabytes, the longest fixture (fewest pages to write)."""
    if size >= 1_000_000:
        return max(seeds, key=lambda seed: seed.audio_size)

    def padding(seed: _Seed) -> int:
        room = size - len(seed.head_page) - 200
        return room % seed.audio_size if room >= seed.audio_size else size + seed.audio_size

    return min(seeds, key=padding)


def _note_size(rng: random.Random) -> int:
    """WhatsApp notes are mostly 5-100 KB (a few seconds to a minute); a few run to megabytes."""
    if rng.random() < 0.004:
        return rng.randint(1_000_000, 4_000_000)
    return min(100_000, max(5_000, int(rng.lognormvariate(math.log(25_000), 0.7))))


def _at(day: date, rng: random.Random) -> datetime:
    """A time between 10:00 and 14:40 UTC; later additions stay within ten minutes of one."""
    return datetime(day.year, day.month, day.day, 10, tzinfo=timezone.utc) + timedelta(seconds=rng.randrange(16_800))


def _note_days(rng: random.Random, count: int, start: date) -> list[datetime]:
    """Bursty dates over a year or more: busy weeks with several notes, quiet weeks with none."""
    weeks = min(234, max(60, count // 4))  # from the default start, up to mid-2025
    weights = [rng.random() ** 2 for _ in range(weeks)]
    chosen = rng.choices(range(weeks), weights, k=count)
    times = sorted(_at(start + timedelta(weeks=w, days=rng.randrange(7)), rng) for w in chosen)
    # A note on 1-3 January that belongs to the previous ISO year (2022-01-02 is in 2021-W52).
    end = start + timedelta(weeks=weeks)
    edge = next((d for y in range(start.year, end.year + 1) for d in (date(y, 1, 1), date(y, 1, 2), date(y, 1, 3))
                 if start <= d < end and d.isocalendar()[0] < d.year), None)
    if edge and times and not any(t.date() == edge for t in times):
        nearest = min(range(len(times)), key=lambda i: abs(times[i].date() - edge))
        times[nearest] = times[nearest].replace(year=edge.year, month=edge.month, day=edge.day)
    return times


def _voice_items(rng: random.Random, count: int, start: date, business: bool, legacy: bool) -> list[_Item]:
    """Older notes in the pre-Android-11 folders, newer ones in Android/media; some Business."""
    times = _note_days(rng, count, start)
    n_legacy = max(1, count // 4) if legacy and count >= 2 else 0
    items = []
    for i, when in enumerate(times):
        is_business = business and rng.random() < 0.2
        kind = ("legacy-business" if is_business else "legacy") if i < n_legacy else ("business" if is_business else "voice")
        items.append(_Item(when, kind, PLACES[kind], size=_note_size(rng)))
    _ensure_kinds(items[:n_legacy], "legacy", "legacy-business" if business else None)
    _ensure_kinds(items[n_legacy:], "voice", "business" if business else None)
    if count >= 20:
        items[count // 2].size = rng.randint(1_000_000, 2_000_000)
    modern = items[n_legacy:]
    for item in modern:
        item.sent = rng.random() < 0.1
    if business:
        _collide(modern)
    return items


def _ensure_kinds(items: list[_Item], main: str, other: str | None) -> None:
    if other and len(items) >= 2:
        for kind, item in ((main, items[0]), (other, items[-1])):
            if not any(i.kind == kind for i in items):
                item.kind, item.folder = kind, PLACES[kind]


def _collide(modern: list[_Item]) -> None:
    """Make a Business note share its name with a personal one: both the first of their day."""
    voice = next((i for i in modern if i.kind == "voice"), None)
    other = next((i for i in modern if i.kind == "business"), None)
    if voice is None or other is None:
        return
    voice.sent = other.sent = False
    day = voice.when.date()
    if not any(i.kind == "business" and i.when.date() == day for i in modern):
        other.when = voice.when + timedelta(seconds=60)


def _extra_items(rng: random.Random, times: list[datetime], audio: bool, broken: bool, unrelated: bool) -> list[_Item]:
    """WhatsApp Audio files, broken notes, and files outside WhatsApp's voice folders."""
    def pick() -> datetime:
        return rng.choice(times) + timedelta(seconds=rng.randrange(60, 600))

    items: list[_Item] = []
    if audio:
        for ext in ("opus", "m4a", "mp3"):
            copy = FIXTURES / f"audio.{ext}" if ext != "opus" else None
            items.append(_Item(pick(), "audio", AUDIO, weekly=False, ext=ext, copy_of=copy, size=_note_size(rng)))
        items.append(_Item(pick(), "audio", AUDIO, weekly=False, name="lyrics.txt", is_note=False,
                           content=b"Shared from a chat: the lyrics we sang on Saturday.\n"))
    if broken:
        when = max(times)
        for i, name in enumerate(("truncated.opus", "empty.opus", "not-audio.opus")):
            items.append(_Item(when + timedelta(seconds=30 * (i + 1)), "broken", VOICE, copy_of=FIXTURES / name))
    if unrelated:
        photo = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + rng.randbytes(3000) + b"\xff\xd9"
        when = pick()
        items += [
            _Item(when, "unrelated", "DCIM/Camera", weekly=False, is_note=False, content=photo,
                  name=f"IMG_{when:%Y%m%d_%H%M%S}.jpg"),
            _Item(pick(), "unrelated", "Download", weekly=False, is_note=False, name="Invoice-2021-03.pdf",
                  content=b"%PDF-1.4\n% adbvoice test file\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"),
            _Item(pick(), "unrelated", "Download", weekly=False, is_note=False, name="podcast-clip.opus", size=20_000),
            _Item(when, "unrelated", "Android/media/com.whatsapp/WhatsApp/Media/WhatsApp Images", weekly=False,
                  is_note=False, content=photo[::-1], name=f"IMG-{when:%Y%m%d}-WA0000.jpg"),
        ]
    return items


def build_phone_tree(
    root: Path,
    notes: int = 50,
    *,
    seed: int = 0,
    business: bool = True,
    legacy: bool = True,
    audio: bool = True,
    broken: bool = True,
    unrelated: bool = True,
    big_file_bytes: int | None = None,
    start: date = date(2021, 1, 4),
) -> PhoneTree:
    """Write a phone's /sdcard under `root`: `notes` voice notes (personal, Business, legacy)
    plus, as asked, WhatsApp Audio files, broken notes, unrelated files and one huge note.

    Deterministic for a given seed. The huge note (`big_file_bytes`, exactly that size) is a
    whole Ogg Opus file whose audio repeats for hours; it is written in streaming fashion.
    """
    rng = random.Random(seed)
    tree = PhoneTree(Path(root))
    writer = _Writer(tree, _seeds(FIXTURES, "voice-*.opus"))
    items = _voice_items(rng, notes, start, business, legacy) if notes else []
    times = [i.when for i in items] or [_at(start, rng)]
    items += _extra_items(rng, times, audio, broken, unrelated)
    if big_file_bytes:
        items.append(_Item(max(times) + timedelta(seconds=300), "voice", VOICE, size=big_file_bytes))
    _name_items(items)
    for item in sorted(items, key=lambda i: i.when):
        writer.write_item(item)
    writer.nomedia(items)
    return tree


def add_notes(tree: PhoneTree, count: int, *, seed: int = 1) -> list[PhoneNote]:
    """Record `count` new personal voice notes on the days after everything in the tree:
    exactly what the next backup must copy. New weekly folders get their .nomedia too
    (in `tree.notes`, not in the returned list)."""
    rng = random.Random(seed)
    last = max((n.mtime for n in tree.notes), default=int(_at(date(2021, 1, 4), rng).timestamp()))
    day = datetime.fromtimestamp(last, timezone.utc).date() + timedelta(days=1)
    items = []
    for _ in range(count):
        items.append(_Item(_at(day, rng), "voice", VOICE, sent=rng.random() < 0.1, size=_note_size(rng)))
        day += timedelta(days=rng.choice((0, 0, 1, 1, 2, 3)))
    _name_items(items)
    writer = _Writer(tree, _seeds(FIXTURES, "voice-*.opus"))
    added = [writer.write_item(item) for item in sorted(items, key=lambda i: i.when)]
    writer.nomedia(items)
    return added


def build_demo_phone(root: Path) -> PhoneTree:
    """A small phone from the notes packaged in `samples/`, for `adbvoice demo`."""
    samples = sorted(SAMPLES.glob("sample-*.opus"))
    days = [date(2024, 3, 4), date(2024, 3, 6), date(2024, 3, 6), date(2024, 3, 12), date(2024, 3, 14), date(2024, 3, 15)]
    kinds = ["voice", "voice", "voice", "voice", "business", "voice"]
    items = [
        _Item(datetime(d.year, d.month, d.day, 11, 5 + 7 * i, tzinfo=timezone.utc), kind, PLACES[kind],
              sent=i == 2, copy_of=sample)
        for i, (sample, d, kind) in enumerate(zip(samples, days, kinds))
    ]
    photo_time = datetime(2024, 3, 9, 12, 30, tzinfo=timezone.utc)
    items.append(_Item(photo_time, "unrelated", "DCIM/Camera", weekly=False, is_note=False,
                       name="IMG_20240309_123000.jpg", content=b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(512) + b"\xff\xd9"))
    _name_items(items)
    tree = PhoneTree(Path(root))
    writer = _Writer(tree, ())
    for item in items:
        writer.write_item(item)
    writer.nomedia(items)
    return tree

