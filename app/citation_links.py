"""Citations in an answer as links: `【6†L9-L11】` becomes a small Markdown link that opens the source
at those lines. No Qt here (app/ui/citation_opener.py opens them).

The cursor is resolved from the answer's own browser steps: each page the model saw starts with
`[cursor] Title (url)` (engine/browser/page.py's render_view), so a chat reopened from history
links its citations without running its calls again. A citation of a search or find results page,
or of a cursor the steps don't hold, is left as the model wrote it.
"""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlencode, urlparse

from engine.browser.citations import citations

SCHEME = "gptoss-cite"
_HEADER = re.compile(r"^\[(\d+)\] (.*?)(?: \(([a-z]+://.*)\))?$")


def pages_seen(steps) -> dict[int, tuple[str, str]]:
    """cursor -> (title, url) of every document page the answer's browser calls showed."""
    out = {}
    for step in steps or []:
        if getattr(step, "type", "") != "call" or not step.recipient.startswith("browser.") or not step.result:
            continue
        m = _HEADER.match(step.result.split("\n", 1)[0])
        if m and m.group(3) and "/find?pattern=" not in m.group(3) and not m.group(3).endswith("..."):
            out[int(m.group(1))] = (m.group(2), source_url(m.group(3)))
    return out


def source_url(shown: str) -> str:
    """The source's own URL from the one a page header shows (headers show it unquoted)."""
    parsed = urlparse(shown)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path)).as_uri()
    return f"{parsed.scheme}://{parsed.netloc}/{quote(unquote(parsed.path.lstrip('/')))}"


class _Pages:
    """The tool-shaped view citations() resolves against: page(cursor) with url/title/results."""

    def __init__(self, seen):
        self.seen = seen

    def page(self, cursor):
        if cursor not in self.seen:
            return None
        title, url = self.seen[cursor]
        return type("Seen", (), {"title": title, "url": url, "results": False, "source": None})()


def citation_url(url: str, lines: tuple[int, int] | None) -> str:
    query = {"url": url}
    if lines:
        query.update({"from": lines[0], "to": lines[1]})
    return f"{SCHEME}:?{urlencode(query, quote_via=quote)}"


def parse_citation_url(link: str) -> tuple[str, tuple[int, int] | None] | None:
    """(document url, lines) from a citation link; None if it is not one."""
    parsed = urlparse(link)
    if parsed.scheme != SCHEME:
        return None
    q = parse_qs(parsed.query)
    url = (q.get("url") or [""])[0]
    if not url:
        return None
    try:
        lines = (int(q["from"][0]), int(q["to"][0])) if "from" in q else None
    except (ValueError, KeyError):
        lines = None
    return url, lines


def _label(title: str, lines) -> str:
    name = re.sub(r"[\[\]()<>`*_\\]", "", title).strip()
    name = name if len(name) <= 28 else name[:27] + "…"
    where = "" if not lines else f" L{lines[0]}" + (f"-{lines[1]}" if lines[1] != lines[0] else "")
    return f"{name or 'source'}{where}"


def defuse(answer: str) -> str:
    """A citation link the model wrote itself is shown as text, never made a link: only this
    module writes them, from the pages the model really saw."""
    return re.sub(SCHEME + r"(\s*):", SCHEME + "\u200b:", answer, flags=re.I)


def link_citations(answer: str, steps) -> str:
    """The answer with each resolvable citation as a Markdown link [title Lx-y](gptoss-cite:...)."""
    answer = defuse(answer)
    seen = pages_seen(steps)
    if not seen or "【" not in answer:
        return answer
    out, pos = [], 0
    for c in citations(answer, _Pages(seen)):
        if not c.url:
            continue
        out += [answer[pos:c.start], f"[{_label(c.title or '', c.lines)}]({citation_url(c.url, c.lines)})"]
        pos = c.end
    return "".join(out) + answer[pos:]
