"""The catalog: SQLite inside the archive (`.adbvoice/catalog.sqlite`), the only importer of sqlite3.

A row is written only after its file is durable, so the catalog never refers to a file
that a crash could take back. It can be rebuilt from the files; what the files cannot
tell (where on which phone a note was) is kept here. README documents the tables.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from adbvoice import errors
from adbvoice.archive import fulltext
from adbvoice.archive.folder import FILE_MODE

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY,
    archive_path TEXT NOT NULL UNIQUE,   -- relative to the archive folder
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    recorded_on TEXT,                    -- YYYY-MM-DD, from the name (PTT-YYYYMMDD) or the phone's mtime
    phone_mtime INTEGER,                 -- seconds since the epoch, as the phone reported it
    source TEXT,                         -- voice, business, legacy, legacy-business, audio, ...
    device_serial TEXT,
    device_model TEXT,
    phone_path TEXT,                     -- where it was first seen; undecodable bytes shown as U+FFFD
    phone_path_raw BLOB,                 -- the exact bytes, only when the name was not valid UTF-8
    archived_at TEXT NOT NULL,           -- UTC, ISO 8601
    run_id INTEGER REFERENCES runs(id),
    codec TEXT,
    duration_s REAL,
    sample_rate INTEGER,
    channels INTEGER,
    bitrate INTEGER,
    vendor TEXT,
    audio_error TEXT                     -- NULL when mutagen read the file; else why it could not
);
CREATE INDEX IF NOT EXISTS notes_sha256 ON notes (sha256);
CREATE TABLE IF NOT EXISTS sightings (   -- every phone path a note's bytes were seen at
    device_serial TEXT NOT NULL,
    phone_path BLOB NOT NULL,
    size INTEGER NOT NULL,
    mtime INTEGER NOT NULL,
    note_id INTEGER NOT NULL REFERENCES notes(id),
    first_seen TEXT NOT NULL,
    PRIMARY KEY (device_serial, phone_path)
);
CREATE TABLE IF NOT EXISTS pruned (     -- notes `prune` deleted from a phone (the archive keeps them)
    device_serial TEXT NOT NULL,
    phone_path BLOB NOT NULL,
    note_id INTEGER NOT NULL REFERENCES notes(id),
    state TEXT NOT NULL,                 -- 'deleting': asked of the phone; 'deleted': the phone no longer has it
    asked_at TEXT NOT NULL,
    deleted_at TEXT,
    PRIMARY KEY (device_serial, phone_path)
);
CREATE TABLE IF NOT EXISTS reported (   -- warnings about a phone's lasting state, told once
    device_serial TEXT NOT NULL,
    warning TEXT NOT NULL,
    first_reported TEXT NOT NULL,
    PRIMARY KEY (device_serial, warning)
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    device_serial TEXT,
    device_model TEXT,
    transport TEXT,
    outcome TEXT,                        -- ok, warnings, some-failed, interrupted, failed, dry-run
    exit_code INTEGER,
    new_notes INTEGER DEFAULT 0,
    already_archived INTEGER DEFAULT 0,
    warnings INTEGER DEFAULT 0,
    errors INTEGER DEFAULT 0,
    bytes_copied INTEGER DEFAULT 0,
    message TEXT
);
"""


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class NoteRow:
    archive_path: str
    sha256: str
    size: int
    recorded_on: str | None
    phone_mtime: int | None
    source: str | None
    device_serial: str | None
    device_model: str | None
    phone_path: str | None
    phone_path_raw: bytes | None
    codec: str | None
    duration_s: float | None
    sample_rate: int | None
    channels: int | None
    bitrate: int | None
    vendor: str | None
    audio_error: str | None
    id: int | None = None
    archived_at: str | None = None
    run_id: int | None = None
    pruned_at: str | None = None  # when `prune` last deleted it from a phone (not a column: from `pruned`)


_NOTE_COLUMNS = [f for f in NoteRow.__dataclass_fields__ if f not in ("id", "pruned_at")]


