"""The offline-encyclopedia backend: a Kiwix ZIM archive (Wikipedia, Stack Exchange, ...) via libzim.

    wiki = ZimArchive(Path("wikipedia_en_all_nopic.zim"))
    wiki.search("tide", 10)              # the archive's full-text index, or its titles when it has none
    wiki.fetch("zim://wikipedia_en_all_nopic/A/Tide")

Articles are HTML: converted with the documents' HTML converter, and their links kept only when
they lead to another entry of the same archive (never to the web). Redirects are followed.
"""

from __future__ import annotations

import posixpath
import re
import threading
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

from engine.browser.backend import BackendError, Document, Hit
from engine.browser.convert import html_to_text
from engine.browser.library import STOPWORDS

SCHEME = "zim://"
SNIPPET_CHARS = 240
MAX_REDIRECTS = 8


def source_name(path: Path) -> str:
    """A name for `sources=` from the file name: letters, digits, _ and - only."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", Path(path).stem).strip("_")[:60] or "zim"


class ZimArchive:
    def __init__(self, path: str | Path, name: str | None = None):
        import libzim.reader  # the Kiwix library; only needed when an archive is given

        self.path = Path(path)
        try:
            self.archive = libzim.reader.Archive(str(self.path))
        except Exception as e:  # noqa: BLE001 - libzim's RuntimeError: say which file and why
            raise BackendError(f"{self.path} is not a readable ZIM archive ({e}).") from None
        self.name = name or source_name(self.path)
        self._lock = threading.Lock()  # libzim's searchers are not documented as thread-safe

    @property
    def full_text(self) -> bool:
        return bool(self.archive.has_fulltext_index)

    # ------------------------------------------------------------ the backend interface

    def search(self, query: str, topn: int) -> list[Hit]:
        paths = self._ranked_paths(query, topn)
        hits = []
        for rank, path in enumerate(paths):
            doc = self._document(path)
            if doc is not None:
                hits.append(Hit(doc.url, doc.title, _snippet(doc.text, query), float(topn - rank)))
        return hits

    def _ranked_paths(self, query: str, topn: int) -> list[str]:
        """libzim matches every word of a query (and has no OR): a question in plain words would find
        nothing. So: all the words first, then the entries the most single words find (ties by
        their best rank), until topn."""
        words = [w for w in dict.fromkeys(re.findall(r"\w+", query.lower())) if w not in STOPWORDS]
        if not words:
            return []
        paths = self._paths(" ".join(words), topn)
        if len(paths) < topn and len(words) > 1:
            votes: dict[str, list[int]] = {}
            for w in words:
                for rank, path in enumerate(self._paths(w, topn)):
                    votes.setdefault(path, []).append(rank)
            ranked = sorted(votes, key=lambda p: (-len(votes[p]), min(votes[p])))
            paths += [p for p in ranked if p not in paths]
        return paths[:topn]

    def _paths(self, text: str, topn: int) -> list[str]:
        from libzim.search import Query, Searcher
        from libzim.suggestion import SuggestionSearcher

        with self._lock:
            if self.full_text:
                return list(Searcher(self.archive).search(Query().set_query(text)).getResults(0, topn))
            return list(SuggestionSearcher(self.archive).suggest(text).getResults(0, topn))

    def fetch(self, url: str) -> Document | None:
        if not url.startswith(f"{SCHEME}{self.name}/"):
            return None
        return self._document(unquote(url[len(SCHEME) + len(self.name) + 1:]))

    # ------------------------------------------------------------ helpers

    def url_of(self, path: str) -> str:
        return f"{SCHEME}{self.name}/{quote(path)}"

    def _document(self, path: str) -> Document | None:
        with self._lock:
            try:
                entry = self.archive.get_entry_by_path(path)
            except KeyError:
                return None
            for _ in range(MAX_REDIRECTS):
                if not entry.is_redirect:
                    break
                entry = entry.get_redirect_entry()
            if entry.is_redirect:
                return None
            item = entry.get_item()
            mimetype, title = item.mimetype, entry.title
            data = bytes(item.content)
            path = entry.path
        text = data.decode("utf-8", "replace")
        links: list[str] = []
        if mimetype.startswith("text/html"):
            page_title, text, links = html_to_text(text, lambda href: self._link_of(path, href))
            title = title or page_title
        elif not mimetype.startswith("text/"):
            return None  # images and other media: nothing to read
        return Document(self.url_of(path), title or path, text, links)

    def _link_of(self, page_path: str, href: str) -> str | None:
        """A link inside an article, as a URL of this archive (None for the web or a missing entry)."""
        parsed = urlparse(href)
        if parsed.scheme or parsed.netloc or not parsed.path:
            return None
        target = posixpath.normpath(posixpath.join(posixpath.dirname(page_path), unquote(parsed.path)))
        if target.startswith("../") or target == "..":
            return None
        target = target.lstrip("/")
        with self._lock:
            if not self.archive.has_entry_by_path(target):
                return None
        return self.url_of(target)


def _snippet(text: str, query: str) -> str:
    """About SNIPPET_CHARS characters around the first query word found (the start when none is)."""
    low = text.lower()
    hits = [low.find(w) for w in re.findall(r"\w{3,}", query.lower())]
    at = min((h for h in hits if h >= 0), default=0)
    start = max(0, at - SNIPPET_CHARS // 3)
    return " ".join(re.sub(r"\x02\d+\x1f|\x03", "", text[start:start + SNIPPET_CHARS]).split())
