"""The tool loop through the real engine: a tiny real checkpoint in a real ChatSession (harmony
rendering with the python tool, the stream parser, the KV cache), whose next tokens are forced
from a script (a random tiny model would never write a call), and the real sandboxed kernel. Checks
that what the app hands back after a call re-renders exactly what the model wrote, so the cache
carries on and only the tool's result is read."""
from __future__ import annotations

import inspect

import pytest

pytest.importorskip("engine.tools")
mx = pytest.importorskip("mlx.core")

from scripted import scripted_loader  # noqa: E402

from app.tools_worker import ToolsWorker  # noqa: E402

from app import tool_steps  # noqa: E402
from app.controller import ChatController  # noqa: E402
from app.worker import EngineWorker  # noqa: E402
from engine.python_tool import Limits, PythonToolPool, sandbox_problem  # noqa: E402
from engine.session import ChatSession  # noqa: E402

pytestmark = [
    pytest.mark.skipif(sandbox_problem() is not None, reason=f"the sandbox can't run here: {sandbox_problem()}"),
    pytest.mark.skipif("python" not in inspect.signature(ChatSession.reply).parameters,
                       reason="this engine's session has no tool loop yet"),
]

FIRST = ("<|channel|>analysis<|message|>Multiply with the tool.<|end|>"
         "<|start|>assistant<|channel|>analysis to=python code<|message|>print(123 * 456)<|call|>")
SECOND = "<|channel|>final<|message|>123 × 456 = 56088.<|return|>"


class ForcedModel:
    """The real model runs every step (so the real cache fills as it would), but its next token is
    forced from the script of the reply being written (one-hot logits). A reply's script starts
    when the prompt's closing `assistant` is fed after the previous script ran out (the session
    may run one decode step past a stop token; that step's token is never used)."""

    def __init__(self, model, replies: list[list[int]], vocab: int, assistant_id: int):
        self.model, self.replies, self.vocab, self.assistant_id = model, replies, vocab, assistant_id
        self.reply, self.pos = -1, 0

    def make_cache(self):
        return self.model.make_cache()

    def hidden(self, ids, cache):
        return self.model.hidden(ids, cache)

    def __call__(self, ids, cache=None, last_only=False):
        logits = self.model(ids, cache=cache, last_only=last_only)
        fed = int(ids.reshape(-1)[-1].item())
        if fed == self.assistant_id and (self.reply < 0 or self.pos >= len(self.replies[self.reply])):
            self.reply, self.pos = min(self.reply + 1, len(self.replies) - 1), 0
        script = self.replies[self.reply]
        token = script[min(self.pos, len(script) - 1)]
        self.pos += 1
        forced = mx.where(mx.arange(self.vocab) == token, 50.0, -50.0)[None, None, :]
        return forced + 0 * logits[..., -1:, :1]   # keeps the real step in the graph

    def __getattr__(self, name):
        return getattr(self.model, name)


def test_a_python_call_through_the_real_session_reuses_the_cache_and_runs_in_the_sandbox(qtbot, tmp_path, tiny_chat_folder):
    from engine import load_model
    from engine.tokenizer import load_tokenizer
    from app.store import ChatStore

    enc = load_tokenizer(tiny_chat_folder)
    replies = [enc.encode(text, allowed_special="all") for text in (FIRST, SECOND)]
    model = ForcedModel(load_model(tiny_chat_folder, dtype="float32"), replies, enc.n_vocab,
                        enc.encode_ordinary("assistant")[0])
    session = ChatSession(model, enc, context_length=4096)
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
    loader = scripted_loader(session)
    store = ChatStore(tmp_path / "history.sqlite3")
    pool = PythonToolPool(tmp_path / "python", Limits(timeout=60.0))
    session.greedy = True  # the tiny model's scripted answer is only sure greedy
    worker = EngineWorker(loader=loader)
    c = ChatController(store, worker, flush_ms=10, tools=ToolsWorker(pool))
    with qtbot.waitSignal(c.model_ready, timeout=10000):
        c.load_model(str(tiny_chat_folder))
    c.send("What is 123 times 456?")
    qtbot.waitUntil(lambda: c.waiting_call() is not None, timeout=60000)
    step = c.waiting_call()
    assert (step.recipient, step.arguments, step.channel) == ("python", "print(123 * 456)", "analysis")
    c.answer_tool("run")
    qtbot.waitUntil(lambda: not c.busy, timeout=90000)
    answer = c.model.last()
    assert answer.text == "123 × 456 = 56088." and answer.state == "done"
    assert tool_steps.calls(answer.steps)[0].result.strip() == "56088"
    assert [d.stop_reason for d in dones] == ["call", "return"]
    # The second prompt begins with exactly the tokens the first step left in the cache (its prompt
    # and the call as the model wrote it): the app handed the turn back unchanged, so the session
    # can carry on from its cache and read only the tool's message.
    assert held[0][-1] == enc.encode("<|call|>", allowed_special="all")[0]
    assert prompts[1][:len(held[0])] == held[0]
    assert dones[1].reused_tokens >= len(prompts[0]) - 1
    c.shutdown()
    pool.close_all()
    store.close()


