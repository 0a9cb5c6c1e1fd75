"""The shipped demo model in the real app (offscreen), for the end-to-end tests of issue 27:
start it as a new user would, change Settings through the dialog, ask at an effort, and say what
the model wrote when it is wrong. The model's tokens are its own (greedy, as its folder asks)."""
from __future__ import annotations

import json

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from app import tool_steps


class ModelMissed(AssertionError):
    """The demo model did not do what the test asks of it (as opposed to the app failing): the tests
    that need the retrained weights expect this one failure, and only this one."""


def start_demo(qtbot, store, tmp_path, monkeypatch):
    """The app with no gpt-oss installed, the demo model loaded: (controller, launcher, replies),
    `replies` gathering the keyword arguments of every engine call (what the model was offered)."""
    from app.controller import ChatController
    from app.launcher import Launcher
    from app.worker import EngineWorker
    from models.registry import DEMO

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))   # no gpt-oss anywhere
    c = ChatController(store, EngineWorker(), flush_ms=10)
    lc = Launcher(c)
    qtbot.addWidget(lc.window)
    lc.window.show()
    with qtbot.waitSignal(c.model_ready, timeout=60000):
        lc.start()
    assert c.model_name == DEMO.label
    replies = []
    session = c.worker.engine
    real_reply = session.reply
    # A spy, not a stand-in: each call goes on to the real session, its arguments kept.
    session.reply = lambda messages, **kw: replies.append(kw) or real_reply(messages, **kw)
    return c, lc, replies


def in_settings(qtbot, window, change) -> None:
    """Open Settings from the window as the user does, let `change(dialog)` fill it in, press Save."""
    from app.ui.settings_dialog import SettingsDialog
    failed = []

    def fill():
        dialog = QApplication.activeModalWidget()
        try:
            assert isinstance(dialog, SettingsDialog), dialog
            change(dialog)
            dialog.buttons.button(QDialogButtonBox.StandardButton.Save).click()
        except BaseException as e:   # never leave the modal dialog open: the test would hang
            failed.append(e)
            dialog.reject()

    QTimer.singleShot(0, fill)
    window.open_settings()
    if failed:
        raise failed[0]


def ask(qtbot, c, window, question: str, effort: str, timeout_ms: int = 300000):
    """Type the question, press Return, wait for the answer's end; the answer message. A python
    call waiting for consent is declined by Stop (a model miss, reported by the caller)."""
    c.set_effort(effort)
    window.composer.input.setPlainText(question)
    qtbot.keyClick(window.composer.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not c.busy or c.waiting_call() is not None, timeout=timeout_ms)
    if c.busy:
        c.stop()
        qtbot.waitUntil(lambda: not c.busy, timeout=60000)
    return c.model.last()


def what_it_wrote(answer) -> str:
    """The model's turn in a few lines, for a failure message."""
    lines = []
    for step in answer.steps or []:
        if step.type == "call":
            lines.append(f"call {step.recipient} {step.arguments} [{step.status}] -> {(step.result or '')[:200]!r}")
        elif getattr(step, "text", ""):
            lines.append(f"{getattr(step, 'channel', 'text')}: {step.text[:200]!r}")
    if answer.analysis and not any(getattr(s, "text", "") for s in answer.steps or []):
        lines.append(f"analysis: {answer.analysis[:300]!r}")
    lines.append(f"final ({answer.state}, {answer.stats.get('stop_reason')}): {answer.text[:400]!r}")
    return "the demo model wrote:\n  " + "\n  ".join(lines)


def browser_calls(answer) -> list:
    return [s for s in tool_steps.calls(answer.steps) if s.recipient.startswith("browser.")]


def json_or_none(text: str):
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None
