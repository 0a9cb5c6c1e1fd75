"""Salvaging rows from a damaged chat history, table by table, row by row.

SQLite reads a table through its b-tree; a damaged page makes every read that touches it fail
("database disk image is malformed") while the rest of the tree is fine. So rows are read in
rowid order and, where a read fails, the damaged rowid range is stepped over (exponential probe,
then a binary search for the first readable rowid after it). A table SQLite can't reach at all
(its root page or the schema destroyed) is read from its leaf pages (app.store_pages). Text
that was damaged into invalid UTF-8 is kept with replacement characters rather than dropped.
"""
from __future__ import annotations

import sqlite3
import struct
from collections.abc import Iterator
from pathlib import Path

COLUMNS = {
    "conversations": "id, title, effort, created, updated, deleted",
    "messages": ("id, conversation_id, position, role, final_text, analysis_text, effort, state, thought_seconds,"
                 " stats, created"),
    "settings": "key, value",
}
_MAX_JUMP = 1 << 48  # rowids beyond this are not ours


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
