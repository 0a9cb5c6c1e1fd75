"""BrowserTool: gpt-oss's built-in `browser` for one chat, over the sources the user added.

    tool = BrowserTool([library, wikipedia], count_tokens=lambda s: len(enc.encode_ordinary(s)))
    text = tool.run("browser.search", '{"query": "tide tables"}')   # what the model reads next
    tool.page(0)                                                      # cursor 0: a Page (for citations)

State as the reference keeps it: every search, open, scroll and find adds a page under the next
cursor; `open(cursor=c, id=i)` follows link i of page c, `open(cursor=c, loc=n)` scrolls page c,
`find(pattern, cursor=c)` searches inside it. Every answer is one view of about VIEW_TOKENS tokens.
Nothing here raises for what the model wrote: mistakes come back as one sentence it can act on.
Only the backends' own URLs can be opened: a link or a URL that no source holds is refused.
"""

from __future__ import annotations

import logging
import threading

from engine.browser.backend import Backend, BackendError, Hit
from engine.browser.calls import FindArgs, OpenArgs, SearchArgs, check_browser_call
from engine.browser.page import Page, document_page, find_page, render_view, results_page, view_end

log = logging.getLogger(__name__)
MAX_PAGES = 200  # cursors kept per chat (oldest pages are dropped from memory, their cursors stay taken)


class ToolUsageError(Exception):
    """A call that can't be carried out; its message goes back to the model."""