@dataclass(frozen=True)
class SightingRow:
    device_serial: str
    phone_path: bytes
    size: int
    mtime: int
    note_id: int
    first_seen: str


@dataclass(frozen=True)
class RunRow:
    id: int
    started_at: str
    ended_at: str | None
    device_serial: str | None
    device_model: str | None
    transport: str | None
    outcome: str | None
    exit_code: int | None
    new_notes: int | None
    already_archived: int | None
    warnings: int | None
    errors: int | None
    bytes_copied: int | None
    message: str | None


@dataclass(frozen=True)
class PrunedRow:
    device_serial: str
    phone_path: bytes
    note_id: int
    state: str
    asked_at: str
    deleted_at: str | None


@dataclass(frozen=True)
class ReportedRow:
    device_serial: str
    warning: str
    first_reported: str


_SIGHTING_COLUMNS = list(SightingRow.__dataclass_fields__)
_REPORTED_COLUMNS = list(ReportedRow.__dataclass_fields__)
_PRUNED_COLUMNS = list(PrunedRow.__dataclass_fields__)
_RUN_COLUMNS = list(RunRow.__dataclass_fields__)

# Transcripts are derived data: keyed by the note's content and the model, so a rebuilt
# catalog keeps them, a note moved inside the archive keeps its own, and each model's
# transcript of a note is made once. `verify` never looks at them.
TRANSCRIPTS_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS transcripts (
    sha256 TEXT NOT NULL,                -- the note's content (notes.sha256)
    model TEXT NOT NULL,                 -- a faster-whisper model name, or a model folder's path
    language TEXT,                       -- ISO 639-1 code
    language_probability REAL,           -- the model's probability for that language
    language_how TEXT,                   -- detected, forced, fallback (detection below the threshold), only (an English-only model)
    text TEXT,                           -- the whole transcript
    segments TEXT NOT NULL,              -- JSON [[start_s, end_s, text], ...]
    duration_s REAL,                     -- seconds of audio decoded
    error TEXT,                          -- NULL, or why this note has no transcript (unreadable audio)
    transcribed_at TEXT NOT NULL,        -- UTC, ISO 8601
    PRIMARY KEY (sha256, model)
);
CREATE VIRTUAL TABLE IF NOT EXISTS transcript_words USING fts5(words, tokenize = '{fulltext.TOKENIZER}');
"""


@dataclass(frozen=True)
class TranscriptRow:
    sha256: str
    model: str
    language: str | None
    language_probability: float | None
    language_how: str | None
    text: str | None
    segments: list[tuple[float, float, str]]
    duration_s: float | None
    error: str | None
    transcribed_at: str


_TRANSCRIPT_COLUMNS = list(TranscriptRow.__dataclass_fields__)


@dataclass
class Salvage:
    """What could still be read from a catalog that may be damaged: the rows read before
    the first error of each table, and that error."""

    notes: list[NoteRow] = field(default_factory=list)
    sightings: list[SightingRow] = field(default_factory=list)
    runs: list[RunRow] = field(default_factory=list)
    pruned: list[PrunedRow] = field(default_factory=list)
    reported: list[ReportedRow] = field(default_factory=list)
    listings: dict[str, str] = field(default_factory=dict)  # serial → meta's `listing:` value
    transcripts: list[TranscriptRow] = field(default_factory=list)
    problem: str | None = None


class Catalog:
    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path

    @classmethod
    def open(cls, path: Path, *, read_only: bool = False) -> Catalog:
        """Open (creating if needed) the catalog; read-only opens never change the file."""
        try:
            if read_only:
                return cls(_open_read_only(path), path)
            if not path.exists():
                # Create it 0600 ourselves: SQLite would use 0644, and its -wal/-shm files
                # copy the database file's permissions.
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            # WAL with synchronous=NORMAL: a commit does not wait for the disk, yet no crash
            # or power loss can corrupt the catalog; a power loss may only undo the latest
            # commits. Notes are fsynced before their rows, so such an undo leaves whole
            # notes the catalog does not know, which the next backup adopts. finish_run()
            # checkpoints, so a finished run is on disk entirely.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.executescript(SCHEMA)
            db.executescript(TRANSCRIPTS_SCHEMA)
            db.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc):
                raise _write_error(exc) from exc  # a full disk, not a broken catalog
            raise errors.NotAnArchiveError(f"the catalog {path} is unreadable: {exc}") from exc
        except OSError as exc:
            raise errors.ArchiveNotWritableError(f"cannot create the catalog {path}: {exc.strerror}") from exc
        return cls(db, path)

    def close(self) -> None:
        self._db.close()

    @staticmethod
    def salvage(path: Path) -> Salvage:
        """Read every row still readable from a catalog that may be damaged, table by table,
        in storage order (no index is trusted), never writing to it."""
        found = Salvage()
        try:
            db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, isolation_level=None)
        except sqlite3.DatabaseError as exc:
            found.problem = str(exc)
            return found
        listings: list[tuple[str, str]] = []
        tables = (
            ("notes", ["id", *_NOTE_COLUMNS], _note, found.notes),
            ("sightings", _SIGHTING_COLUMNS, _sighting, found.sightings),
            ("runs", _RUN_COLUMNS, _run, found.runs),
            ("pruned", _PRUNED_COLUMNS, _pruned, found.pruned),
            ("reported", _REPORTED_COLUMNS, lambda row: ReportedRow(*row), found.reported),
            ("meta", ["key", "value"], tuple, listings),
            ("transcripts", _TRANSCRIPT_COLUMNS, _transcript, found.transcripts),
        )
        try:
            for table, columns, make, into in tables:
                try:
                    if table in ("pruned", "reported", "transcripts") and not _has_table(db, table):
                        continue  # written before prune, told-once warnings or transcripts existed
                    for row in db.execute(f"SELECT {', '.join(columns)} FROM {table}"):
                        into.append(make(row))
                except sqlite3.DatabaseError as exc:
                    found.problem = found.problem or f"{table}: {exc}"
        finally:
            db.close()
        found.listings = {key.removeprefix("listing:"): value for key, value in listings if key.startswith("listing:")}
        return found

    # --- what is known -------------------------------------------------------------

    def known_sightings(self, device_serial: str) -> dict[bytes, tuple[int, int]]:
        """phone path → (size, mtime) of every archived note seen on this phone."""
        rows = self._db.execute(
            "SELECT phone_path, size, mtime FROM sightings WHERE device_serial = ?", (device_serial,)
        )
        return {bytes(path): (size, mtime) for path, size, mtime in rows}

    def sightings_on(self, device_serial: str) -> dict[bytes, SightingRow]:
        """phone path → the sighting, for every path of this phone an archived note was seen at."""
        rows = self._db.execute(
            f"SELECT {', '.join(_SIGHTING_COLUMNS)} FROM sightings WHERE device_serial = ?", (device_serial,)
        )
        return {seen.phone_path: seen for seen in map(_sighting, rows)}

    def notes_by_sha(self, shas: Collection[str]) -> dict[str, int]:
        """The id of the first note holding each of these SHA-256s that the catalog has
        (one query for a whole group of received notes)."""
        found: dict[str, int] = {}
        shas = list(shas)
        for start in range(0, len(shas), 500):  # under SQLite's limit on parameters
            chunk = shas[start : start + 500]
            rows = self._db.execute(
                f"SELECT sha256, MIN(id) FROM notes WHERE sha256 IN ({', '.join('?' * len(chunk))}) GROUP BY sha256",
                chunk,
            )
            found.update(rows)
        return found

    def note_by_path(self, archive_path: str) -> NoteRow | None:
        row = self._db.execute(
            f"SELECT id, {', '.join(_NOTE_COLUMNS)} FROM notes WHERE archive_path = ?", (archive_path,)
        ).fetchone()
        return _note(row) if row else None

    def notes(self) -> Iterator[NoteRow]:
        """Every note, with when a prune last deleted it from a phone."""
        # A catalog written before prune existed, opened read-only, has no such table yet.
        pruned_at = (
            "(SELECT MAX(deleted_at) FROM pruned WHERE pruned.note_id = notes.id AND state = 'deleted')"
            if _has_table(self._db, "pruned") else "NULL"
        )
        rows = self._db.execute(
            f"SELECT id, {', '.join(_NOTE_COLUMNS)}, {pruned_at} FROM notes ORDER BY recorded_on, archive_path"
        )
        for *row, pruned_at in rows:
            yield replace(_note(row), pruned_at=pruned_at)

    def count_notes(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM notes").fetchone()[0]

    def note_by_id(self, note_id: int) -> NoteRow | None:
        row = self._db.execute(
            f"SELECT id, {', '.join(_NOTE_COLUMNS)} FROM notes WHERE id = ?", (note_id,)
        ).fetchone()
        return _note(row) if row else None

    def sightings_of(self, note_id: int) -> list[SightingRow]:
        rows = self._db.execute(
            f"SELECT {', '.join(_SIGHTING_COLUMNS)} FROM sightings WHERE note_id = ? ORDER BY first_seen, phone_path",
            (note_id,),
        )
        return [_sighting(row) for row in rows]

    def runs(self) -> list[RunRow]:
        rows = self._db.execute(f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs ORDER BY id")
        return [_run(row) for row in rows]

    # --- writing -------------------------------------------------------------------

    def add_note(self, note: NoteRow, *, device_serial: str, phone_path: bytes, mtime: int) -> int:
        """Record a durable note and where it was seen, in one transaction."""
        values = {c: getattr(note, c) for c in _NOTE_COLUMNS}  # asdict's deep copy cost more than the insert
        values["archived_at"] = values["archived_at"] or utc_now()
        with self._transaction():
            cursor = self._db.execute(
                f"INSERT INTO notes ({', '.join(_NOTE_COLUMNS)}) VALUES ({', '.join('?' * len(_NOTE_COLUMNS))})",
                list(values.values()),
            )
            note_id = cursor.lastrowid
            self._sighting(device_serial, phone_path, note.size, mtime, note_id)
        return note_id

    def add_sighting(self, *, device_serial: str, phone_path: bytes, size: int, mtime: int, note_id: int) -> None:
        """The same bytes seen at another phone path (a moved or duplicated note)."""
        with self._transaction():
            self._sighting(device_serial, phone_path, size, mtime, note_id)

    def _sighting(self, device_serial: str, phone_path: bytes, size: int, mtime: int, note_id: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO sightings (device_serial, phone_path, size, mtime, note_id, first_seen) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (device_serial, phone_path, size, mtime, note_id, utc_now()),
        )

    def restore(
        self,
        runs: Iterable[RunRow],
        notes: Iterable[NoteRow],
        sightings: Iterable[SightingRow],
        pruned: Iterable[PrunedRow] = (),
        reported: Iterable[ReportedRow] = (),
        listings: dict[str, str] | None = None,
    ) -> None:
        """Fill a new catalog in one transaction (a rebuild): runs, sightings, prunes, the
        warnings told and the listing fingerprints as they were, notes with their old id
        where they have one, else a new one."""
        with self._transaction():
            self._db.executemany(
                f"INSERT INTO reported ({', '.join(_REPORTED_COLUMNS)}) VALUES (?, ?, ?)",
                ([getattr(row, c) for c in _REPORTED_COLUMNS] for row in reported),
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                ((f"listing:{serial}", value) for serial, value in (listings or {}).items()),
            )
            self._db.executemany(
                f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}) VALUES ({', '.join('?' * len(_RUN_COLUMNS))})",
                ([getattr(run, c) for c in _RUN_COLUMNS] for run in runs),
            )
            columns = ["id", *_NOTE_COLUMNS]
            self._db.executemany(
                f"INSERT INTO notes ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                # old ids first: a new note's id is max(id) + 1 when it is inserted
                ([getattr(note, c) for c in columns] for note in sorted(notes, key=lambda n: n.id is None)),
            )
            self._db.executemany(
                f"INSERT INTO sightings ({', '.join(_SIGHTING_COLUMNS)}) VALUES ({', '.join('?' * len(_SIGHTING_COLUMNS))})",
                ([getattr(seen, c) for c in _SIGHTING_COLUMNS] for seen in sightings),
            )
            self._db.executemany(
                f"INSERT INTO pruned ({', '.join(_PRUNED_COLUMNS)}) VALUES ({', '.join('?' * len(_PRUNED_COLUMNS))})",
                ([getattr(row, c) for c in _PRUNED_COLUMNS] for row in pruned),
            )

    def listing_fingerprints(self) -> dict[str, tuple[str, int]]:
        """serial → (fingerprint of the listing its last complete backup worked from, how
        many notes that listing held): see phone/scripts.py, fingerprint_script."""
        rows = self._db.execute("SELECT key, value FROM meta WHERE key LIKE 'listing:%'")
        known = {}
        for key, value in rows:
            fingerprint, _, notes = value.partition(" ")
            known[key.removeprefix("listing:")] = (fingerprint, int(notes or 0))
        return known

    def remember_listing(self, device_serial: str, fingerprint: str | None, notes: int) -> None:
        """Keep the fingerprint after a backup that archived everything it listed; forget
        it (fingerprint None) after one that left something for the next run."""
        with self._transaction():
            if fingerprint is None:
                self._db.execute("DELETE FROM meta WHERE key = ?", (f"listing:{device_serial}",))
            else:
                self._db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                    (f"listing:{device_serial}", f"{fingerprint} {notes}"),
                )

    # --- warnings about what lasts on a phone: told once ----------------------------------

    def reported_warnings(self, device_serial: str) -> set[str]:
        """The warnings about this phone's lasting state (a link, an unreadable folder)
        already told by an earlier run."""
        if not _has_table(self._db, "reported"):  # an older catalog, opened read-only
            return set()
        rows = self._db.execute("SELECT warning FROM reported WHERE device_serial = ?", (device_serial,))
        return {warning for (warning,) in rows}

    def remember_reported(self, device_serial: str, warnings: Collection[str], *, complete: bool) -> None:
        """Record the lasting warnings this run found; with `complete` (the run saw the
        whole phone) forget those no longer there, so an oddity that comes back is told again."""
        now = utc_now()
        with self._transaction():
            if complete:
                known = self.reported_warnings(device_serial)
                self._db.executemany(
                    "DELETE FROM reported WHERE device_serial = ? AND warning = ?",
                    ((device_serial, gone) for gone in known - set(warnings)),
                )
            self._db.executemany(
                "INSERT OR IGNORE INTO reported (device_serial, warning, first_reported) VALUES (?, ?, ?)",
                ((device_serial, warning, now) for warning in warnings),
            )

    # --- pruning: notes deleted from a phone, kept here ---------------------------------

    def mark_deleting(self, device_serial: str, notes: Iterable[tuple[bytes, int]]) -> None:
        """Record, before the phone is asked to delete them, the (phone path, note id) of
        the notes a prune is about to delete: a crash after this leaves rows to reconcile
        (deletions_pending), never a deletion nobody recorded."""
        now = utc_now()
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO pruned (device_serial, phone_path, note_id, state, asked_at) "
                "VALUES (?, ?, ?, 'deleting', ?)",
                ((device_serial, path, note_id, now) for path, note_id in notes),
            )

    def mark_deleted(self, device_serial: str, paths: Iterable[bytes]) -> None:
        """The phone no longer has these (it said so, or a stat showed it)."""
        now = utc_now()
        with self._transaction():
            self._db.executemany(
                "UPDATE pruned SET state = 'deleted', deleted_at = ? WHERE device_serial = ? AND phone_path = ?",
                ((now, device_serial, path) for path in paths),
            )

    def unmark(self, device_serial: str, paths: Iterable[bytes]) -> None:
        """These are on the phone (a deletion that did not happen, or a note put back)."""
        with self._transaction():
            self._db.executemany(
                "DELETE FROM pruned WHERE device_serial = ? AND phone_path = ?",
                ((device_serial, path) for path in paths),
            )

    def deletions_pending(self, device_serial: str) -> list[bytes]:
        """Phone paths a prune asked to delete without hearing back (it was cut off)."""
        rows = self._db.execute(
            "SELECT phone_path FROM pruned WHERE device_serial = ? AND state = 'deleting' ORDER BY phone_path",
            (device_serial,),
        )
        return [bytes(path) for (path,) in rows]

    def start_run(self, *, device_serial: str, device_model: str, transport: str) -> int:
        with self._transaction():
            cursor = self._db.execute(
                "INSERT INTO runs (started_at, device_serial, device_model, transport) VALUES (?, ?, ?, ?)",
                (utc_now(), device_serial, device_model, transport),
            )
        return cursor.lastrowid

    def finish_run(self, run_id: int, **fields: object) -> None:
        """Record how the run ended, and make the whole run durable (see synchronous above)."""
        names = sorted(fields)
        with self._transaction():
            self._db.execute(
                f"UPDATE runs SET ended_at = ?, {', '.join(f'{n} = ?' for n in names)} WHERE id = ?",
                [utc_now(), *(fields[n] for n in names), run_id],
            )
        try:
            self._db.execute("PRAGMA wal_checkpoint(FULL)")
        except sqlite3.OperationalError as exc:
            raise _write_error(exc) from exc

    # --- transcripts: derived from the audio, keyed by its content -------------------------

    def transcribed(self, model: str) -> set[str]:
        """The SHA-256 of every note this model has already been run on (a transcript or the
        reason there is none): what a resumed `transcribe` skips."""
        if not _has_table(self._db, "transcripts"):
            return set()
        return {sha for (sha,) in self._db.execute("SELECT sha256 FROM transcripts WHERE model = ?", (model,))}

    def add_transcript(self, row: TranscriptRow) -> None:
        """Record one note's transcript and its words for search, in one transaction: a
        run cut off at any point leaves the whole row or none."""
        values = [getattr(row, c) for c in _TRANSCRIPT_COLUMNS]
        values[_TRANSCRIPT_COLUMNS.index("segments")] = json.dumps(row.segments, ensure_ascii=False)
        with self._transaction():
            old = self._db.execute(
                "SELECT rowid FROM transcripts WHERE sha256 = ? AND model = ?", (row.sha256, row.model)
            ).fetchone()
            if old:
                self._db.execute("DELETE FROM transcript_words WHERE rowid = ?", old)
                self._db.execute("DELETE FROM transcripts WHERE rowid = ?", old)
            cursor = self._db.execute(
                f"INSERT INTO transcripts ({', '.join(_TRANSCRIPT_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(_TRANSCRIPT_COLUMNS))})",
                values,
            )
            if row.text is not None:  # a silent note's empty transcript too: every transcript is indexed
                self._db.execute(
                    "INSERT INTO transcript_words (rowid, words) VALUES (?, ?)",
                    (cursor.lastrowid, fulltext.indexed_text(row.text)),
                )

    def restore_transcripts(self, rows: Iterable[TranscriptRow]) -> None:
        """Carry transcripts into a rebuilt catalog (they are matched by content, not by id)."""
        with self._transaction():
            for row in rows:
                self.add_transcript(row)

    def transcripts_of(self, sha256: str) -> list[TranscriptRow]:
        """Every transcript of these bytes, newest first."""
        if not _has_table(self._db, "transcripts"):
            return []
        rows = self._db.execute(
            f"SELECT {', '.join(_TRANSCRIPT_COLUMNS)} FROM transcripts WHERE sha256 = ? "
            "ORDER BY transcribed_at DESC, rowid DESC",
            (sha256,),
        )
        return [_transcript(row) for row in rows]

    def latest_transcripts(self) -> dict[str, TranscriptRow]:
        """sha256 → its newest transcript that has words (an error row is no transcript)."""
        if not _has_table(self._db, "transcripts"):
            return {}
        rows = self._db.execute(
            f"SELECT {', '.join(_TRANSCRIPT_COLUMNS)} FROM transcripts WHERE error IS NULL "
            "ORDER BY transcribed_at, rowid"
        )
        return {found.sha256: found for found in map(_transcript, rows)}

    def search_transcripts(self, match: str) -> list[tuple[TranscriptRow, float]]:
        """Transcripts whose words match an FTS5 expression (fulltext.fts_query), best
        first, with FTS5's bm25 score (lower is better)."""
        if not _has_table(self._db, "transcripts"):
            return []
        columns = ", ".join(f"t.{c}" for c in _TRANSCRIPT_COLUMNS)
        rows = self._db.execute(
            f"SELECT {columns}, bm25(transcript_words) FROM transcript_words "
            "JOIN transcripts t ON t.rowid = transcript_words.rowid "
            "WHERE transcript_words MATCH ? ORDER BY bm25(transcript_words)",
            (match,),
        )
        return [(_transcript(tuple(row)), score) for *row, score in rows]

    def group(self) -> _Transaction:
        """One transaction around several writes (a group of published notes): one commit
        instead of one per note; all of them or none."""
        return self._transaction()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any exception (Ctrl-C included); a full
    disk becomes DiskFullError, like every other write of the archive. Inside another
    transaction it is part of that one, which commits or rolls back for both."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._outer = False

    def __enter__(self) -> None:
        self._outer = not self._db.in_transaction
        if self._outer:
            self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if not self._outer:
            return
        if exc is None:
            try:
                self._db.execute("COMMIT")
            except sqlite3.OperationalError as failed:
                self._rollback()
                raise _write_error(failed) from failed
            return
        self._rollback()
        if isinstance(exc, sqlite3.OperationalError):
            raise _write_error(exc) from exc

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")


