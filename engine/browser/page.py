"""Pages as the model sees them, in the reference's format (openai/gpt-oss simple_browser).

    [3] Title (url)
    **viewing lines [0 - 41] of 120**

    L0: first line of the page, wrapped at 80 characters
    L1: ... a link looks like 【2†its text】 ...

A page is wrapped into lines once; a view shows the lines from `loc` on that fit in about
VIEW_TOKENS tokens (the reference's 1024), whole lines only. Search results and find results are
pages too, whose links lead to documents (at the passage found).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from engine.browser.backend import LINK_CLOSE, LINK_OPEN, LINK_SEP, Document, Hit

VIEW_TOKENS = 1024  # the reference's view_tokens
WRAP = 80
FIND_CONTEXT_LINES = 4
MAX_FIND_RESULTS = 50
MAX_URL_CHARS = 1024
_MARKER = re.compile(re.escape(LINK_OPEN) + r"(\d+)" + re.escape(LINK_SEP) + "(.*?)" + re.escape(LINK_CLOSE), re.S)
_LINK = re.compile(r"【\d+†([^†】]+)(?:†[^†】]+)?】")


@dataclass
class Page:
    """One page in the browser's history: its text as lines, and where its links lead.

    links: id -> (backend name, url); line_of: id -> line to open the target at (search and find
    results point into the document); results: True for search and find result pages (no `find`)."""

    url: str
    title: str
    lines: list[str]
    links: dict[int, tuple[str, str]] = field(default_factory=dict)
    line_of: dict[int, int] = field(default_factory=dict)
    source: str = ""
    results: bool = False
    query: str = ""  # the search that led here: an open without loc starts at its best passage


def safe(text: str) -> str:
    """A document's text with what could pass for the browser's own markup made harmless
    (as the reference does): 【 】 become 〖 〗, zero-width spaces go."""
    return text.replace("【", "〖").replace("】", "〗").replace("\u200b", "")


def wrap_lines(text: str, width: int = WRAP) -> list[str]:
    """Lines of at most `width` characters; empty lines kept (the reference's wrap_lines)."""
    out: list[str] = []
    for line in text.split("\n"):
        out += textwrap.wrap(line, width=width, replace_whitespace=False, drop_whitespace=False) if line else [""]
    return out


def document_page(doc: Document, source: str) -> Page:
    """A fetched document as a page: its own text made safe, then its links numbered."""
    links: dict[int, tuple[str, str]] = {}

    def link(m: re.Match) -> str:
        i = int(m.group(1))
        if i >= len(doc.links):
            return m.group(2)
        links[i] = (source, doc.links[i])
        return f"【{i}†{m.group(2).replace('†', '‡').strip() or doc.links[i]}】"

    text = _MARKER.sub(link, safe(doc.text).replace("\r\n", "\n").replace("\r", "\n"))  # Windows and old Mac lines
    return Page(doc.url, safe(doc.title).replace("\n", " "), wrap_lines(text), links, source=source)


def results_page(query: str, hits: list[tuple[str, Hit]]) -> Page:
    """Search results as the reference shows them: a list of links with a passage each."""
    lines = ["", "URL: ", "# Search Results", ""]
    links: dict[int, tuple[str, str]] = {}
    for i, (source, hit) in enumerate(hits):
        title = safe(hit.title).replace("†", "‡").replace("\n", " ").strip() or hit.url
        snippet = " ".join(safe(hit.snippet).split())
        lines.append(f"  * 【{i}†{title}†{source}】 {snippet}".rstrip())
        links[i] = (source, hit.url)
    if not hits:
        lines.append(f"No results for `{safe(query)}`.")
    text = "\n".join(lines)
    return Page("", safe(query).replace("\n", " "), wrap_lines(text), links, results=True, query=query)


def find_page(page: Page, pattern: str) -> Page:
    """Every line of `page` holding `pattern` (case-insensitive, links as their text) with the
    lines after it, as the reference's find results; each links back to the page at that line."""
    lines = [_LINK.sub(lambda m: m.group(1), line) for line in page.lines]
    needle = pattern.lower()
    chunks, links, line_of = [], {}, {}
    i = 0
    while i < len(lines) and len(chunks) < MAX_FIND_RESULTS:
        if needle not in lines[i].lower():
            i += 1
            continue
        n = len(chunks)
        chunks.append(f"# 【{n}†match at L{i}】\n" + "\n".join(lines[i:i + FIND_CONTEXT_LINES]))
        links[n], line_of[n] = (page.source, page.url), i
        i += FIND_CONTEXT_LINES
    text = "\n\n".join(chunks) if chunks else f"No `find` results for pattern: `{safe(pattern)}`"
    title = f"Find results for text: `{safe(pattern)}` in `{page.title}`"
    return Page(f"{page.url}/find?pattern={quote(pattern)}", title.replace("\n", " "), wrap_lines(text), links,
                line_of, source=page.source, results=True)


def view_end(lines: list[str], loc: int, num_lines: int, count_tokens, view_tokens: int = VIEW_TOKENS) -> int:
    """The line after the last one shown from `loc`: num_lines lines if given (> 0), else as many
    numbered lines as fit in view_tokens tokens (a line cut by the budget is shown whole)."""
    if num_lines > 0:
        return min(loc + num_lines, len(lines))
    used = 0
    for i in range(loc, len(lines)):
        used += count_tokens(f"L{i}: {lines[i]}\n")
        if used > view_tokens:
            return i + 1
    return len(lines)


def render_view(page: Page, cursor: int, loc: int, end: int) -> str:
    """`[cursor] Title (url)`, the scrollbar, then the numbered lines [loc, end)."""
    header = page.title
    url = unquote(page.url)
    if url:
        header += f" ({url[:MAX_URL_CHARS - 3] + '...' if len(url) > MAX_URL_CHARS else url})"
    body = "\n".join(f"L{i}: {page.lines[i]}" for i in range(loc, end))
    return f"[{cursor}] {header}\n**viewing lines [{loc} - {end - 1}] of {len(page.lines) - 1}**\n\n{body}"
