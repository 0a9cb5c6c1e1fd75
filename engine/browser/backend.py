"""What a browser source is: one small interface, two methods.

    class Backend(Protocol):
        name: str                                    # shown to the model in `sources=` (e.g. "library")
        def search(query, topn) -> list[Hit]
        def fetch(url) -> Document | None           # None: not in this source

A backend only ever answers for what it holds (the folders the user added, the ZIM archives given):
fetch() of anything else returns None, and so a page can't make the browser open anything outside
the sources. Backends are called from the tool's thread, never the model's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Hit:
    """One search result: the document's URL and title and a short passage around the match."""

    url: str
    title: str
    snippet: str = ""
    score: float = 0.0


# A link inside a document's text is written link_marker(i, text) by the converter, never as
# 【i†text】: the page replaces every 【 and 】 a document itself contains, then turns the markers
# (control characters that clean_text removes from documents) into links. A document can't forge one.
LINK_OPEN, LINK_SEP, LINK_CLOSE = "\x02", "\x1f", "\x03"
_CONTROL = str.maketrans({LINK_OPEN: " ", LINK_SEP: " ", LINK_CLOSE: " ", "\x00": ""})


def clean_text(raw: str) -> str:
    """A document's own text, with the characters that mark links removed."""
    return raw.translate(_CONTROL)


def link_marker(index: int, text: str) -> str:
    return f"{LINK_OPEN}{index}{LINK_SEP}{clean_text(text)}{LINK_CLOSE}"


@dataclass
class Document:
    """A fetched document as text. `links[i]` is the URL (inside this same source) of the link
    written link_marker(i, ...) in `text`; the page shows it as 【i†text】."""

    url: str
    title: str
    text: str
    links: list[str] = field(default_factory=list)


class Backend(Protocol):
    name: str

    def search(self, query: str, topn: int) -> list[Hit]: ...

    def fetch(self, url: str) -> Document | None: ...


class BackendError(Exception):
    """A source failed in a way the model should be told about (one sentence)."""
