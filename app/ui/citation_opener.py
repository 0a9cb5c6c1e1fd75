"""Opens a citation link (app/citation_links.py): a document of the library in its default app, a
ZIM article (or a document the system can't open) in a small reader view with the cited lines
marked. Only a source the user added is opened: the URL must be one the library holds.
"""
from __future__ import annotations

import html
from urllib.parse import unquote, urlparse

from PySide6.QtCore import QObject, QUrl, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QDialog, QTextBrowser, QVBoxLayout

from app.citation_links import SCHEME, parse_citation_url


class ReaderView(QDialog):
    """A document's lines as the model saw them, the cited ones marked and scrolled to."""

    def __init__(self, title: str, lines: list[str], marked: tuple[int, int] | None, parent=None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(720, 560)
        self.text = QTextBrowser(objectName="ReaderText")
        self.text.setOpenLinks(False)
        lo, hi = marked or (-1, -1)
        rows = []
        for i, line in enumerate(lines):
            body = html.escape(line) or "&nbsp;"
            style = " style='background:#fff3b0;color:#000'" if lo <= i <= hi else ""
            rows.append(f"<a name='L{i}'></a><div{style}><span style='color:#888'>L{i}</span>&nbsp; {body}</div>")
        self.text.setHtml("".join(rows))
        if marked:
            self.text.scrollToAnchor(f"L{lo}")
        QVBoxLayout(self).addWidget(self.text)


class CitationOpener(QObject):
    """Installed as the handler of citation links (QDesktopServices.setUrlHandler)."""

    def __init__(self, library, parent=None):
        super().__init__(parent)
        self.library = library
        self.reader: ReaderView | None = None
        self.open_in_app = QDesktopServices.openUrl   # the user's default app for the document

    def install(self) -> None:
        QDesktopServices.setUrlHandler(SCHEME, self, "open_link")

    @Slot(QUrl)
    def open_link(self, url: QUrl) -> None:
        self.open(url.toString(QUrl.ComponentFormattingOption.FullyEncoded))

    def open(self, link: str) -> str:
        """Open a citation link; returns what was done ("app", "reader" or "" when refused)."""
        parsed = parse_citation_url(link)
        if parsed is None:
            return ""
        url, lines = parsed
        if url.startswith("file://") and self._holds(url):
            if self.open_in_app(QUrl.fromLocalFile(unquote(urlparse(url).path))):
                return "app"
        read = self.library.read(url)   # ZIM articles, and documents no app opens (none here: refused)
        if read is None:
            return ""
        self.reader = ReaderView(read[0], read[1], lines, self.parent())
        self.reader.show()
        return "reader"

    def _holds(self, url: str) -> bool:
        lib = self.library.library()
        return lib is not None and lib.fetch(url) is not None   # only what was indexed from the user's folders
