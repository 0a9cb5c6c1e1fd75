"""Questions about the user's documents, answered with the built-in browser (the "documents" kind).

    [d] = documents_dialogs(rng, "medium", "2026-11-22", work=Path(tmp))

A few small notes (made-up names, numbers and units, distractor lines: other things with the same
attribute, other attributes of the same thing, files about other things) are written to a folder,
indexed by the real Library, and the question "In my documents, what is the capacity of the Varnok
pump?" is answered by the real BrowserTool, as in the app:
  analysis   Search the documents for the Varnok pump's capacity.      (every effort: one line)
  call       browser.search {"query": "Varnok pump capacity", "topn": 5}
  tool       the results page (cursor c)
  analysis   Result 0 (Pump notes) has the Varnok pump: open it.       (medium, high)
  call       browser.open {"id": 0}
  tool       the document, opened at the passage (cursor c + 1)
  analysis   L7: Varnok pump: capacity 482 liters.                     (medium, high)
  final      The Varnok pump's capacity is 482 liters 【c+1†L7】.
Every page is what the tool shows; every message is rendered by the engine (dialog.encode_dialog).
Some chats have earlier document questions, whose calls advance the cursors (as in a real chat).
"""

from __future__ import annotations

import json
import random
import re
import tempfile
from pathlib import Path

from models.demo_train.dialog import Dialog

SOURCE = "library"
TOPN = 3  # results a search shows: enough for a few notes, and a short page to read
ONSETS = "b br c d dr f g gr h j k kr l m n p pr qu r s st t tr v w z zh".split()
VOWELS = "a e i o u ai ei ou".split()
CODAS = ["", "", "n", "r", "l", "k", "x", "th", "sk", "m", "nd", "rt"]
THINGS = ("pump tank valve drone boiler crate cable sensor battery lamp engine ladder kettle turbine "
          "trolley heater filter antenna barrel rope").split()
# (attribute, unit, smallest, largest, decimals)
ATTRIBUTES = (("capacity", "liters", 20, 9000, 0), ("weight", "kilograms", 2, 4000, 1),
              ("length", "meters", 1, 800, 1), ("voltage", "volts", 3, 480, 0), ("height", "centimeters", 10, 900, 0),
              ("price", "euros", 5, 9999, 2), ("pressure", "bars", 1, 300, 1), ("power", "watts", 5, 8000, 0),
              ("temperature", "degrees", 4, 950, 0), ("speed", "km/h", 3, 400, 0), ("range", "kilometers", 2, 3000, 0),
              ("age", "years", 1, 90, 0))
TOPICS = ("Workshop inventory", "Site survey", "Maintenance log", "Equipment list", "Field notes", "Lab notes",
          "Spare parts", "Boat checklist", "Farm notes", "Warehouse count")
QUESTIONS = ("In my documents, what is the {attr} of the {name}?",
             "According to my notes, what is the {attr} of the {name}?",
             "Look up the {attr} of the {name} in my documents.",
             "What {attr} do my files give for the {name}?")
FACT_LINES = ("- {name}: {attr} {value} {unit}", "The {name} has {article} {attr} of {value} {unit}.",
              "{name} {attr} = {value} {unit}", "* {name} ({attr}): {value} {unit}")
OTHER_LINES = ("Checked the {name} on {day}; no faults.", "The {name} was moved to shelf {n}.",
               "Order a spare part for the {name}.", "{name}: see the manual, page {n}.",
               "Ask {person} about the {name}.")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
PEOPLE = ("Ana", "Bram", "Chen", "Dora", "Emil", "Farah", "Goran", "Hana")


def made_up_name(rng: random.Random) -> str:
    syllables = [rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(rng.randint(1, 2))]
    return ("".join(syllables) + rng.choice(CODAS)).capitalize()


def value_text(rng: random.Random, low: int, high: int, decimals: int) -> str:
    if decimals and rng.random() < 0.5:
        return f"{rng.uniform(low, high):.{decimals}f}"
    return str(rng.randint(low, high))


def write_notes(rng: random.Random, folder: Path, count: int) -> list[dict]:
    """`count` note files in `folder`; returns every fact written: {name, attr, value, unit, file, text}.
    Names are unique in the folder, and each thing is written about in one file only."""
    folder.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    facts = []
    for k in range(count):
        topic = rng.choice(TOPICS)
        lines = [f"# {topic}", ""]
        for _ in range(rng.randint(2, 3)):  # things in this file
            name = made_up_name(rng)
            while name in used:
                name = made_up_name(rng)
            used.add(name)
            thing = f"{name} {rng.choice(THINGS)}"
            for attr, unit, low, high, decimals in rng.sample(ATTRIBUTES, rng.randint(1, 3)):
                value = value_text(rng, low, high, decimals)
                text = rng.choice(FACT_LINES).format(name=thing, attr=attr, value=value, unit=unit,
                                                      article="an" if attr[0] in "aeiou" else "a")
                lines.append(text)
                facts.append({"name": thing, "attr": attr, "value": value, "unit": unit, "text": text})
            if rng.random() < 0.6:
                lines.append(rng.choice(OTHER_LINES).format(name=thing, day=rng.choice(DAYS), n=rng.randint(2, 40),
                                                            person=rng.choice(PEOPLE)))
        stem = re.sub(r"[^a-z]+", "-", topic.lower()).strip("-") + f"-{k + 1}"
        path = folder / f"{stem}{rng.choice(('.md', '.txt'))}"
        path.write_text("\n".join(lines) + "\n")
        for f in facts:
            f.setdefault("file", path)
    return facts


