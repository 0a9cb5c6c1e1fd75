"""End to end through a real tool call: the app (offscreen) starts on the shipped demo model with no
gpt-oss installed, is asked a product of two multi-digit numbers at medium effort, the model writes
a python call, the app asks first (the code shown, Run / Always / Don't run), the user clicks Run,
the code runs in the real sandboxed kernel (engine/python_tool), the model reads its output and
answers with the right product. Nothing is scripted or mocked: the model's tokens are its own
(greedy, as its generation_config asks)."""
import re

import pytest
from PySide6.QtCore import Qt

pytest.importorskip("mlx.core")

from app import tool_steps  # noqa: E402
from app.controller import ChatController  # noqa: E402
from app.launcher import Launcher  # noqa: E402
from app.worker import EngineWorker  # noqa: E402
from engine.python_tool import sandbox_problem  # noqa: E402
from models.registry import DEMO, demo_folder  # noqa: E402

pytestmark = [
    pytest.mark.skipif(not (demo_folder() / "config.json").is_file(), reason="models/demo not exported"),
    pytest.mark.skipif(sandbox_problem() is not None, reason=f"the sandbox can't run here: {sandbox_problem()}"),
]

# Far beyond what the tiny model can multiply in its head (it declines such products without the
# tool); checked against Python's own product below.
A, B = 4821, 3657


def test_demo_model_calls_python_with_consent_and_answers_from_its_output(qtbot, store, app_home, tmp_path, monkeypatch):
    from app.ui.tool_block import ToolBlock

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))  # no gpt-oss anywhere
    c = ChatController(store, EngineWorker(), flush_ms=10)
    lc = Launcher(c)
    try:
        w = lc.window
        qtbot.addWidget(w)
        w.show()
        with qtbot.waitSignal(c.model_ready, timeout=60000):
            lc.start()
        assert c.model_name == DEMO.label and c.settings.python_tool  # the tool is on by default
        c.set_effort("medium")
        w.composer.input.setPlainText(f"What is {A} times {B}?")
        qtbot.keyClick(w.composer.input, Qt.Key.Key_Return)

        # The model's call waits for the user, who sees the code in a tool block with the choices.
        qtbot.waitUntil(lambda: c.waiting_call() is not None or not c.busy, timeout=120000)
        step = c.waiting_call()
        assert step is not None, f"no python call; the model answered {c.model.last().text!r}"
        assert step.recipient == "python" and str(A) in step.arguments and str(B) in step.arguments
        def consent_block():
            return next((b for b in w.findChildren(ToolBlock) if getattr(b, "run_button", None) is not None
                         and b.run_button.isVisibleTo(w)), None)

        qtbot.waitUntil(lambda: consent_block() is not None, timeout=5000)
        block = consent_block()
        assert block.code_text == step.arguments
        qtbot.mouseClick(block.run_button, Qt.MouseButton.LeftButton)   # the user's consent

        qtbot.waitUntil(lambda: not c.busy, timeout=180000)
        answer = c.model.last()
        (call,) = tool_steps.calls(answer.steps)
        assert call.status == "done" and call.result.strip() == str(A * B)   # the sandbox ran it
        assert answer.state == "done" and str(A * B) in re.findall(r"\d+", answer.text), answer.text
    finally:
        lc.shutdown()
        c.shutdown()