@contextmanager
def reading(path: Path) -> Iterator[Catalog]:
    """The catalog opened read-only for a command that only looks. A catalog found damaged
    part-way through (a malformed page) is as unreadable as one that will not open."""
    catalog = Catalog.open(path, read_only=True)
    try:
        yield catalog
    except sqlite3.DatabaseError as exc:
        raise errors.NotAnArchiveError(f"the catalog {path} is unreadable: {exc}") from exc
    finally:
        catalog.close()


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def _open_read_only(path: Path) -> sqlite3.Connection:
    """A connection that never writes the database. Reading a WAL database makes SQLite
    create its -shm side file; on a read-only disk (a backup copy, a mounted image) it
    cannot, so there the catalog is opened `immutable` — safe because no writer can be
    there — unless a -wal file left by a cut-off run holds rows that must be read."""
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None)
    try:
        db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return db
    except sqlite3.OperationalError:
        db.close()
        if os.access(path.parent, os.W_OK) or os.path.exists(f"{path}-wal"):
            raise
    db = sqlite3.connect(f"{path.as_uri()}?immutable=1", uri=True, isolation_level=None)
    db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return db


def _write_error(exc: sqlite3.OperationalError) -> errors.AdbVoiceError:
    if "full" in str(exc):
        return errors.DiskFullError(f"the archive's disk is full (writing the catalog: {exc})")
    return errors.ArchiveNotWritableError(f"cannot write the catalog: {exc}")


def _note(row: tuple) -> NoteRow:
    note_id, *rest = row
    values = dict(zip(_NOTE_COLUMNS, rest))
    if values["phone_path_raw"] is not None:
        values["phone_path_raw"] = bytes(values["phone_path_raw"])
    return NoteRow(id=note_id, **values)


def _sighting(row: tuple) -> SightingRow:
    values = dict(zip(_SIGHTING_COLUMNS, row))
    values["phone_path"] = bytes(values["phone_path"])
    return SightingRow(**values)


def _pruned(row: tuple) -> PrunedRow:
    values = dict(zip(_PRUNED_COLUMNS, row))
    values["phone_path"] = bytes(values["phone_path"])
    return PrunedRow(**values)


def _transcript(row: tuple) -> TranscriptRow:
    values = dict(zip(_TRANSCRIPT_COLUMNS, row))
    values["segments"] = [tuple(s) for s in json.loads(values["segments"] or "[]")]
    return TranscriptRow(**values)


def _run(row: tuple) -> RunRow:
    return RunRow(**dict(zip(_RUN_COLUMNS, row)))
