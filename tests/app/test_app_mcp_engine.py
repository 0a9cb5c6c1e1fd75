"""An MCP call through the real engine in the app: a tiny real checkpoint in a real ChatSession
(harmony rendering with the server's tools in the developer message, constrained arguments, the
stream parser, the KV cache) whose next tokens are forced from a script, the app's consent, and the
real test MCP server. What the app hands back after the call re-renders what the model wrote, so
the cache carries on and only the tool's result is read."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

mx = pytest.importorskip("mlx.core")

from scripted import scripted_loader  # noqa: E402
from test_app_tools_engine import ForcedModel  # noqa: E402

from app import tool_steps  # noqa: E402
from app.controller import ChatController  # noqa: E402
from app.worker import EngineWorker  # noqa: E402
from engine.session import ChatSession  # noqa: E402

SERVER = Path(__file__).resolve().parents[1] / "mcp" / "mcp_test_server.py"
FIRST = ("<|channel|>analysis<|message|>Add them with the tool.<|end|>"
         '<|start|>assistant to=functions.notes__add<|channel|>commentary <|constrain|>json<|message|>{"a": 2, "b": 40}<|call|>')
SECOND = "<|channel|>final<|message|>2 + 40 = 42.<|return|>"


def test_an_mcp_call_through_the_real_session_reuses_the_cache(qtbot, tmp_path, tiny_chat_folder):
    from app.store import ChatStore
    from engine import load_model
    from engine.tokenizer import load_tokenizer

    enc = load_tokenizer(tiny_chat_folder)
    replies = [enc.encode(text, allowed_special="all") for text in (FIRST, SECOND)]
    model = ForcedModel(load_model(tiny_chat_folder, dtype="float32"), replies, enc.n_vocab,
                        enc.encode_ordinary("assistant")[0])
    session = ChatSession(model, enc, context_length=4096)
    session.greedy = True
    prompts, held, dones = [], [], []
    reply, fit_prompt = session.reply, session.fit_prompt

    def recording_fit_prompt(*args, **kwargs):
        ids, trimmed = fit_prompt(*args, **kwargs)
        prompts.append(list(ids))
        return ids, trimmed

    def recording_reply(*args, **kwargs):
        for ev in reply(*args, **kwargs):
            if type(ev).__name__ == "Done":
                dones.append(ev)
                held.append(list(session.held))
            yield ev

    session.reply, session.fit_prompt = recording_reply, recording_fit_prompt
    store = ChatStore(tmp_path / "history.sqlite3")
    c = ChatController(store, EngineWorker(loader=scripted_loader(session)), flush_ms=10)
    with qtbot.waitSignal(c.model_ready, timeout=10000):
        c.load_model(str(tiny_chat_folder))
    assert c.mcp.add("notes", {"command": sys.executable, "args": [str(SERVER), "stdio"]}) == ""
    c.mcp.set_on(c.new_conversation(), "notes", True)
    c.send("What is 2 plus 40?")
    qtbot.waitUntil(lambda: c.waiting_call() is not None, timeout=60000)
    step = c.waiting_call()
    assert step.mcp == {"server": "notes", "tool": "add"} and step.call.parsed == {"a": 2, "b": 40}
    assert "type notes__add = (_: {" in enc.decode(prompts[0])     # the server's tool, in harmony
    c.answer_tool("run")
    qtbot.waitUntil(lambda: not c.busy, timeout=90000)
    answer = c.model.last()
    assert answer.text == "2 + 40 = 42." and tool_steps.calls(answer.steps)[0].result == "42"
    assert [d.stop_reason for d in dones] == ["call", "return"]
    assert prompts[1][:len(held[0])] == held[0]                      # the cache carries on from the call
    assert dones[1].reused_tokens >= len(prompts[0]) - 1
    assert "<|start|>functions.notes__add to=assistant<|channel|>commentary<|message|>42<|end|>" in enc.decode(prompts[1])
    c.shutdown()
    store.close()
