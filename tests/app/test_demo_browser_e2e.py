"""End to end through the browser (issue 27): the app (offscreen) starts on the shipped demo model,
the user adds a folder of three notes in Settings → Library (the folder picker answered, indexing
on the app's own indexer), and asks at medium effort about one line of one note. The model is
offered the browser over the library; it should search, open the right note and answer with the
value and a citation, which the window shows as two browser blocks and a link that opens the note
at the cited line. Nothing is scripted: the model's tokens are its own (greedy).

The demo before its third version never saw the browser: the test expects its miss (ModelMissed
only; anything the app gets wrong still fails). `test_the_checks_pass_on_a_right_answer` runs the
same checks on a scripted reply of the shape the retrained model writes, so they are known to read
the right widgets before the weights ship."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QLabel

pytest.importorskip("mlx.core")

from app.citation_links import SCHEME, parse_citation_url  # noqa: E402
from demo_in_app import ModelMissed, ask, browser_calls, in_settings, start_demo, what_it_wrote  # noqa: E402
from models.registry import demo_folder  # noqa: E402
from test_app_browser import citation_label, click_link, marked_lines  # noqa: E402

pytestmark = pytest.mark.skipif(not (demo_folder() / "config.json").is_file(), reason="models/demo not exported")

QUESTION = "In my documents, what is the capacity of the Varnok pump?"
FACT = "- Varnok pump: capacity 482 liters"
# Three notes in the shapes the training notes take (models/demo_train): the fact, other attributes
# of the same pump, the same attribute of other things, and files about other things.
NOTES = {
    "workshop-inventory.md": ["# Workshop inventory", "", "- Telmar pump: capacity 915 liters",
                              "- Varnok pump: weight 37.5 kilograms", FACT,
                              "Checked the Varnok pump on Tuesday; no faults.",
                              "The Brisk tank has a capacity of 2210 liters."],
    "site-survey.md": ["# Site survey", "", "Kelu valve pressure = 42.5 bars",
                       "The Zhodri lamp has a voltage of 230 volts.", "Order a spare part for the Kelu valve."],
    "maintenance-log.md": ["# Maintenance log", "", "* Grenath boiler (capacity): 640 liters",
                           "- Pruma drone: range 12 kilometers", "Ask Dora about the Pruma drone."],
}


@pytest.fixture
def notes(tmp_path) -> Path:
    folder = tmp_path / "My notes"
    folder.mkdir()
    for name, lines in NOTES.items():
        (folder / name).write_text("\n".join(lines) + "\n")
    return folder


def add_folder_in_settings(qtbot, w, folder: Path, monkeypatch) -> None:
    """Settings → Library → Add folder… (the picker answers `folder`), Save; wait for the indexing."""
    c = w.c
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(folder)))
    with qtbot.waitSignal(c.indexer.finished, timeout=60000) as indexed:
        in_settings(qtbot, w, lambda d: d.library_section.add_folder_button.click())
    assert c.library.folders == [str(folder)]
    assert indexed.args[0].startswith("Indexed 3 new or changed files"), indexed.args
    assert w.sources_switch.isVisibleTo(w) and w.sources_switch.isChecked()   # the new chat's sources are on


def check_browsed_answer(qtbot, w, answer, notes: Path) -> None:
    """What the user should see: a search and an open as browser blocks, the value, and a citation
    link that opens the right note at the line with the value. ModelMissed says what the model wrote."""
    said = what_it_wrote(answer)
    calls = browser_calls(answer)
    if [s.recipient for s in calls][:2] != ["browser.search", "browser.open"]:
        raise ModelMissed(f"expected a browser.search then a browser.open; {said}")
    assert all(s.status == "done" for s in calls), said   # each call ran (on the tools thread)
    headers = [b.header.text() for b in w.messages.assistant_bubbles()[-1].steps.blocks()]
    assert headers[0].startswith("▸ Searched for “"), headers
    if "▸ Opened Workshop inventory" not in headers:
        raise ModelMissed(f"the note with the pump was not opened (blocks: {headers}); {said}")
    if "482" not in re.findall(r"\d+", answer.text):
        raise ModelMissed(f"the answer lacks the capacity 482; {said}")
    bubble = w.messages.assistant_bubbles()[-1]
    # Rendered as Markdown on the next UI batch, shown on the one after (a widget added to a shown layout)
    qtbot.waitUntil(lambda: bubble.rendered is not None and bubble.rendered.isVisibleTo(w), timeout=5000)
    shown = " ".join(lbl.text() for lbl in bubble.rendered.findChildren(QLabel) if lbl.isVisibleTo(w))
    assert "482" in shown, shown   # the value on screen, not only in the message
    label = citation_label_or_none(w)
    if label is None:
        raise ModelMissed(f"no citation the app could link to a page the model opened; {said}")
    href = re.search(r'href="(%s:[^"]+)"' % SCHEME, label.text())
    assert href, label.text()
    url, lines = parse_citation_url(href.group(1).replace("&amp;", "&"))
    note = notes / "workshop-inventory.md"
    if url != note.as_uri():
        raise ModelMissed(f"the citation points at {url}, not {note.as_uri()}; {said}")
    cited = w.c.library.read(url)[1][lines[0]:lines[1] + 1]
    if not any(FACT in line for line in cited):
        raise ModelMissed(f"the citation's lines {lines} say {cited}, not {FACT!r}; {said}")
    assert f"Workshop inventory L{lines[0]}" in label.text()   # what the link reads
    # Clicked, the link asks the user's default app to open the note; with none (offscreen) the
    # reader view shows it, the cited line marked.
    opener = w.citation_opener
    asked = []
    real_open = opener.open_in_app
    opener.open_in_app = lambda u: asked.append(u.toLocalFile()) or real_open(u)
    click_link(qtbot, label, lambda: opener.reader is not None)
    assert asked == [str(note)]
    assert opener.reader.windowTitle() == "Workshop inventory"
    assert any(FACT in line for line in marked_lines(opener.reader)), marked_lines(opener.reader)


def citation_label_or_none(w):
    try:
        return citation_label(w)
    except StopIteration:
        return None


@pytest.mark.xfail(strict=False, raises=ModelMissed, reason="needs the demo model v3 (issue 27)")
def test_demo_model_searches_opens_and_cites_the_users_note(qtbot, store, app_home, tmp_path, notes, monkeypatch):
    c, lc, replies = start_demo(qtbot, store, tmp_path, monkeypatch)
    try:
        w = lc.window
        add_folder_in_settings(qtbot, w, notes, monkeypatch)
        answer = ask(qtbot, c, w, QUESTION, "medium")
        # The app's side, whatever the model does: offered the browser over the library, the turn ended.
        assert replies and replies[0]["browser"] == ["library"] and replies[0]["effort"] == "medium"
        assert "tools" not in replies[0] or not replies[0]["tools"]   # no functions for the demo
        # the model's reply arrived: the engine's own end of it, with the tokens it wrote
        assert answer.role == "assistant" and answer.stats.get("generated_tokens", 0) > 0, what_it_wrote(answer)
        if _python_calls(answer):   # declined by Stop (ask())
            raise ModelMissed(f"it called python, not the browser; {what_it_wrote(answer)}")
        assert answer.state == "done", what_it_wrote(answer)
        # Each call went back to the model, which carried on from it (one engine call per call, + 1).
        assert len(replies) == len(browser_calls(answer)) + 1, what_it_wrote(answer)
        check_browsed_answer(qtbot, w, answer, notes)
    finally:
        lc.shutdown()
        c.shutdown()


def _python_calls(answer):
    from app import tool_steps
    return [s for s in tool_steps.calls(answer.steps) if s.recipient == "python"]


# -- the checks themselves, on a reply of the retrained model's shape (models/demo_train/browse.py) --

_spec = importlib.util.spec_from_file_location("browser_scripted", Path(__file__).parents[1] / "browser" / "scripted_browsing.py")
browser_scripted = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(browser_scripted)


def scripted_window(qtbot, store, session):
    from app.controller import ChatController
    from app.ui.main_window import MainWindow
    from app.worker import EngineWorker
    c = ChatController(store, EngineWorker(loader=lambda folder, context_length: session), flush_ms=10)
    with qtbot.waitSignal(c.model_ready, timeout=5000):
        c.load_model("/nowhere")
    w = MainWindow(c)
    qtbot.addWidget(w)
    w.show_chat()
    w.resize(1000, 700)
    w.show()
    return c, w


def right_answer_script(cursor_line: int, value: str = "482") -> list[str]:
    search = ('<|channel|>analysis<|message|>Search the documents for the Varnok pump\'s capacity.<|end|>'
              '<|start|>assistant<|channel|>analysis to=browser.search code<|message|>'
              '{"query": "Varnok pump capacity", "topn": 5}<|call|>')
    return [search, '<|channel|>analysis to=browser.open code<|message|>{"id": %d}<|call|>',
            f'<|channel|>final<|message|>The Varnok pump\'s capacity is {value} liters 【1†L{cursor_line}】.<|return|>']


@pytest.mark.parametrize("value, shift, miss", [("482", 0, ""), ("915", 0, "lacks the capacity 482"),
                                               ("482", -1, "the citation's lines")])
def test_the_checks_pass_on_a_right_answer_and_fail_on_a_wrong_one(qtbot, store, app_home, enc, notes, monkeypatch,
                                                                   value, shift, miss):
    from app.library_sources import LibrarySources
    lib = LibrarySources(store, app_home / "probe")
    assert lib.add(str(notes)) == "" and lib.library().update().added == 3
    # Where the fact sits on the page the tool shows, and which result is the note (as the model reads them).
    results = lib.run("probe", "browser.search", '{"query": "Varnok pump capacity", "topn": 5}')
    hit = int(re.search(r"【(\d+)†Workshop inventory", results).group(1))
    page = lib.run("probe", "browser.open", '{"id": %d}' % hit)
    line = int(re.search(r"^L(\d+): %s$" % re.escape(FACT), page, re.M).group(1))
    script = right_answer_script(line + shift, value)   # shift: the line above (the pump's weight)
    script[1] = script[1] % hit
    session = browser_scripted.ScriptedSession(enc, script, name="scripted")
    c, w = scripted_window(qtbot, store, session)
    try:
        add_folder_in_settings(qtbot, w, notes, monkeypatch)
        c.set_effort("medium")
        w.composer.input.setPlainText(QUESTION)
        qtbot.keyClick(w.composer.input, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: not c.busy, timeout=20000)
        answer = c.model.last()
        assert "sources=library" in enc.decode(session.prompts[0])
        if not miss:
            check_browsed_answer(qtbot, w, answer, notes)
        else:
            with pytest.raises(ModelMissed, match=miss):
                check_browsed_answer(qtbot, w, answer, notes)
    finally:
        c.shutdown()
