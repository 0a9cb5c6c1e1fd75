"""End to end through an answer format (issue 27): the app (offscreen) starts on the shipped demo
model, the user sets an answer schema in Settings (the dialog's own field, Save) and asks a sum at
medium effort. The model is offered the format (app/turn_request.py) and its answer is held to the
schema by the engine's grammar; it should fill the fields with the right numbers, and the window
shows it as a JSON block. Nothing is scripted: the model's tokens are its own (greedy).

The demo before its third version never saw JSON: the test expects its miss (ModelMissed only;
anything the app gets wrong still fails). `test_the_checks_pass_on_a_right_answer...` runs the same
checks on scripted replies, so they are known to read the right widgets before the weights ship."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextDocument

pytest.importorskip("mlx.core")

from demo_in_app import ModelMissed, ask, in_settings, json_or_none, start_demo, what_it_wrote  # noqa: E402
from models.registry import demo_folder  # noqa: E402

pytestmark = pytest.mark.skipif(not (demo_folder() / "config.json").is_file(), reason="models/demo not exported")

SCHEMA = ('{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"},"sum":{"type":"integer"}},'
          '"required":["a","b","sum"],"additionalProperties":false}')
A, B = 486, 357
QUESTION = f"What is {A} + {B}?"
WANTED = {"a": A, "b": B, "sum": A + B}


def set_answer_schema(qtbot, w, schema: str) -> None:
    in_settings(qtbot, w, lambda d: d.answer_schema.setPlainText(schema))
    assert w.c.settings.answer_schema == schema   # saved as typed


def check_json_answer(qtbot, w, answer) -> None:
    """The answer parses to WANTED, and the window shows it as a JSON block that parses the same."""
    said = what_it_wrote(answer)
    got = json_or_none(answer.text)
    if got != WANTED:
        raise ModelMissed(f"expected {WANTED}, got {got if got is not None else 'no JSON'}; {said}")
    bubble = w.messages.assistant_bubbles()[-1]
    # Rendered as Markdown on the next UI batch, shown on the one after (a widget added to a shown layout)
    qtbot.waitUntil(lambda: bubble.rendered is not None and bubble.rendered.isVisibleTo(w), timeout=5000)
    (block,) = bubble.rendered.code_blocks
    shown = QTextDocument()
    shown.setHtml(block.body.text())                    # the highlighted text on screen, as plain text
    assert json.loads(shown.toPlainText()) == WANTED, shown.toPlainText()
    assert json.loads(block.code) == WANTED              # what its Copy button copies
    assert "Answer in your JSON format" in bubble.stats.text()


@pytest.mark.xfail(strict=False, raises=ModelMissed, reason="needs the demo model v3 (issue 27)")
def test_demo_model_answers_in_the_users_json_format(qtbot, store, app_home, tmp_path, monkeypatch):
    from app import turn_request
    # What the demo's weights do with the format, whether or not the app offers it to them yet.
    monkeypatch.setattr(turn_request, "DEMO_FILLS_ANSWER_FORMATS", True)
    c, lc, replies = start_demo(qtbot, store, tmp_path, monkeypatch)
    try:
        w = lc.window
        set_answer_schema(qtbot, w, SCHEMA)
        answer = ask(qtbot, c, w, QUESTION, "medium")
        # The app's side, whatever the model does: the format offered (no functions), the turn ended.
        assert replies and replies[0]["answer_format"].schema == json.loads(SCHEMA)
        assert replies[0]["effort"] == "medium" and not replies[0].get("tools")
        # the model's reply arrived: the engine's own end of it, with the tokens it wrote
        assert answer.role == "assistant" and answer.stats.get("generated_tokens", 0) > 0, what_it_wrote(answer)
        if any(s.type == "call" for s in answer.steps):   # a python call waiting for consent was stopped
            raise ModelMissed(f"it called a tool instead of answering; {what_it_wrote(answer)}")
        assert answer.state == "done" and answer.stats.get("json_answer"), what_it_wrote(answer)
        check_json_answer(qtbot, w, answer)
    finally:
        lc.shutdown()
        c.shutdown()


# -- the checks themselves, on scripted replies (the real renderer and stream parser) --

_spec = importlib.util.spec_from_file_location("browser_scripted", Path(__file__).parents[1] / "browser" / "scripted_browsing.py")
browser_scripted = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(browser_scripted)


@pytest.mark.parametrize("final, miss", [('{"a": 486, "b": 357, "sum": 843}', ""),
                                         ('{"a": 486, "b": 357, "sum": 833}', "expected"),
                                         ('The sum is 843.', "no JSON")])
def test_the_checks_pass_on_a_right_answer_and_fail_on_a_wrong_one(qtbot, store, app_home, enc, final, miss):
    from app.controller import ChatController
    from app.ui.main_window import MainWindow
    from app.worker import EngineWorker
    session = browser_scripted.ScriptedSession(enc, [
        f'<|channel|>analysis<|message|>486 + 357 = 843.<|end|><|start|>assistant<|channel|>final '
        f'<|constrain|>json<|message|>{final}<|return|>'])
    c = ChatController(store, EngineWorker(loader=lambda folder, context_length: session), flush_ms=10)
    with qtbot.waitSignal(c.model_ready, timeout=5000):
        c.load_model("/nowhere")
    w = MainWindow(c)
    qtbot.addWidget(w)
    w.show_chat()
    w.show()
    try:
        set_answer_schema(qtbot, w, SCHEMA)
        c.set_effort("medium")
        w.composer.input.setPlainText(QUESTION)
        qtbot.keyClick(w.composer.input, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: not c.busy, timeout=20000)
        answer = c.model.last()
        assert answer.state == "done" and answer.stats.get("json_answer")
        if not miss:
            check_json_answer(qtbot, w, answer)
        else:
            with pytest.raises(ModelMissed, match=miss):
                check_json_answer(qtbot, w, answer)
    finally:
        c.shutdown()
