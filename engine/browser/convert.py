"""Files to text for the browser: plain text, Markdown, source code, HTML, PDF and Word (.docx).

    title, text, links = to_text(Path("notes/tides.pdf"))

Libraries, chosen for being small and well kept (docs/browser.md has the comparison): pypdf for
PDF (pure Python, no system libraries; text in reading order page by page), python-docx for Word
(paragraphs and tables), and the standard library's HTMLParser for HTML (links kept so the model
can follow them, scripts and styles dropped). markitdown would do all of it, but its base install
brings magika and onnxruntime (file-type detection by a neural net) and converts to Markdown only:
links would have to be parsed back out of it, and its PDF and Word converters are extras wrapping
pdfminer.six and mammoth anyway. Speed per format: bench/browser_index.py.
Whatever a file holds, conversion never raises: an unreadable file becomes None (skipped, logged).
"""

from __future__ import annotations

import logging
import re
from html.parser import HTMLParser
from pathlib import Path

from engine.browser.backend import clean_text, link_marker

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst", ".org", ".csv", ".tsv", ".json", ".yaml", ".yml", ".toml",
                 ".ini", ".cfg", ".log", ".tex", ".xml"}
CODE_SUFFIXES = {".py", ".js", ".ts", ".tsx", ".jsx", ".c", ".h", ".cc", ".cpp", ".hpp", ".m", ".mm", ".swift",
                 ".rs", ".go", ".java", ".kt", ".rb", ".php", ".sh", ".zsh", ".bash", ".sql", ".r", ".jl",
                 ".lua", ".pl", ".scala", ".cs", ".css", ".scss", ".vue", ".svelte", ".dart", ".hs", ".ex"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
SUFFIXES = TEXT_SUFFIXES | CODE_SUFFIXES | HTML_SUFFIXES | {".pdf", ".docx"}
MAX_FILE_BYTES = 50 << 20  # larger files are skipped: a 50 MB text is not a document to browse
MAX_TEXT_CHARS = 5_000_000


def supported(path: Path) -> bool:
    return path.suffix.lower() in SUFFIXES and not path.name.startswith((".", "~$"))


def to_text(path: Path, link_of=None) -> tuple[str, str, list[str]] | None:
    """(title, text, links) of a file, or None when it can't be read. link_of(href) -> URL or None
    decides which of an HTML file's links are kept (only those inside the sources)."""
    suffix = path.suffix.lower()
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        if suffix == ".pdf":
            title, text, links = _pdf(path)
        elif suffix == ".docx":
            title, text, links = _docx(path)
        elif suffix in HTML_SUFFIXES:
            title, text, links = html_to_text(_read(path), link_of)
        else:
            text = clean_text(_read(path))
            title, links = _text_title(text, suffix) or path.stem, []
    except Exception as e:  # noqa: BLE001 - a damaged file is skipped, never the whole folder
        log.info("browser: could not read %s (%s)", path, e)
        return None
    return (title or path.stem)[:300], text[:MAX_TEXT_CHARS], links


def _read(path: Path) -> str:
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "utf-16") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ("utf-8-sig",):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            pass
    return data.decode("latin-1")  # every byte is a character: old notes in a legacy encoding still read


def _text_title(text: str, suffix: str) -> str | None:
    """A Markdown file's first heading (or a text file's first line if it is short)."""
    for line in text.splitlines()[:20]:
        line = line.strip()
        if suffix in (".md", ".markdown") and line.startswith("#"):
            return line.lstrip("#").strip()
        if line and suffix in (".txt", ".md", ".markdown", ".rst", ".org"):
            return line[:120] if len(line) <= 120 else None
        if line:
            return None
    return None


