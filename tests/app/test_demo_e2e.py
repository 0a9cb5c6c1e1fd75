"""End to end on the shipped demo model: the app (offscreen) finds it when no gpt-oss model is
installed, asks it a question through the real engine, keeps the reasoning hidden, shows the
correct final answer, and shows the analysis text once the developer toggle is on."""
import re

import pytest
from PySide6.QtCore import Qt

pytest.importorskip("mlx.core")

from app.controller import ChatController  # noqa: E402
from app.launcher import Launcher  # noqa: E402
from app.worker import EngineWorker  # noqa: E402
from models.registry import DEMO, demo_folder  # noqa: E402

pytestmark = pytest.mark.skipif(not (demo_folder() / "config.json").is_file(), reason="models/demo not exported")

# A sum with a carry in every column, checked against Python's. The demo model gets every held-out
# addition right at high effort (models/demo/README.md) and this one too, so a wrong answer
# here means the app's path to the model broke, not that the model had a bad day (decoding is greedy).
A, B = 779, 569



def visible_text(widget):
    from PySide6.QtWidgets import QLabel
    return "\n".join(lab.text() for lab in widget.findChildren(QLabel) if lab.isVisibleTo(widget))


def ask_demo_in_the_app(qtbot, store, tmp_path, monkeypatch):
    """Start the app with no gpt-oss installed, ask the question at high effort; (controller, launcher)."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))  # no gpt-oss anywhere
    c = ChatController(store, EngineWorker(), flush_ms=10)
    # Settings keep gpt-oss's temperature 1: the demo folder's generation_config asks for greedy
    # decoding, which is also what makes this test deterministic.
    assert c.settings.temperature == 1.0
    lc = Launcher(c)
    w = lc.window
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(c.model_ready, timeout=60000):
        lc.start()
    assert c.settings.model_folder in ("", None) or "demo" in c.settings.model_folder
    assert c.model_name == DEMO.label  # labelled plainly as the tiny demo model
    c.set_effort("high")
    w.composer.input.setPlainText(f"What is {A} + {B}?")
    qtbot.keyClick(w.composer.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not c.busy, timeout=120000)

    return c, lc


def test_demo_model_in_the_app_reasoning_hidden_until_toggled(qtbot, store, app_home, tmp_path, monkeypatch):
    c, lc = ask_demo_in_the_app(qtbot, store, tmp_path, monkeypatch)
    w = lc.window
    answer = c.model.last()
    assert answer.role == "assistant" and answer.analysis and answer.text, "the demo model reasons, then answers"
    bubble = w.messages.assistant_bubbles()[-1]
    # The finished answer is re-rendered as Markdown on the next UI batch: wait for it.
    qtbot.waitUntil(lambda: answer.text.rstrip(".") in visible_text(w), timeout=5000)
    shown = visible_text(w)
    # The reasoning's own lines (e.g. "ones: 6+7=13, write 3 carry 1.") are nowhere on screen.
    assert "carry" not in shown and answer.analysis not in shown
    assert not bubble.raw_panel.isVisibleTo(w)
    assert "Thought for" in bubble.thinking.text()

    s = c.settings
    s.show_raw_cot = True
    c.save_settings(s)
    assert bubble.raw_panel.isVisibleTo(w)
    assert bubble.raw_text.text() == answer.analysis and "carry" in visible_text(w)
    lc.shutdown()
    c.shutdown()


def test_demo_model_final_answer_in_the_app_is_correct(qtbot, store, app_home, tmp_path, monkeypatch):
    c, lc = ask_demo_in_the_app(qtbot, store, tmp_path, monkeypatch)
    try:
        assert str(A + B) in re.findall(r"\d+", c.model.last().text), c.model.last().text
    finally:
        lc.shutdown()
        c.shutdown()
