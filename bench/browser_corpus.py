"""A corpus with known answers for the browser's search (bench/browser_index.py uses it).

    docs, questions = make_corpus(folder, n_docs=1200, n_questions=250, seed=0)

Each document is about one made-up place (a lighthouse, a brewery, a glacier, ...) named with a
random word no dictionary has, written as .txt, .md, .html, .py, .pdf or .docx. Each name is
shared by up to three places of different kinds (the Kalo lighthouse, the Kalo brewery, ...), and
every document mentions two other places in passing, so the name alone does not pick the
document. It states six facts in its own words among filler paragraphs that every document shares
words with. A question asks for one fact in other words ("When did ... open?" for "was founded
in"), naming the place, and for 40% of them its kind by a synonym the document never uses
("beacon" for lighthouse): the right document is the one whose fact answers it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

KINDS = ["lighthouse", "brewery", "glacier", "observatory", "bridge", "monastery", "vineyard", "railway station",
         "library", "harbour", "windmill", "museum", "canal", "fortress", "orchard", "quarry"]
MATERIALS = ["granite", "sandstone", "oak", "cast iron", "brick", "limestone", "basalt", "larch", "slate", "marble"]
EVENTS = ["a great flood", "a lightning strike", "a royal visit", "a fire", "an earthquake", "a strike by workers",
          "a record harvest", "a shipwreck nearby", "a solar eclipse", "a cholera outbreak"]
FILLER = [
    "Visitors often remark on the quiet of the surrounding countryside and the changing light through the year.",
    "Local records from the period are incomplete, and several accounts disagree on the smaller details.",
    "The site is maintained by a small trust that relies on volunteers and the occasional public grant.",
    "Guided tours run in the summer months; in winter access is limited to researchers by appointment.",
    "The regional archive holds letters, ledgers and photographs that describe daily life at the site.",
    "Restoration work in recent decades has tried to respect the original methods of construction.",
    "The nearest town grew up around the site, and its market still meets on the same square each week.",
    "Several paintings from the nineteenth century show the site much as it appears today.",
]
SYNONYMS = {"lighthouse": "beacon", "brewery": "brew house", "glacier": "ice field", "observatory": "stargazing station",
            "bridge": "crossing", "monastery": "abbey", "vineyard": "wine estate", "railway station": "train depot",
            "library": "reading room", "harbour": "port", "windmill": "mill", "museum": "gallery",
            "canal": "waterway", "fortress": "citadel", "orchard": "fruit farm", "quarry": "stone pit"}
SYLLABLES = ["ka", "lo", "vem", "dra", "sil", "tor", "quen", "bar", "ith", "mol", "zar", "pel", "gru", "nox",
             "fey", "dal", "rin", "vos", "hul", "cet", "wyn", "osk", "ump", "tral"]


@dataclass(frozen=True)
class Question:
    text: str
    answer_file: str  # path relative to the corpus folder
    answer: str


def _name(rng: random.Random, used: set[str]) -> str:
    while True:
        n = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 3)))).capitalize()
        if n not in used:
            used.add(n)
            return n


def _facts(rng: random.Random, kind: str, name: str, others: list[str]) -> dict:
    return {"place": f"{rng.choice(['north', 'south', 'east', 'west'])} of {others[0]}ville",
            "year": str(rng.randint(1450, 1990)), "height": f"{rng.randint(8, 400)} metres",
            "founder": f"{rng.choice(['Agnes', 'Tomas', 'Ilse', 'Marek', 'Odile', 'Pieter'])} {others[1]}son",
            "material": rng.choice(MATERIALS), "event": rng.choice(EVENTS)}


STATEMENTS = {
    "place": "The {name} {kind} stands {place}.",
    "year": "It was founded in {year}, after years of planning.",
    "height": "At its highest point the structure measures {height}.",
    "founder": "The work was commissioned by {founder}, whose family kept it for generations.",
    "material": "Its walls were built mostly of {material}.",
    "event": "Its history was marked by {event}, still remembered in local songs.",
}
QUESTIONS = {
    "place": ["Where is the {name} {kind} located?", "In which area can you find the {name} {kind}?"],
    "year": ["When did the {name} {kind} open?", "What year was the {name} {kind} established?"],
    "height": ["How tall is the {name} {kind}?", "What is the height of the {name} {kind}?"],
    "founder": ["Who commissioned the {name} {kind}?", "Which person ordered the {name} {kind} to be built?"],
    "material": ["What are the walls of the {name} {kind} made of?", "Which material was used to build the {name} {kind}?"],
    "event": ["What happened in the history of the {name} {kind}?", "Which event is the {name} {kind} remembered for?"],
}
FORMATS = [("txt", 25), ("md", 25), ("html", 20), ("py", 10), ("pdf", 10), ("docx", 10)]


def _body(rng, name, kind, facts, others) -> tuple[str, list[str]]:
    paras = [STATEMENTS[k].format(name=name, kind=kind, **facts) for k in STATEMENTS]
    paras.insert(rng.randint(1, len(paras)), f"Unlike the {others[2]} {rng.choice(KINDS)}, it was never abandoned.")
    paras.insert(rng.randint(1, len(paras)), f"Travellers often combine a visit with the {others[3]} {rng.choice(KINDS)}.")
    for _ in range(rng.randint(3, 7)):
        paras.insert(rng.randint(0, len(paras)), rng.choice(FILLER))
    return f"The {name} {kind}", paras


def write_doc(path: Path, fmt: str, title: str, paras: list[str]) -> None:
    if fmt == "txt":
        path.write_text(title + "\n\n" + "\n\n".join(paras) + "\n")
    elif fmt == "md":
        path.write_text(f"# {title}\n\n" + "\n\n".join(paras) + "\n")
    elif fmt == "html":
        body = "".join(f"<p>{p}</p>" for p in paras)
        path.write_text(f"<html><head><title>{title}</title><style>p{{margin:0}}</style></head>"
                        f"<body><h1>{title}</h1>{body}<script>var x = 1;</script></body></html>")
    elif fmt == "py":
        doc = "\n".join(paras)
        path.write_text(f'"""{title}\n\n{doc}\n"""\n\nVISITORS_PER_YEAR = 1200\n\n\ndef opening_hours():\n    return "9-17"\n')
    elif fmt == "pdf":
        from fpdf import FPDF

        pdf = FPDF()
        pdf.set_title(title)
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 6, title, new_x="LMARGIN", new_y="NEXT")
        for p in paras:
            pdf.multi_cell(0, 6, p, new_x="LMARGIN", new_y="NEXT")
        pdf.output(str(path))
    elif fmt == "docx":
        import docx

        d = docx.Document()
        d.core_properties.title = title
        d.add_heading(title, 1)
        for p in paras:
            d.add_paragraph(p)
        d.save(str(path))


def make_corpus(folder: Path, n_docs: int = 1200, n_questions: int = 250, seed: int = 0,
                formats=FORMATS) -> tuple[list[Path], list[Question]]:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    unique = [_name(rng, used) for _ in range(max(1, n_docs // 3))]
    names = [unique[i % len(unique)] for i in range(n_docs)]  # each name: up to three places
    weights = [w for _, w in formats]
    docs, answers = [], []
    kinds_of: dict[str, set[str]] = {}
    for i, name in enumerate(names):
        kind = rng.choice([k for k in KINDS if k not in kinds_of.setdefault(name, set())])
        kinds_of[name].add(kind)
        others = rng.sample(unique, 4)
        facts = _facts(rng, kind, name, others)
        fmt = rng.choices([f for f, _ in formats], weights)[0]
        sub = folder / f"dir{i % 20:02}"
        sub.mkdir(exist_ok=True)
        path = sub / f"{name.lower()}_{i}.{fmt}"
        title, paras = _body(rng, name, kind, facts, others)
        write_doc(path, fmt, title, paras)
        docs.append(path)
        answers.append((name, kind, facts, path))
    questions = []
    for name, kind, facts, path in rng.sample(answers, min(n_questions, len(answers))):
        key = rng.choice(list(QUESTIONS))
        shown = SYNONYMS[kind] if rng.random() < 0.4 else kind
        q = rng.choice(QUESTIONS[key]).format(name=name, kind=shown)
        questions.append(Question(q, str(path.relative_to(folder)), facts[key]))
    return docs, questions
