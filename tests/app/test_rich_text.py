"""Issue 29 items 1 and 18, issue 24's window check: model text is shown literally, whatever it holds
(HTML-looking text, lists, tables, quotes, long lines), math is rendered with its backslashes intact,
and nothing in an answer loads a resource or opens a link until it is clicked (then only http(s))."""
import re

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QLabel

from app.ui.markdown_view import CodeBlock, MarkdownView

CORPUS = [
    "In Rust, `Vec<String>` owns its strings; a Vec<String> outside code too. The rest must stay visible.",
    "Set the header to <your-api-key> and restart.\n\nThen continue with step two.",
    'An <img src="file:///etc/passwd"> tag and <script>alert(1)</script> are only text.\n\nMore after them.',
    "<div>block html</div>\n\nnext paragraph survives",
    "HTML comment <!-- hidden words --> stays, and so does <br> and </p> here.",
    "- one\n  - two <b>bold maybe</b>\n    1. three\n- four\n\nClosing line.",
    "| name | type<T> |\n|---|---|\n| left | x > y && y < z |\n| a | b |\n\nAfter the table.",
    "> quoted <tag> text\n> second quoted line\n\nafter the quote",
    "lots " * 300 + "<end> of a very long line",
    "Before code\n\n```python\nif a < b and c > d:\n    print('<p>')\n```\n\nAfter code <still> here.",
    "A [docs link](https://example.com/x) and a [bad one](javascript:alert(1)) and <http://plain.example>.",
    "Generics: Option<Box<dyn Error>> and HashMap<K, V> and a <T: Clone> bound.",
]


def label_visible_text(label: QLabel) -> str:
    """The text a QLabel puts on screen, read the way Qt reads its text format."""
    doc = QTextDocument()
    if label.textFormat() == Qt.TextFormat.MarkdownText:
        doc.setMarkdown(label.text())
    elif label.textFormat() == Qt.TextFormat.PlainText:
        doc.setPlainText(label.text())
    else:
        doc.setHtml(label.text())
    return doc.toPlainText()


def view_visible_text(view: MarkdownView) -> str:
    parts = []
    for i in range(view.layout().count()):
        w = view.layout().itemAt(i).widget()
        if isinstance(w, CodeBlock):
            parts.append(label_visible_text(w.body))
        elif isinstance(w, QLabel):
            parts.append(label_visible_text(w))
    return "\n".join(parts)


def words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9]+", text)


def source_words(src: str) -> list[str]:
    """The words of the source a reader sees: without list markers, fence languages, link targets."""
    src = re.sub(r"^\s*(?:[-*+]|\d+\.)\s", "", src, flags=re.M)
    src = re.sub(r"^```\w*$", "", src, flags=re.M)
    src = re.sub(r"\]\(https?://[^)]*\)", "]", src)
    return words(src)


@pytest.mark.parametrize("src", CORPUS)
def test_visible_text_is_the_source(qtbot, src):
    view = MarkdownView(src)
    qtbot.addWidget(view)
    shown = view_visible_text(view)
    assert words(shown) == source_words(src)
    for literal in re.findall(r"<[^<>\n]*>", re.sub(r"<http://plain.example>", "", src)):
        assert literal in shown.replace("\n", " ") or literal in shown, literal


def test_streaming_label_shows_angle_brackets(qtbot):
    from app.ui.markdown_view import prose_label
    label = prose_label("Use <your-api-key> here, then the rest.", markdown=True)
    qtbot.addWidget(label)
    assert label_visible_text(label) == "Use <your-api-key> here, then the rest."


def test_math_inline_and_display_keep_their_backslashes(qtbot):
    src = ("Euler: \\( e^{i\\pi} + 1 = 0 \\) is neat.\n\n$$\\int_0^1 x^2\\,dx = \\frac{1}{3}$$\n\n"
           "Costs $5 and $10, code `$x$`, and an unknown \\(\\foo{y}\\).")
    view = MarkdownView(src)
    qtbot.addWidget(view)
    shown = view_visible_text(view)
    assert "eiπ + 1 = 0" in shown
    assert "∫01 x2 dx = 1⁄3" in shown
    assert "$5 and $10" in shown and "$x$" in shown and "\\foo" in shown
    assert "\\(" not in shown and "$$" not in shown
    (label,) = [w for w in view.findChildren(QLabel)]
    assert "<sup>" in label.text() and "<sub>" in label.text()
    assert 'align="center"' in label.text()      # display math stands on its own line, centred


