"""Salvaging rows from a damaged chat history, table by table, row by row.

SQLite reads a table through its b-tree; a damaged page makes every read that touches it fail
("database disk image is malformed") while the rest of the tree is fine. So rows are read in
rowid order and, where a read fails, the damaged rowid range is stepped over (exponential probe,
then a binary search for the first readable rowid after it). A table SQLite can't reach at all
(its root page or the schema destroyed) is read from its leaf pages (app.store_pages). Text
that was damaged into invalid UTF-8 is kept with replacement characters rather than dropped.
"""
from __future__ import annotations

import json
import os
import sqlite3
import struct
import time
from collections.abc import Iterator
from pathlib import Path

COLUMNS = {
    "conversations": "id, title, effort, created, updated, deleted",
    "messages": ("id, conversation_id, position, role, final_text, analysis_text, effort, state, thought_seconds,"
                 " stats, created"),
    "settings": "key, value",
}
_MAX_JUMP = 1 << 48  # rowids beyond this are not ours
DAMAGED_TEXT_NOTICE = "Part of this message was damaged in the history file; the unreadable characters show as \ufffd."


def move_aside(path: Path) -> Path:
    """Rename the history (and its WAL) to a dated name beside it; nothing is ever deleted."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    kept = path.with_name(f"{path.stem}.damaged-{stamp}{path.suffix}")
    n = 1
    while kept.exists():
        n += 1
        kept = path.with_name(f"{path.stem}.damaged-{stamp}-{n}{path.suffix}")
    for extra in ("-wal", "-shm"):
        side = Path(f"{path}{extra}")
        if side.exists():
            os.replace(side, f"{kept}{extra}")
    os.replace(path, kept)
    return kept


def insert_salvaged(db: sqlite3.Connection, rows: dict) -> tuple[int, int]:
    """Write salvaged rows into a fresh history (inside the caller's transaction); a row damaged
    into nonsense (wrong types, broken constraints) is left behind. Returns (chats, messages)."""
    for row in rows.get("conversations", []):
        try:
            db.execute("INSERT INTO conversations (id, title, effort, created, updated, deleted)"
                       " VALUES (?, ?, ?, ?, ?, ?)", row)
        except sqlite3.Error:
            pass
    n = 0
    for row in rows.get("messages", []):
        # A message whose chat row was lost gets a chat of its own rather than vanishing.
        try:
            placeholder = db.execute("INSERT OR IGNORE INTO conversations (id, title, created, updated)"
                                     " VALUES (?, 'Recovered chat', ?, ?)", (row[1], row[-1], row[-1])).rowcount
        except sqlite3.Error:
            continue
        try:
            db.execute("INSERT INTO messages (id, conversation_id, position, role, final_text, analysis_text,"
                       " effort, state, thought_seconds, stats, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       _flag_damaged_text(row))
            n += 1
        except sqlite3.Error:
            if placeholder:
                db.execute("DELETE FROM conversations WHERE id = ?", (row[1],))
    for row in rows.get("settings", []):
        try:
            db.execute("INSERT INTO settings (key, value) VALUES (?, ?)", row)
        except sqlite3.Error:
            pass
    return db.execute("SELECT COUNT(*) FROM conversations WHERE deleted = 0").fetchone()[0], n


def _flag_damaged_text(row: tuple) -> tuple:
    """A salvaged message row whose text holds bytes that were not UTF-8 (or NULs) says so in its
    notice (SQLite keeps no checksums, so this is the only trace a damaged text page leaves)."""
    text, analysis, stats = row[4], row[5], row[9]
    if not any(mark in f"{text}{analysis}" for mark in ("\ufffd", "\x00")):  # NUL: a page lost to zeros
        return row
    try:
        stats = json.loads(stats or "{}")
    except (TypeError, ValueError):
        stats = {}
    stats = dict(stats if isinstance(stats, dict) else {}, notice=DAMAGED_TEXT_NOTICE)
    return (*row[:9], json.dumps(stats), *row[10:])


def salvage(path: Path) -> dict[str, list[tuple]]:
    """Every row of our tables that SQLite can still read from the file at `path` (a scratch
    copy: it may be padded)."""
    out: dict[str, list[tuple]] = {name: [] for name in COLUMNS}
    pad_to_header_size(path)
    try:
        db = sqlite3.connect(str(path), isolation_level=None)
    except sqlite3.Error:
        return out
    db.text_factory = lambda b: b.decode("utf-8", "replace")
    try:
        for table, cols in COLUMNS.items():
            out[table] = [row[1:] for row in _rows(db, table, cols)]
    finally:
        db.close()
    unreachable = [table for table, rows in out.items() if not rows]
    if unreachable:  # its root page (or the schema) is gone: read its leaf pages directly
        from app.store_pages import rows_by_table
        found = rows_by_table(path)
        for table in unreachable:
            out[table] = found[table]
    return out


def _rows(db: sqlite3.Connection, table: str, cols: str, batch: int = 256) -> Iterator[tuple]:
    last = -(1 << 62)
    while True:
        rows = _read(db, table, cols, last, batch) or _read(db, table, cols, last, 1)
        if rows is None:  # a damaged range starts after `last`
            resume = _first_readable(db, table, cols, last)
            if resume is None:
                return
            last = resume - 1
            continue
        if not rows:
            return
        yield from rows
        last = max(r[0] for r in rows)  # strictly grows: a looping damaged tree can't loop us


def _read(db, table, cols, after: int, limit: int) -> list[tuple] | None:
    try:
        rows = db.execute(f"SELECT rowid, {cols} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT ?",
                          (after, limit)).fetchall()
    except (sqlite3.Error, OverflowError):
        return None
    # A damaged tree can hand back keys out of order: such an answer counts as unreadable.
    return rows if all(isinstance(r[0], int) and r[0] > after for r in rows) else None


def _first_readable(db, table, cols, failed_after: int) -> int | None:
    """The smallest rowid r > failed_after + 1 from which a read works (None: none found)."""
    bad, step = failed_after + 1, 1
    while _read(db, table, cols, bad + step - 1, 1) is None:
        if step > _MAX_JUMP:
            return None
        bad, step = bad + step, step * 2
    good = bad + step
    while good - bad > 1:  # reads from `bad` fail, from `good` work
        mid = (bad + good) // 2
        if _read(db, table, cols, mid - 1, 1) is None:
            bad = mid
        else:
            good = mid
    return good


def pad_to_header_size(path: Path) -> None:
    """A file cut short is refused whole by SQLite ("malformed", even the schema); padding it with
    zero pages to the size its header states makes only the missing pages unreadable."""
    with open(path, "r+b") as f:
        header = f.read(100)
        if len(header) < 100 or not header.startswith(b"SQLite format 3\0"):
            return
        page_size = struct.unpack(">H", header[16:18])[0]
        page_size = 65536 if page_size == 1 else page_size
        pages = struct.unpack(">I", header[28:32])[0]
        f.seek(0, 2)
        size, want = f.tell(), pages * page_size
        if size < want <= 1 << 34:
            f.truncate(want)  # extends with zero bytes
