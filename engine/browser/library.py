"""The documents backend: folders the user added, converted to text and indexed for ranked search.

    lib = Library(index_folder, [Path("~/Notes").expanduser()], name="library")
    report = lib.update(progress=lambda done, total, path: ..., cancel=event)   # on a worker thread
    lib.search("tide tables", 10)  ->  [Hit(url="file:///Users/me/Notes/tides.md", ...)]
    lib.fetch("file:///Users/me/Notes/tides.md")  ->  Document

The index is one SQLite file in `index_folder` (the caller's data folder: the engine never decides
where): an FTS5 table ranked with BM25 (title weighted above the body, Porter stemming), chosen
over tantivy in bench/browser_index.py. update() is incremental: a file is converted again only
when its size or modification time changed, and files that are gone leave the index. It reports
progress, stops at the next file when cancelled (what was done is kept), and is meant to run off
the model's thread; searches can run meanwhile (WAL). Only indexed files can be fetched: the
index is the list of what the browser may open.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from engine.browser.backend import Document, Hit
from engine.browser.convert import supported, to_text

SCHEMA_VERSION = 1
BATCH = 200  # files per transaction while indexing
STOPWORDS = frozenset("a an and are as at be by for from has have how i in is it its of on or that the this to was "
                      "were what when where which who why will with do does did can you your".split())


@dataclass
class IndexReport:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: int = 0  # unreadable or unsupported content
    bytes: int = 0
    seconds: float = 0.0
    cancelled: bool = False


def fts_query(text: str, common: set[str] = frozenset()) -> str | None:
    """The words of a free-text query as an FTS5 OR query (each quoted: no FTS syntax gets through),
    leaving out stopwords and the `common` ones unless nothing else is left."""
    words = list(dict.fromkeys(w for w in re.findall(r"\w+", text.lower()) if w not in STOPWORDS))[:32]
    words = [w for w in words if w not in common] or words or list(dict.fromkeys(re.findall(r"\w+", text.lower())))[:32]
    return " OR ".join(f'"{w}"' for w in words) if words else None


PASSAGE_CHARS = 200


def passage(text: str, query: str, chars: int = PASSAGE_CHARS) -> str:
    """About `chars` characters of `text` where most of the query's words are together (from the
    start when it holds none), on one line: the passage a search result shows."""
    low = text.lower()
    words = [w for w in dict.fromkeys(re.findall(r"\w+", query.lower())) if w not in STOPWORDS and len(w) > 2]
    spots = sorted(i for w in words for i in _positions(low, w))
    best, at = 0, 0
    for i in spots[:200]:
        window = low[i:i + chars]
        n = sum(w in window for w in words)
        if n > best:
            best, at = n, i
    start = max(0, at - chars // 4)
    cut = " ".join(re.sub(r"\x02\d+\x1f|\x03", "", text[start:start + chars]).split())
    return ("…" if start else "") + cut + ("…" if start + chars < len(text) else "")


def _positions(low: str, word: str, limit: int = 20):
    i = low.find(word)
    while i >= 0 and limit:
        yield i
        i, limit = low.find(word, i + 1), limit - 1


class Library:
    """One index over some folders. search/fetch from any thread; update from one at a time."""

    def __init__(self, index_folder: str | Path, folders: list[str | Path], name: str = "library"):
        self.name = name
        self.folders = [Path(f).expanduser().resolve() for f in folders]
        self.index_folder = Path(index_folder)
        self.index_folder.mkdir(parents=True, exist_ok=True)
        self.path = self.index_folder / f"{name}.sqlite3"
        self._local = threading.local()
        self._update_lock = threading.Lock()
        self._job: IndexJob | None = None
        self.updated_at = 0.0  # time.monotonic() when the last full update finished
        self._create()

    # ------------------------------------------------------------ the database

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def _create(self) -> None:
        db = self._db()
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):  # an index from another version: build it again
            db.executescript("DROP TABLE IF EXISTS docs; DROP TABLE IF EXISTS fts;")
        db.executescript("""
            CREATE TABLE IF NOT EXISTS docs (id INTEGER PRIMARY KEY, url TEXT UNIQUE NOT NULL, path TEXT NOT NULL,
                mtime_ns INTEGER, size INTEGER, links TEXT);
            CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(title, body,
                tokenize = 'porter unicode61 remove_diacritics 2');
        """)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.commit()

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    @property
    def count(self) -> int:
        return self._db().execute("SELECT count(*) FROM docs").fetchone()[0]

    # ------------------------------------------------------------ the backend interface

    def search(self, query: str, topn: int) -> list[Hit]:
        db = self._db()
        q = fts_query(query, self._common_words(db, query))
        if q is None:
            return []
        # Ranked first, passages after for the top hits only: FTS5's snippet() would run for every
        # matching document before the LIMIT (3x the time on 10,000 files).
        top = db.execute("SELECT rowid, bm25(fts, 5.0, 1.0) AS rank FROM fts WHERE fts MATCH ? ORDER BY rank LIMIT ?",
                         (q, topn)).fetchall()
        hits = []
        for rowid, rank in top:
            url, title, body = db.execute("SELECT docs.url, fts.title, fts.body FROM fts JOIN docs ON docs.id = fts.rowid "
                                          "WHERE fts.rowid = ?", (rowid,)).fetchone()
            hits.append(Hit(url, title, passage(body, query), -rank))
        return hits

    def _common_words(self, db, query: str) -> set[str]:
        """The query's words found in more than half the documents: BM25 gives them no weight
        (FTS5 floors their IDF), yet an OR query with them scores every document that holds them:
        left out, search on 10,000 files is ~6x faster with the same ranking (bench/browser_index.py)."""
        total = db.execute("SELECT count(*) FROM docs").fetchone()[0]
        words = [w for w in dict.fromkeys(re.findall(r"\w+", query.lower())) if w not in STOPWORDS][:32]
        if total < 4 or len(words) < 2:
            return set()
        return {w for w in words if db.execute("SELECT count(*) FROM fts WHERE fts MATCH ?",
                                               (f'"{w}"',)).fetchone()[0] > total / 2}

    def fetch(self, url: str) -> Document | None:
        row = self._db().execute(
            "SELECT fts.title, fts.body, docs.links FROM docs JOIN fts ON fts.rowid = docs.id WHERE docs.url = ?",
            (url,)).fetchone()
        if row is None:
            return None
        return Document(url, row[0], row[1], json.loads(row[2] or "[]"))

    # ------------------------------------------------------------ indexing

    def files(self):
        """Every supported file under the folders (hidden folders and files skipped, links not followed)."""
        for root in self.folders:
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for f in sorted(filenames):
                    p = Path(dirpath) / f
                    if supported(p) and not p.is_symlink():
                        yield p

    def update(self, progress=None, cancel: threading.Event | None = None) -> IndexReport:
        """Bring the index up to date with the folders. progress(done, total, path) is called per file."""
        with self._update_lock:
            return self._update(progress, cancel)

    def _update(self, progress, cancel) -> IndexReport:
        started, report = time.perf_counter(), IndexReport()
        db = self._db()
        known = {url: (i, m, s) for i, url, m, s in db.execute("SELECT id, url, mtime_ns, size FROM docs")}
        files = list(self.files())
        seen: set[str] = set()
        for done, path in enumerate(files):
            if cancel is not None and cancel.is_set():
                report.cancelled = True
                break
            url = path.as_uri()
            seen.add(url)
            try:
                st = path.stat()
            except OSError:
                continue
            old = known.get(url)
            if old and (old[1], old[2]) == (st.st_mtime_ns, st.st_size):
                report.unchanged += 1
            else:
                converted = to_text(path, lambda href, p=path: self._link_of(p, href))
                if old:
                    db.execute("DELETE FROM fts WHERE rowid = ?", (old[0],))
                    db.execute("DELETE FROM docs WHERE id = ?", (old[0],))
                if converted is None:
                    report.skipped += 1
                else:
                    title, text, links = converted
                    cur = db.execute("INSERT INTO docs (url, path, mtime_ns, size, links) VALUES (?, ?, ?, ?, ?)",
                                     (url, str(path), st.st_mtime_ns, st.st_size, json.dumps(links)))
                    db.execute("INSERT INTO fts (rowid, title, body) VALUES (?, ?, ?)", (cur.lastrowid, title, text))
                    report.bytes += st.st_size
                    if old:
                        report.updated += 1
                    else:
                        report.added += 1
            if done % BATCH == BATCH - 1:
                db.commit()
            if progress is not None:
                progress(done + 1, len(files), path)
        if not report.cancelled:  # only a full pass knows what is gone
            for url, (i, _, _) in known.items():
                if url not in seen:
                    db.execute("DELETE FROM fts WHERE rowid = ?", (i,))
                    db.execute("DELETE FROM docs WHERE id = ?", (i,))
                    report.removed += 1
        db.commit()
        report.seconds = time.perf_counter() - started
        if not report.cancelled:
            self.updated_at = time.monotonic()
        return report

    def update_in_background(self, progress=None) -> "IndexJob":
        """Start update() on a thread of its own; the job can be cancelled and waited for."""
        return IndexJob(self, progress)

    def refresh_if_stale(self, max_age_s: float = 60.0) -> "IndexJob | None":
        """Bring the index up to date in the background if the last update is older than max_age_s
        and none is running (searches go on meanwhile): a long-running chat or server sees the
        files the user changed. Returns the job started, if any."""
        if time.monotonic() - self.updated_at < max_age_s or (self._job is not None and self._job.running):
            return None
        self._job = IndexJob(self)
        return self._job

    def _link_of(self, page: Path, href: str) -> str | None:
        """An HTML link as a URL the browser may open: only files inside the library's folders."""
        parsed = urlparse(href)
        if parsed.scheme not in ("", "file") or parsed.netloc or not parsed.path:
            return None  # the web, mail, another machine: shown as text, never opened
        target = Path(unquote(parsed.path))
        target = (target if target.is_absolute() else page.parent / target).resolve()
        if not supported(target) or not any(target.is_relative_to(f) for f in self.folders):
            return None
        return target.as_uri()


class IndexJob:
    """update() on its own thread: progress (done, total, path) from that thread; cancel(); wait()."""

    def __init__(self, library: Library, progress=None):
        self.cancel_event = threading.Event()
        self.report: IndexReport | None = None
        self.error: str | None = None
        self.done, self.total = 0, 0
        self._progress = progress
        self._thread = threading.Thread(target=self._run, args=(library,), name="browser-index", daemon=True)
        self._thread.start()

    def _run(self, library: Library) -> None:
        try:
            self.report = library.update(self._on_progress, self.cancel_event)
        except Exception as e:  # noqa: BLE001 - reported to whoever waits, not raised on a bare thread
            self.error = f"Indexing {library.name} failed: {e}"
        finally:
            library.close()  # this thread's connection

    def _on_progress(self, done: int, total: int, path: Path) -> None:
        self.done, self.total = done, total
        if self._progress is not None:
            self._progress(done, total, path)

    def cancel(self) -> None:
        self.cancel_event.set()

    def wait(self, timeout: float | None = None) -> IndexReport | None:
        self._thread.join(timeout)
        return self.report

    @property
    def running(self) -> bool:
        return self._thread.is_alive()
