"""The catalog: SQLite inside the archive (`.adbvoice/catalog.sqlite`), the only importer of sqlite3.

A row is written only after its file is durable, so the catalog never refers to a file
that a crash could take back. It can be rebuilt from the files; what the files cannot
tell (where on which phone a note was) is kept here. README documents the tables.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from adbvoice import errors
from adbvoice.archive import FILE_MODE

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


_NOTE_COLUMNS = [f for f in NoteRow.__dataclass_fields__ if f not in ("id",)]


class Catalog:
    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path

    @classmethod
    def open(cls, path: Path, *, read_only: bool = False) -> Catalog:
        """Open (creating if needed) the catalog; read-only opens never change the file."""
        try:
            if read_only:
                db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None)
                db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                return cls(db, path)
            if not path.exists():
                # Create it 0600 ourselves: SQLite would use 0644, and its -wal/-shm files
                # copy the database file's permissions.
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            db.executescript(SCHEMA)
            db.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        except sqlite3.DatabaseError as exc:
            raise errors.NotAnArchiveError(f"the catalog {path} is unreadable: {exc}") from exc
        except OSError as exc:
            raise errors.ArchiveNotWritableError(f"cannot create the catalog {path}: {exc.strerror}") from exc
        return cls(db, path)

    def close(self) -> None:
        self._db.close()

    # --- what is known -------------------------------------------------------------

    def known_sightings(self, device_serial: str) -> dict[bytes, tuple[int, int]]:
        """phone path → (size, mtime) of every archived note seen on this phone."""
        rows = self._db.execute(
            "SELECT phone_path, size, mtime FROM sightings WHERE device_serial = ?", (device_serial,)
        )
        return {bytes(path): (size, mtime) for path, size, mtime in rows}

    def note_by_sha(self, sha256: str) -> NoteRow | None:
        row = self._db.execute(
            f"SELECT id, {', '.join(_NOTE_COLUMNS)} FROM notes WHERE sha256 = ? ORDER BY id LIMIT 1", (sha256,)
        ).fetchone()
        return _note(row) if row else None

    def note_by_path(self, archive_path: str) -> NoteRow | None:
        row = self._db.execute(
            f"SELECT id, {', '.join(_NOTE_COLUMNS)} FROM notes WHERE archive_path = ?", (archive_path,)
        ).fetchone()
        return _note(row) if row else None

    def notes(self) -> Iterator[NoteRow]:
        rows = self._db.execute(
            f"SELECT id, {', '.join(_NOTE_COLUMNS)} FROM notes ORDER BY recorded_on, archive_path"
        )
        for row in rows:
            yield _note(row)

    def count_notes(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM notes").fetchone()[0]

    # --- writing -------------------------------------------------------------------

    def add_note(self, note: NoteRow, *, device_serial: str, phone_path: bytes, mtime: int) -> int:
        """Record a durable note and where it was seen, in one transaction."""
        values = asdict(note)
        values["archived_at"] = values["archived_at"] or utc_now()
        with self._transaction():
            cursor = self._db.execute(
                f"INSERT INTO notes ({', '.join(_NOTE_COLUMNS)}) VALUES ({', '.join('?' * len(_NOTE_COLUMNS))})",
                [values[c] for c in _NOTE_COLUMNS],
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

    def start_run(self, *, device_serial: str, device_model: str, transport: str) -> int:
        with self._transaction():
            cursor = self._db.execute(
                "INSERT INTO runs (started_at, device_serial, device_model, transport) VALUES (?, ?, ?, ?)",
                (utc_now(), device_serial, device_model, transport),
            )
        return cursor.lastrowid

    def finish_run(self, run_id: int, **fields: object) -> None:
        names = sorted(fields)
        with self._transaction():
            self._db.execute(
                f"UPDATE runs SET ended_at = ?, {', '.join(f'{n} = ?' for n in names)} WHERE id = ?",
                [utc_now(), *(fields[n] for n in names), run_id],
            )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any exception (Ctrl-C included); a full
    disk becomes DiskFullError, like every other write of the archive."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
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