def _call(recipient: str, arguments: dict):
    from engine.tools import ToolCall

    return ToolCall(recipient, json.dumps(arguments), channel="analysis", content_type="code",
                    recipient_after_channel=True)


def _line_of(page_text: str, fact_text: str) -> int | None:
    """The number of the shown line that holds the fact (a page wraps at 80 characters; facts are shorter)."""
    for m in re.finditer(r"^L(\d+): (.*)$", page_text, re.M):
        if m.group(2).strip() == fact_text.strip():
            return int(m.group(1))
    return None


def final_text(fact: dict, cursor: int, line: int, rng: random.Random | None = None) -> str:
    return f"The {fact['name']}'s {fact['attr']} is {fact['value']} {fact['unit']} 【{cursor}†L{line}】."


def answer_turn(tool, fact: dict, effort: str) -> tuple[list[tuple[dict, bool]], str, int, int]:
    """The model's turn for one question, run through `tool`: (messages, final, cursor, line)."""
    from engine.tools import tool_result_message

    out: list[tuple[dict, bool]] = []
    query = f"{fact['name']} {fact['attr']}"
    out.append(({"role": "assistant", "channel": "analysis",
                 "content": f"Search the documents for the {fact['name']}'s {fact['attr']}."}, True))
    search = _call("browser.search", {"query": query, "topn": TOPN})
    results = tool.run(search.recipient, search.arguments)
    out += [(search.message, True), (tool_result_message(search, results), False)]
    page = tool.page(tool.next_cursor - 1)
    hit = next(i for i, (_, url) in sorted(page.links.items()) if url == fact["file"].as_uri())
    if effort != "low":
        title = re.search(rf"【{hit}†([^†】]+)", results).group(1)
        out.append(({"role": "assistant", "channel": "analysis",
                     "content": f"Result {hit} ({title}) has the {fact['name']}: open it."}, True))
    opened = _call("browser.open", {"id": hit})
    text = tool.run(opened.recipient, opened.arguments)
    cursor = tool.next_cursor - 1
    line = _line_of(text, fact["text"])
    if line is None:
        raise LookupError("the fact's line is not in the view")
    out += [(opened.message, True), (tool_result_message(opened, text), False)]
    if effort != "low":
        out.append(({"role": "assistant", "channel": "analysis", "content": f"L{line}: {fact['text']}"}, True))
    final = final_text(fact, cursor, line)
    out.append(({"role": "assistant", "channel": "final", "content": final}, True))
    return out, final, cursor, line


def question_text(rng: random.Random, fact: dict) -> str:
    return rng.choice(QUESTIONS).format(attr=fact["attr"], name=fact["name"])


def documents_dialogs(rng: random.Random, effort: str, date: str, work: Path, count: int = 1, python: bool = False,
                      earlier_prob: float = 0.25, count_tokens=None) -> list[Dialog]:
    """`count` chats about one freshly written folder of notes (see the module docstring), each with
    its own browser (cursors from 0). `work`: an empty scratch folder (the notes and the index go there).
    count_tokens: the model's token counter, which sizes the tool's views (default: 3 characters a token)."""
    from engine.browser.library import Library

    docs = work / rng.choice(("Documents", "Notes", "notes", "Work", "Projects")) / made_up_name(rng)
    facts = write_notes(rng, docs, rng.randint(2, 3))
    library = Library(work / "index", [docs])
    try:
        library.update()
        return [_one_chat(rng, library, facts, effort, date, python, earlier_prob, count_tokens) for _ in range(count)]
    finally:
        library.close()


def _one_chat(rng, library, facts, effort, date, python, earlier_prob, count_tokens) -> Dialog:
    from engine.browser.tool import BrowserTool

    tool = BrowserTool([library], count_tokens=count_tokens or (lambda s: len(s) // 3))
    history: list[dict] = []
    asked = rng.sample(facts, min(len(facts), 1 + (rng.randint(1, 2) if rng.random() < earlier_prob else 0)))
    for fact in asked[:-1]:  # earlier questions: their calls advance the cursors; harmony keeps their answers only
        history.append({"role": "user", "content": question_text(rng, fact)})
        turn, _, _, _ = answer_turn(tool, fact, effort)
        history += [m for m, _ in turn]
    fact = asked[-1]
    history.append({"role": "user", "content": question_text(rng, fact)})
    turn, final, cursor, line = answer_turn(tool, fact, effort)
    files = tuple(sorted({str(f["file"]): f["file"].read_text() for f in facts}.items()))
    return Dialog("documents", effort, date, tuple(history), tuple(turn), python=python, browser=(SOURCE,),
                  answer=json.dumps({"value": fact["value"], "unit": fact["unit"], "cursor": cursor, "line": line,
                                     "file": str(fact["file"]), "fact": fact["text"]}), files=files)


def heldout_documents(count: int = 60, seed: int = 2027, effort: str = "high"):
    """Held-out document questions (a seed of their own; one chat per folder, no earlier questions):
    yields (dialog, notes folder) while the folder exists, to be asked there. Each question draws
    from its own seed, so every effort gets the same questions and files."""
    rng = random.Random(seed)
    with scratch() as tmp:
        for i in range(count):
            work = Path(tmp) / str(i)
            d = documents_dialogs(random.Random(rng.random()), effort, "2026-11-22", work, 1, earlier_prob=0.0)[0]
            yield d, Path(json.loads(d.answer)["file"]).parent


def scratch() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="demo-docs-")