def _pdf(path: Path) -> tuple[str, str, list[str]]:
    import pypdf

    reader = pypdf.PdfReader(str(path))
    pages = []
    for page in reader.pages:
        try:
            pages.append(page.extract_text() or "")
        except Exception:  # noqa: BLE001 - one bad page must not lose the others
            pages.append("")
    title = ""
    try:
        title = str((reader.metadata or {}).get("/Title") or "")
    except Exception:  # noqa: BLE001
        pass
    text = "\n\n".join(clean_text(p).strip() for p in pages)
    return title.strip() or _first_line(text), text, []


def _docx(path: Path) -> tuple[str, str, list[str]]:
    import docx

    d = docx.Document(str(path))
    parts = []
    for block in d.element.body.iterchildren():  # paragraphs and tables in document order
        tag = block.tag.rsplit("}", 1)[-1]
        if tag == "p":
            parts.append("".join(t.text or "" for t in block.iter() if t.tag.endswith("}t")))
        elif tag == "tbl":
            for row in block.iter():
                if row.tag.endswith("}tr"):
                    cells = ["".join(t.text or "" for t in c.iter() if t.tag.endswith("}t"))
                             for c in row if c.tag.endswith("}tc")]
                    parts.append(" | ".join(cells))
    text = clean_text("\n".join(parts))
    title = (d.core_properties.title or "").strip()
    return title or _first_line(text), text, []


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:120]
    return ""


# ------------------------------------------------------------------ HTML

_BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "header",
          "footer", "blockquote", "pre", "table", "ul", "ol", "dl", "dt", "dd", "hr", "figure", "figcaption"}
_SKIP = {"script", "style", "noscript", "template", "svg", "math", "head"}


class _HTMLText(HTMLParser):
    def __init__(self, link_of):
        super().__init__(convert_charrefs=True)
        self.link_of = link_of
        self.out: list[str] = []
        self.title: list[str] = []
        self.links: list[str] = []
        self.index: dict[str, int] = {}
        self.skip = 0
        self.in_title = False
        self.anchor: tuple[str | None, list[str]] | None = None
        self.pre = 0

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self.in_title = True
        elif tag in _SKIP:
            self.skip += 1
        elif tag == "a":
            href = dict(attrs).get("href")
            self.anchor = (self.link_of(href) if (href and self.link_of) else None, [])
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self._emit(f"[Image: {alt}]")
        if tag in _BLOCK:
            self._newline(tag)
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self._emit("#" * int(tag[1]) + " ")
        elif tag == "li":
            self._emit("* ")
        elif tag == "pre":
            self.pre += 1

    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False
        elif tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag == "a" and self.anchor is not None:
            url, words = self.anchor
            self.anchor = None
            text = " ".join("".join(words).split())
            if url and text:
                i = self.index.setdefault(url, len(self.links))
                if i == len(self.links):
                    self.links.append(url)
                self.out.append(link_marker(i, text))
            else:
                self.out.append(text)
        elif tag in ("td", "th"):
            self._emit(" | ")
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
        if tag in _BLOCK:
            self._newline(tag)

    def handle_data(self, data):
        if self.in_title:
            self.title.append(data)
            return
        if self.skip:
            return
        data = clean_text(data)
        if not self.pre:
            data = re.sub(r"\s+", " ", data)
        if self.anchor is not None:
            self.anchor[1].append(data)
        else:
            self._emit(data)

    def _emit(self, text):
        (self.anchor[1] if self.anchor is not None else self.out).append(text)

    def _newline(self, tag):
        self.out.append("\n\n" if tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "pre") else "\n")


def html_to_text(source: str, link_of=None) -> tuple[str, str, list[str]]:
    """(title, text, links): readable text of an HTML page, its kept links as markers."""
    parser = _HTMLText(link_of)
    parser.feed(source)
    parser.close()
    text = "".join(parser.out)
    text = "\n".join(line.strip() if not line.startswith("    ") else line.rstrip() for line in text.split("\n"))
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    title = " ".join("".join(parser.title).split())  # the parser already turned &amp; and the like into text
    if not title:
        m = re.search(r"^#+ (.+)$", text, re.M)
        title = m.group(1).strip() if m else ""
    return clean_text(title), text, parser.links
