"""gpt-oss's built-in `browser` tool, offline: search, open and find over the user's own documents
(engine.browser.library) and Kiwix ZIM archives (engine.browser.zim). No Qt, no MLX; calls run on
the caller's thread (never the model's, in the app). See docs/browser.md."""

from engine.browser.backend import Backend, BackendError, Document, Hit
from engine.browser.calls import check_browser_call
from engine.browser.citations import Citation, citations, url_citations
from engine.browser.library import IndexJob, IndexReport, Library
from engine.browser.spec import BROWSER, description, namespace
from engine.browser.tool import BrowserTool

__all__ = ["BROWSER", "Backend", "BackendError", "BrowserTool", "Citation", "Document", "Hit", "IndexJob",
           "IndexReport", "Library", "check_browser_call", "citations", "description", "namespace", "url_citations"]
