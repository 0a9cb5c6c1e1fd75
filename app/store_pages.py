"""Reading rows straight from the pages of a damaged SQLite file, without its b-trees.

When a table's root page (or page 1, the schema) is destroyed, SQLite can't reach any of its
rows although the leaf pages holding them are intact. This walks every page, decodes each table
leaf cell (rowid, record, overflow chain: the file format at sqlite.org/fileformat2.html) and
sorts the records into our tables by their shape. Only used for a table SQLite can't read at all.
The store runs with secure_delete, so freed pages hold no deleted rows to bring back.
"""
from __future__ import annotations

import struct
from pathlib import Path

TABLE_LEAF = 0x0D
DEFAULT_PAGE_SIZE = 4096  # SQLite's default, which the store never changes


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    """(value, next index) of the SQLite varint at buf[i] (1-9 bytes, big-endian, 7 bits each)."""
    value = 0
    for k in range(8):
        b = buf[i + k]
        value = (value << 7) | (b & 0x7F)
        if b < 0x80:
            return value, i + k + 1
    return (value << 8) | buf[i + 8], i + 9


def _value(serial: int, body: bytes, at: int):
    """(value, size) of one record column."""
    sizes = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 6, 6: 8, 7: 8, 8: 0, 9: 0}
    if serial in sizes:
        n = sizes[serial]
        raw = body[at:at + n]
        if len(raw) != n:
            raise ValueError("short record")
        if serial == 0:
            return None, 0
        if serial in (8, 9):
            return serial - 8, 0
        if serial == 7:
            return struct.unpack(">d", raw)[0], 8
        return int.from_bytes(raw, "big", signed=True), n
    if serial < 12:
        raise ValueError("reserved serial type")
    n = (serial - 12) // 2
    raw = body[at:at + n]
    if len(raw) != n:
        raise ValueError("short record")
    return (raw.decode("utf-8", "replace") if serial % 2 else bytes(raw)), n


def _record(payload: bytes) -> list:
    header_size, i = _varint(payload, 0)
    serials = []
    while i < header_size:
        s, i = _varint(payload, i)
        serials.append(s)
    values, at = [], header_size
    for s in serials:
        v, n = _value(s, payload, at)
        values.append(v)
        at += n
    return values


def leaf_rows(path: Path) -> list[tuple[int, list]]:
    """(rowid, column values) of every table-leaf cell that decodes cleanly."""
    data = Path(path).read_bytes()
    if len(data) < 100:
        return []
    if data.startswith(b"SQLite format 3\0"):
        page_size = struct.unpack(">H", data[16:18])[0]
        page_size = 65536 if page_size == 1 else page_size
        usable = page_size - data[20]
    else:  # page 1 itself is destroyed: assume what this app always creates
        page_size, usable = DEFAULT_PAGE_SIZE, DEFAULT_PAGE_SIZE
    if page_size < 512 or page_size & (page_size - 1):
        return []
    n_pages = len(data) // page_size
    out = []
    for p in range(n_pages):
        if p == 0 and not data.startswith(b"SQLite format 3\0"):
            continue
        base = p * page_size
        head = base + (100 if p == 0 else 0)
        if data[head] != TABLE_LEAF:
            continue
        cells = struct.unpack(">H", data[head + 3:head + 5])[0]
        for c in range(cells):
            try:
                ptr = struct.unpack(">H", data[head + 8 + 2 * c:head + 10 + 2 * c])[0]
                out.append(_cell(data, base + ptr, page_size, usable, n_pages))
            except (ValueError, IndexError, struct.error):
                continue  # a damaged cell: the others on the page may still be fine
    return out


def _cell(data: bytes, at: int, page_size: int, usable: int, n_pages: int) -> tuple[int, list]:
    size, i = _varint(data, at)
    rowid, i = _varint(data, i)
    if rowid >= 1 << 63:
        rowid -= 1 << 64
    x = usable - 35
    if size <= x:
        payload = data[i:i + size]
    else:
        m = (usable - 12) * 32 // 255 - 23
        k = m + (size - m) % (usable - 4)
        local = k if k <= x else m
        payload = bytearray(data[i:i + local])
        nxt = struct.unpack(">I", data[i + local:i + local + 4])[0]
        seen = set()
        while len(payload) < size:
            if not 1 <= nxt <= n_pages or nxt in seen:
                raise ValueError("broken overflow chain")
            seen.add(nxt)
            page = (nxt - 1) * page_size
            nxt = struct.unpack(">I", data[page:page + 4])[0]
            payload += data[page + 4:page + usable]
        payload = bytes(payload[:size])
    if len(payload) != size:
        raise ValueError("short payload")
    return rowid, _record(payload)


def rows_by_table(path: Path) -> dict[str, list[tuple]]:
    """Leaf records sorted into our tables by shape, as the store's salvage columns order them."""
    out: dict[str, list[tuple]] = {"conversations": [], "messages": [], "settings": []}
    for rowid, v in leaf_rows(path):
        if len(v) == 11 and v[3] in ("user", "assistant") and isinstance(v[1], int) and isinstance(v[2], int):
            out["messages"].append((rowid, *v[1:]))
        elif len(v) == 6 and isinstance(v[1], str) and v[2] in ("low", "medium", "high") and isinstance(v[5], int):
            out["conversations"].append((rowid, *v[1:]))
        elif len(v) == 2 and all(isinstance(x, str) for x in v):
            out["settings"].append(tuple(v))
    return out
