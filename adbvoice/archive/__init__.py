"""Everything that owns the archive on disk, and nothing else writes it.

The folder and its lock, where a note goes (layout), how writes are made durable, the
catalog (the only importer of sqlite3), audio metadata (the only importer of mutagen),
rebuilding the catalog and verifying the notes. It knows nothing of ADB: it may import
only the base modules (errors, cancel, events, display, whatsapp).
"""
