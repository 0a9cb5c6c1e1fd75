"""Real files of every format the library reads, made here: text, Markdown, code, HTML, PDF, Word."""

from __future__ import annotations

from pathlib import Path

import pytest



@pytest.fixture(scope="session")
def count_tokens(enc):
    return lambda text: len(enc.encode_ordinary(text))


def write_pdf(path: Path, title: str, paragraphs: list[str]) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title(title)
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    for p in paragraphs:
        pdf.multi_cell(0, 6, p)
        pdf.ln(3)
    pdf.output(str(path))


def write_docx(path: Path, title: str, paragraphs: list[str], table: list[list[str]] | None = None) -> None:
    import docx

    d = docx.Document()
    d.core_properties.title = title
    d.add_heading(title, 1)
    for p in paragraphs:
        d.add_paragraph(p)
    if table:
        t = d.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                t.cell(r, c).text = cell
    d.save(str(path))


@pytest.fixture
def notes(tmp_path) -> Path:
    """A folder of notes in every format, with one fact each that a search must find."""
    root = tmp_path / "notes"
    (root / "papers").mkdir(parents=True)
    (root / "code").mkdir()
    (root / ".hidden").mkdir()
    (root / "tides.md").write_text("# Tide tables\n\nThe spring tide at Brest peaks at 7.9 metres.\n"
                                   + "\n".join(f"Filler line {i} about the harbour." for i in range(200)))
    (root / "groceries.txt").write_text("Groceries\n\nBuy saffron, quince and sorrel for Sunday.\n")
    (root / "code" / "kiln.py").write_text('def kiln_temperature():\n    """Stoneware fires at 1280 degrees."""\n'
                                           "    return 1280\n")
    (root / "manual.html").write_text(
        "<html><head><title>Espresso manual</title><style>p{color:red}</style></head><body>"
        "<h1>Espresso</h1><p>Descale the boiler every <b>three months</b>.</p>"
        "<p>See the <a href='papers/grinder.docx'>grinder notes</a> and "
        "<a href='https://example.com/evil'>the vendor site</a> and <a href='../../etc/passwd.txt'>this</a>.</p>"
        "<script>alert('x')</script></body></html>")
    write_pdf(root / "papers" / "glaciers.pdf", "Glacier retreat",
              ["Glacier retreat", "The Rhone glacier lost 40 percent of its volume since 1850."])
    write_docx(root / "papers" / "grinder.docx", "Grinder notes", ["Burr grinders need setting 14 for espresso."],
               [["bean", "setting"], ["arabica", "14"]])
    (root / ".hidden" / "secret.txt").write_text("hidden volcano")
    return root