class BrowserTool:
    def __init__(self, sources: list[Backend], count_tokens, view_tokens: int = 1024, max_results: int = 10):
        self.sources = {b.name: b for b in sources}
        self.default = sources[0].name if sources else None
        self.count_tokens = count_tokens
        self.view_tokens = view_tokens
        self.max_results = max_results
        self.pages: dict[int, Page] = {}
        self.next_cursor = 0
        self._lock = threading.Lock()  # one call at a time

    @property
    def source_names(self) -> list[str]:
        return list(self.sources)

    # ------------------------------------------------------------ public

    def run(self, recipient: str, arguments: str) -> str:
        """Carry out one call (`browser.search`, ...): the page view or a sentence about the mistake."""
        args, error = check_browser_call(recipient, arguments)
        if error:
            return error
        with self._lock:
            try:
                if isinstance(args, SearchArgs):
                    return self._search(args)
                if isinstance(args, OpenArgs):
                    return self._open(args)
                return self._find(args)
            except (ToolUsageError, BackendError) as e:
                return str(e)
            except Exception as e:  # noqa: BLE001 - a broken document must not end the chat
                log.exception("browser: %s failed", recipient)
                return f"The browser failed on this call ({type(e).__name__}); try another query or page."

    def reset(self) -> None:
        """Forget every page (a new chat): the next page is cursor 0 again."""
        with self._lock:
            self.pages.clear()
            self.next_cursor = 0

    def page(self, cursor: int) -> Page | None:
        return self.pages.get(cursor)

    def replay(self, messages: list[dict]) -> int:
        """Rebuild the pages of a saved conversation by running its browser calls again, in order,
        so its cursors (and the citations in its answers) mean what they meant (e.g. a chat reopened
        from history). The documents are read as they are now. Returns the number of calls run."""
        calls = [m for m in messages if m.get("role") == "assistant" and str(m.get("recipient") or "").startswith("browser.")]
        for m in calls:
            self.run(m["recipient"], m.get("content") or "")
        return len(calls)

    # ------------------------------------------------------------ the three functions

    def _search(self, args: SearchArgs) -> str:
        backends = self._backends(args.source)
        hits: list[tuple[str, Hit]] = []
        for b in backends:
            hits += [(b.name, h) for h in b.search(args.query, min(args.topn, self.max_results))]
        if len(backends) > 1:  # scores of different sources don't compare: interleave them
            hits = _interleave(hits, [b.name for b in backends])
        return self._show(results_page(args.query, hits[:min(args.topn, self.max_results)]), 0)

    def _open(self, args: OpenArgs) -> str:
        if isinstance(args.id, str):  # a URL: only one a source holds
            page = self._fetch(args.source, args.id, refresh=True)
            return self._show(page, max(args.loc, 0), args.num_lines)
        current = self._page(args.cursor)
        if args.id < 0:  # scroll the page
            loc = 0 if args.loc < 0 else args.loc
            return self._show(current, loc, args.num_lines)
        if args.id not in current.links:
            raise ToolUsageError(f"Invalid link id `{args.id}`." + _valid_ids(current))
        source, url = current.links[args.id]
        page = self._fetch(source, url)
        loc = args.loc
        if loc < 0:
            line = current.line_of.get(args.id)
            if line is None and current.query:
                line = _best_line(page, current.query)
            loc = max(0, (line or 0) - 4) if line and line > 4 else 0
        return self._show(page, loc, args.num_lines)

    def _find(self, args: FindArgs) -> str:
        page = self._page(args.cursor)
        if page.results:
            raise ToolUsageError("Cannot run `find` on search results page or find results page")
        return self._show(find_page(page, args.pattern), 0)

    # ------------------------------------------------------------ helpers

    def _backends(self, source: str | None) -> list[Backend]:
        if not self.sources:
            raise ToolUsageError("No sources are on for this chat; the user can add folders or archives.")
        if source is None or source == "":
            return [self.sources[self.default]] if len(self.sources) == 1 else list(self.sources.values())
        if source not in self.sources:
            raise ToolUsageError(f"There is no source {source!r}; the sources are {', '.join(self.sources)}.")
        return [self.sources[source]]

    def _fetch(self, source: str | None, url: str, refresh: bool = False) -> Page:
        # A document opened before is that page again, as in the reference; a URL typed in is read again.
        names = [b.name for b in self._backends(source)]
        for page in [] if refresh else reversed(list(self.pages.values())):
            if page.url == url and page.source in names and not page.results:
                return page
        for b in self._backends(source):
            doc = b.fetch(url)
            if doc is not None:
                return document_page(doc, b.name)
        raise ToolUsageError(f"`{url[:200]}` is not in the sources ({', '.join(self.sources)}); "
                             "open a link from a page or search first.")

    def _page(self, cursor: int) -> Page:
        if self.next_cursor == 0:
            raise ToolUsageError("No pages to access!")
        c = self.next_cursor - 1 if cursor == -1 else cursor
        if c not in self.pages:
            raise ToolUsageError(f"Cursor `{cursor}` is out of range. Available cursor indices: "
                                 f"[0 - {self.next_cursor - 1}].")
        return self.pages[c]

    def _show(self, page: Page, loc: int, num_lines: int = -1) -> str:
        total = len(page.lines)
        if loc >= total:
            raise ToolUsageError(f"Invalid location parameter: `{loc}`. Cannot exceed page maximum of {total - 1}.")
        cursor = self.next_cursor
        self.pages[cursor] = page
        self.next_cursor += 1
        for old in [c for c in self.pages if c < cursor - MAX_PAGES]:
            del self.pages[old]
        end = view_end(page.lines, loc, num_lines, self.count_tokens, self.view_tokens)
        return render_view(page, cursor, loc, end)


def _valid_ids(page: Page) -> str:
    return f" Valid link ids on this page: {', '.join([str(i) for i in sorted(page.links)][:30])}." if page.links else \
        " This page has no links."


def _interleave(hits: list[tuple[str, Hit]], order: list[str]) -> list[tuple[str, Hit]]:
    by_source = {name: [h for h in hits if h[0] == name] for name in order}
    out = []
    for rank in range(max((len(v) for v in by_source.values()), default=0)):
        out += [v[rank] for v in by_source.values() if rank < len(v)]
    return out


def _best_line(page: Page, query: str) -> int | None:
    """The line holding most of the query's words (the most relevant passage), None if none."""
    words = {w for w in query.lower().split() if len(w) > 2}
    if not words:
        return None
    best, best_count = None, 0
    for i, line in enumerate(page.lines):
        low = line.lower()
        count = sum(w in low for w in words)
        if count > best_count:
            best, best_count = i, count
    return best
