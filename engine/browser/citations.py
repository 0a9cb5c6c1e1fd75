"""Citations in an answer: `【6†L9-L11】` or `【8†L3】` (cursor, then the lines cited).

    for c in citations(answer, tool):   # tool: the BrowserTool the answer's pages came from
        c.start, c.end      # where the citation is in the answer
        c.url, c.title      # the document (None when the cursor is unknown: left as written)
        c.lines             # (9, 11)

A citation's cursor is the page the model saw; a search or find results page is cited through
the document it lists, so the link still leads somewhere useful only when the page is a document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CITATION = re.compile(r"【(?P<cursor>\d+)†(?P<content>[^†】]+)(?:†[^†】]+)?】")
_LINES = re.compile(r"^L(\d+)(?:-L?(\d+))?$")


@dataclass(frozen=True)
class Citation:
    start: int
    end: int
    cursor: int
    text: str  # what is between † and 】 ("L9-L11")
    url: str | None = None
    title: str | None = None
    source: str | None = None
    lines: tuple[int, int] | None = None


def citations(answer: str, tool=None) -> list[Citation]:
    """Every citation in `answer`, resolved against the tool's pages when a tool is given."""
    out = []
    for m in CITATION.finditer(answer):
        cursor, text = int(m.group("cursor")), m.group("content")
        lm = _LINES.match(text.strip())
        lines = (int(lm.group(1)), int(lm.group(2) or lm.group(1))) if lm else None
        page = tool.page(cursor) if tool is not None else None
        if page is None or page.results or not page.url:
            out.append(Citation(m.start(), m.end(), cursor, text, lines=lines))
            continue
        out.append(Citation(m.start(), m.end(), cursor, text, page.url, page.title, page.source, lines))
    return out


def url_citations(answer: str, tool) -> list[dict]:
    """OpenAI Responses `url_citation` annotations for the resolvable citations in `answer`
    (indices into the answer as written; a citation the tool can't resolve gets none)."""
    return [{"type": "url_citation", "start_index": c.start, "end_index": c.end, "url": _with_lines(c),
             "title": c.title or c.url} for c in citations(answer, tool) if c.url]


def _with_lines(c: Citation) -> str:
    return f"{c.url}#L{c.lines[0]}-L{c.lines[1]}" if c.lines else c.url
