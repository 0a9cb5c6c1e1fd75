"""Model text (untrusted Markdown) as Qt rich text that shows every character the model wrote.

Qt's own Markdown reader passes raw HTML through, so `Vec<String>` or `<your-api-key>` vanished with
the rest of the paragraph. Here markdown-it (CommonMark + tables) parses with HTML off, so a tag is
text; math spans are cut out first so their backslashes and underscores reach math_text intact.
Nothing rendered ever loads a resource: images become links, and links other than http(s)
stay text. Links open in the browser only when clicked (see open_link).
"""
from __future__ import annotations

import html
import re
from functools import lru_cache
from urllib.parse import urlsplit

from markdown_it import MarkdownIt

from app.ui.math_text import find_math, latex_html
from app.ui.theme import Colors

SAFE_SCHEMES = ("http", "https")     # issue 24: only web links open, in the browser
# and citations (app/citation_links.py): only the app makes them (a model's own are defused there),
# and they open only what the user's library holds (app/ui/citation_opener.py).
SAFE_SCHEMES += ("gptoss-cite",)
PH_OPEN, PH_CLOSE = "\ue000", "\ue001"          # private-use characters: a math span's placeholder
PLACEHOLDER = re.compile(f"{PH_OPEN}(\\d+){PH_CLOSE}")
ALONE = re.compile(f"<p>{PH_OPEN}(\\d+){PH_CLOSE}</p>")


def safe_url(url: str) -> bool:
    return urlsplit(url.strip()).scheme.lower() in SAFE_SCHEMES


def _parser(colors: Colors) -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.validateLink = safe_url      # javascript:, file:, data:, relative paths: shown as text

    def image(self, tokens, idx, options, env):
        tok = tokens[idx]
        alt = self.renderInlineAsText(tok.children or [], options, env) or tok.attrGet("src") or "image"
        src = tok.attrGet("src") or ""
        label = f"[image: {html.escape(alt)}]"
        return f'<a href="{html.escape(src)}">{label}</a>' if safe_url(src) else label

    def code_inline(self, tokens, idx, options, env):
        return (f'<code style="background-color:{colors.code_bg}; font-family: Menlo, \'DejaVu Sans Mono\', '
                f'monospace;">&nbsp;{html.escape(tokens[idx].content)}&nbsp;</code>')

    def table_open(self, tokens, idx, options, env):
        return (f'<table border="1" cellspacing="0" cellpadding="5" style="border-collapse: collapse; '
                f'border-color: {colors.border}; margin: 4px 0;">')

    def th_open(self, tokens, idx, options, env):
        align = tokens[idx].attrGet("style") or ""
        align = f' align="{align.split(":")[-1]}"' if align.startswith("text-align") else ""
        return f'<th bgcolor="{colors.code_bg}"{align}>'

    def blockquote_open(self, tokens, idx, options, env):
        # Qt's rich text draws no left border: a two-cell table makes the bar.
        return (f'<table cellspacing="0" cellpadding="0" style="margin: 4px 0;"><tr>'
                f'<td width="3" bgcolor="{colors.border}"></td><td style="padding-left: 10px; color: {colors.muted};">')

    def blockquote_close(self, tokens, idx, options, env):
        return "</td></tr></table>"

    def heading_open(self, tokens, idx, options, env):
        size = {"h1": 20, "h2": 17, "h3": 15}.get(tokens[idx].tag, 14)
        return f'<{tokens[idx].tag} style="font-size: {size}px;">'

    for name, rule in dict(image=image, code_inline=code_inline, table_open=table_open, th_open=th_open,
                           blockquote_open=blockquote_open, blockquote_close=blockquote_close,
                           heading_open=heading_open).items():
        md.add_render_rule(name, rule)
    return md


_PARSERS: dict[Colors, MarkdownIt] = {}


@lru_cache(maxsize=128)     # a chat opened again, or a bubble rebuilt, doesn't parse its answers again
def markdown_html(text: str, colors: Colors) -> str:
    """Rich text for the Markdown `text`: every character of the source that isn't Markdown syntax is
    shown, as text; math ($...$, \\(...\\), $$...$$, \\[...\\]) is rendered."""
    md = _PARSERS.get(colors) or _PARSERS.setdefault(colors, _parser(colors))
    spans, pieces, pos = [], [], 0
    for start, end, latex, display in find_math(text):
        pieces.append(text[pos:start])
        pieces.append(f"{PH_OPEN}{len(spans)}{PH_CLOSE}")
        spans.append((latex, display))
        pos = end
    pieces.append(text[pos:])
    out = md.render("".join(pieces)).strip()
    if not spans:
        return out

    def display_alone(m):
        latex, display = spans[int(m.group(1))]
        if not display:
            return m.group(0)
        return f'<p align="center" style="font-size: 15px;">{latex_html(latex)}</p>'

    def inline(m):
        latex, display = spans[int(m.group(1))]
        body = latex_html(latex)
        return f"<br>&nbsp;&nbsp;&nbsp;&nbsp;{body}<br>" if display else body

    return PLACEHOLDER.sub(inline, ALONE.sub(display_alone, out))


def stable_cut(text: str) -> int:
    """Where `text` can be cut so that what comes before renders the same whatever is appended: just
    after its last blank line outside a code fence or $$ math (0: nowhere yet)."""
    cut, pos, fence, math = 0, 0, "", False
    for line in text.splitlines(keepends=True):
        pos += len(line)
        bare = line.strip()
        if fence:
            fence = "" if bare.startswith(fence) and not bare.strip("`~") else fence
        elif bare.startswith(("```", "~~~")):
            fence = bare[:3]
        elif bare.count("$$") % 2:
            math = not math
        elif not bare and not math and line.endswith("\n"):
            cut = pos
    return cut


class StreamingHtml:
    """markdown_html for text that grows at its end (an answer being written): the part before the
    last stable cut is rendered once and kept, so each update renders only the last paragraphs.
    (markdown-it is pure Python: the whole of a long answer per token batch would stall the window.)"""

    def __init__(self):
        self._src, self._html = "", ""

    def render(self, text: str, colors: Colors) -> str:
        if not text.startswith(self._src):
            self._src, self._html = "", ""
        tail = text[len(self._src):]
        cut = stable_cut(tail)
        if cut:
            self._html += markdown_html(tail[:cut], colors)
            self._src += tail[:cut]
            tail = tail[cut:]
        return self._html + (markdown_html(tail, colors) if tail.strip() else "")


def open_link(url: str) -> bool:
    """Open a clicked link in the browser, only if it is http(s)."""
    from PySide6.QtCore import QUrl
    from PySide6.QtGui import QDesktopServices
    if not safe_url(url):
        return False
    return QDesktopServices.openUrl(QUrl(url))
