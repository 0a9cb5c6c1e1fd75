"""Issue 29, per-chat instructions through the real engine: the prompt the real ChatSession (the
shipped demo model) renders for a chat with its own instructions holds them in its harmony developer
message, on every turn; another chat's prompt holds the app-wide instructions instead."""
import pytest

pytest.importorskip("mlx.core")

from app.chat_options import ChatOptions  # noqa: E402
from app.controller import ChatController  # noqa: E402
from app.worker import EngineWorker  # noqa: E402
from models.registry import demo_folder  # noqa: E402

pytestmark = pytest.mark.skipif(not (demo_folder() / "config.json").is_file(), reason="models/demo not exported")


def developer_message(text: str) -> str:
    """The body of the rendered prompt's developer message ('' when it has none)."""
    head = "<|start|>developer<|message|>"
    if head not in text:
        return ""
    return text.split(head, 1)[1].split("<|end|>", 1)[0]


def test_the_real_session_renders_the_chats_own_instructions(qtbot, store, app_home):
    c = ChatController(store, EngineWorker(), flush_ms=10)
    try:
        with qtbot.waitSignal(c.model_ready, timeout=120000):
            c.load_model(str(demo_folder()))
        session = c.worker.engine
        prompts: list[str] = []
        real_fit = session.fit_prompt

        def recording_fit(messages, max_tokens, **render):   # the real rendering, its ids kept to read back
            ids, trimmed = real_fit(messages, max_tokens, **render)
            prompts.append(session.enc.decode(ids))
            return ids, trimmed

        session.fit_prompt = recording_fit
        c.settings.developer, c.settings.max_tokens = "Answer in British English.", 8
        own = c.new_conversation()
        c.chat_options.set(own, ChatOptions("Answer like a pirate.", 0.3))
        for question in ("What is 2 + 3?", "What is 4 + 4?"):
            assert c.send(question)
            qtbot.waitUntil(lambda: not c.busy, timeout=120000)
        assert len(prompts) == 2
        for prompt in prompts:
            assert "Answer like a pirate." in developer_message(prompt)
            assert "British" not in prompt
        c.chat_options.set(own, ChatOptions())           # back to Settings: the app-wide instructions
        assert c.send("What is 1 + 1?")
        qtbot.waitUntil(lambda: not c.busy, timeout=120000)
        assert "Answer in British English." in developer_message(prompts[-1])
        assert "pirate" not in prompts[-1]
    finally:
        c.shutdown()


def test_a_chats_own_instructions_too_long_are_named_as_the_chats(qtbot, store, app_home):
    """The too-long sentence points at where the instructions are: this chat's settings, not Settings."""
    c = ChatController(store, EngineWorker(), flush_ms=10)
    try:
        with qtbot.waitSignal(c.model_ready, timeout=120000):
            c.load_model(str(demo_folder()))
        c.settings.max_tokens = 8
        own = c.new_conversation()
        c.chat_options.set(own, ChatOptions("Always answer in verse. " * 3000))   # ~18k tokens in an 8k context
        assert c.send("What is 2 + 3?")
        qtbot.waitUntil(lambda: not c.busy, timeout=120000)
        notice = c.model.last().notice
        assert "developer instructions in this chat's settings are" in notice, notice
        assert "in Settings are" not in notice
    finally:
        c.shutdown()