HOSTILE = ('<img src="file:///etc/passwd"> and ![x](http://host/x.png) and ![y](file:///etc/hosts), '
           '[click](javascript:alert(1)), <a href="javascript:alert(2)">a</a>, <script>alert(3)</script>, '
           "and [a site](https://example.com/page).")


def test_hostile_answer_in_a_real_window_loads_nothing_and_opens_only_clicked_https(qtbot, store, monkeypatch):
    from PySide6.QtGui import QDesktopServices
    from scripted import ScriptedSession, answer_script

    from test_app_window import make_window, type_and_enter
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda url: opened.append(url.toString()) or True))
    c, w = make_window(qtbot, store, ScriptedSession(answer_script(final=HOSTILE)))
    type_and_enter(qtbot, w, "show me")
    qtbot.waitUntil(lambda: not c.busy, timeout=5000)
    bubble = w.messages.assistant_bubbles()[-1]
    labels = [lab for lab in bubble.rendered.findChildren(QLabel)]
    html = "".join(lab.text() for lab in labels)
    assert "<img" not in html and "javascript:" not in re.findall(r'href="([^"]*)"', html).__str__()
    assert not any(lab.openExternalLinks() for lab in labels)     # a link opens only through open_link
    # The documents Qt laid out hold no image at all: nothing to load, local or remote.
    docs = [d for lab in labels for d in lab.findChildren(QTextDocument)]
    assert docs and not any(f.isImageFormat() for d in docs for f in d.allFormats())
    shown = view_visible_text(bubble.rendered)
    assert '<img src="file:///etc/passwd">' in shown and "<script>alert(3)</script>" in shown
    assert opened == []                                          # nothing opened by showing it
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert sorted(hrefs) == ["http://host/x.png", "https://example.com/page"]
    (label,) = [lab for lab in labels if "example.com" in lab.text()]
    label.linkActivated.emit("javascript:alert(1)")
    label.linkActivated.emit("file:///etc/passwd")
    label.linkActivated.emit("mailto:someone@example.com")
    label.linkActivated.emit("https://example.com/page")
    assert opened == ["https://example.com/page"]
    c.shutdown()


def test_copy_gives_the_whole_answer_as_markdown(qtbot, store):
    """Issue 29, Copy and export: a whole message copied as the Markdown the model wrote."""
    from PySide6.QtGui import QGuiApplication
    from scripted import ScriptedSession, answer_script

    from test_app_window import make_window, type_and_enter
    final = "# Plan\n\n- **one** `Vec<String>`\n- two\n\n```python\nprint(1)\n```\n\n\\( e^{i\\pi} \\)"
    c, w = make_window(qtbot, store, ScriptedSession(answer_script(final=final)))
    type_and_enter(qtbot, w, "plan")
    bubble = w.messages.assistant_bubbles()[-1]
    qtbot.waitUntil(lambda: not c.busy, timeout=5000)
    assert bubble.copy_button.isVisibleTo(w)
    qtbot.mouseClick(bubble.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == final and bubble.copy_button.text() == "Copied"
    c.shutdown()


def test_an_answer_being_written_renders_only_its_end_each_time(qtbot, monkeypatch):
    """markdown-it is pure Python (~300 ms for 17,000 characters here): the streaming label re-renders
    only what follows the last finished paragraph, and ends showing what a whole render shows."""
    import app.ui.rich_text as rich_text
    from app.ui.markdown_view import prose_label
    text = "\n\n".join(CORPUS[i % len(CORPUS)] for i in range(80))
    sizes = []
    real = rich_text.markdown_html
    monkeypatch.setattr(rich_text, "markdown_html", lambda t, c: sizes.append(len(t)) or real.__wrapped__(t, c))
    label = prose_label("", markdown=True, streaming=True)
    qtbot.addWidget(label)
    for end in range(0, len(text) + 40, 40):
        label.setText(text[:end])
    assert len(text) > 10000 and max(sizes) < 2000
    whole = prose_label(text, markdown=True)
    qtbot.addWidget(whole)
    assert words(label_visible_text(label)) == words(label_visible_text(whole))
