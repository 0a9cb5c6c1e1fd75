"""A finished answer rendered as Markdown: prose through Qt's Markdown support, fenced code blocks
as their own widgets (monospace, syntax colours when Pygments is present, a Copy button)."""
from __future__ import annotations

import html
import re

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QScrollArea, QToolButton, QVBoxLayout, QWidget

from app.ui.rich_text import StreamingHtml, markdown_html, open_link
from app.ui.theme import current_colors

FENCE = re.compile(r"^(```|~~~)[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:^\1[ \t]*$|\Z)", re.S | re.M)


def split_markdown(text: str) -> list[tuple[str, str, str]]:
    """[(kind, language, body)] with kind "prose" or "code"; an unclosed fence runs to the end."""
    parts, pos = [], 0
    for m in FENCE.finditer(text):
        if m.start() > pos and text[pos:m.start()].strip():
            parts.append(("prose", "", text[pos:m.start()]))
        parts.append(("code", m.group(2), m.group(3).rstrip("\n")))
        pos = m.end()
    if text[pos:].strip():
        parts.append(("prose", "", text[pos:]))
    return parts


def highlight_html(code: str, language: str, dark: bool) -> str:
    """Code as inline-styled HTML; plain escaped text if Pygments or the language is unknown."""
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import get_lexer_by_name, guess_lexer
        from pygments.util import ClassNotFound
        try:
            lexer = get_lexer_by_name(language) if language else guess_lexer(code)
        except ClassNotFound:
            lexer = None
        if lexer is not None:
            style = "monokai" if dark else "friendly"
            body = highlight(code, lexer, HtmlFormatter(nowrap=True, noclasses=True, style=style))
            return f"<pre style='margin:0'>{body}</pre>"
    except ImportError:
        pass
    return f"<pre style='margin:0'>{html.escape(code)}</pre>"


class ProseLabel(QLabel):
    """Model text, shown literally: Markdown through rich_text (never Qt's HTML-passing reader), or
    plain text. `source()` is the text as the model wrote it."""

    def __init__(self, text: str, markdown: bool, streaming: bool = False):
        super().__init__()
        self.markdown = markdown
        self._source = ""
        # An answer being written is re-set per batch: render only its end. Finished text: all at once.
        self._streaming = StreamingHtml() if streaming else None
        self.setTextFormat(Qt.TextFormat.RichText if markdown else Qt.TextFormat.PlainText)
        self.setWordWrap(True)
        self.setOpenExternalLinks(False)        # a click goes through open_link: http(s) only
        self.linkActivated.connect(open_link)
        self.setText(text)

    def setText(self, text: str) -> None:   # noqa: N802 (Qt's name): every caller gets the safe path
        self._source = text
        if not (self.markdown and text):
            shown = text
        elif self._streaming is not None:
            shown = self._streaming.render(text, current_colors())
        else:
            shown = markdown_html(text, current_colors())
        super().setText(shown)
        # A Tab stop only where there is a link to reach; elsewhere the mouse selects the text.
        flags = Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.LinksAccessibleByMouse
        if self.markdown and "<a href" in shown:
            flags |= Qt.TextInteractionFlag.LinksAccessibleByKeyboard
        self.setTextInteractionFlags(flags)

    def source(self) -> str:
        return self._source


def prose_label(text: str, markdown: bool, streaming: bool = False) -> ProseLabel:
    return ProseLabel(text, markdown, streaming)


class CodeBlock(QFrame):
    """One fenced code block with its language and a Copy button."""

    def __init__(self, code: str, language: str, parent=None):
        super().__init__(parent)
        self.setObjectName("CodeBlock")
        self.code = code
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        header = QWidget(objectName="CodeHeader")
        h = QHBoxLayout(header)
        h.setContentsMargins(10, 2, 4, 2)
        lang = QLabel(language or "code", objectName="Caption")
        self.copy_button = QToolButton(text="Copy")
        self.copy_button.setToolTip("Copy this code")
        self.copy_button.clicked.connect(self.copy)
        h.addWidget(lang)
        h.addStretch(1)
        h.addWidget(self.copy_button)
        body = QLabel()
        body.setTextFormat(Qt.TextFormat.RichText)
        body.setText(highlight_html(code, language, current_colors().dark))
        body.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        body.setContentsMargins(12, 8, 12, 10)
        body.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        # Long lines scroll sideways inside the block instead of widening the whole chat column.
        scroll = QScrollArea(objectName="CodeScroll")
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)     # its Copy button is the block's Tab stop
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidgetResizable(True)
        scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        scroll.setWidget(body)
        self.body, self.scroll = body, scroll
        self._fit_height()
        lay.addWidget(header)
        lay.addWidget(scroll)

    def _fit_height(self) -> None:
        # Room for the sideways scroll bar only when the code is wider than the block.
        bar = self.scroll.horizontalScrollBar().sizeHint().height()
        wide = self.body.sizeHint().width() > self.scroll.viewport().width()
        self.scroll.setFixedHeight(self.body.sizeHint().height() + (bar if wide else 0))

    def resizeEvent(self, e) -> None:
        super().resizeEvent(e)
        self._fit_height()

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.code)
        self.copy_button.setText("Copied")
        # With the button as context, Qt drops the timer if the button is deleted first.
        QTimer.singleShot(1500, self.copy_button, lambda: self.copy_button.setText("Copy"))


class MarkdownView(QWidget):
    """Renders `text` once as Markdown + code blocks."""

    def __init__(self, text: str, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(8)
        self.code_blocks: list[CodeBlock] = []
        for kind, lang, body in split_markdown(text):
            if kind == "code":
                block = CodeBlock(body, lang)
                self.code_blocks.append(block)
                lay.addWidget(block)
            else:
                lay.addWidget(prose_label(body.strip("\n"), markdown=True))
