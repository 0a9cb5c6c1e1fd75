"""engine.session.ChatSession: cache reuse across turns gives the same logits as a fresh prefill
(on a real tiny checkpoint with a 16-token sliding window), context trimming, and the event flow
(on a scripted model that speaks harmony)."""

from __future__ import annotations

import threading

import mlx.core as mx
import numpy as np
import pytest

from engine import load_model
from engine.generate import SamplingParams
from engine.harmony import MessageEnd, MessageStart, Stop, TextDelta, render_prompt
from engine.session import ChatSession, ContextTrimmed, Done, PromptTooLong

GREEDY = SamplingParams(temperature=0.0)


@pytest.fixture(scope="module")
def model(tiny_chat_folder):
    m = load_model(tiny_chat_folder, dtype="float32")
    assert m.config.sliding_window < 40  # the histories below are longer than the window
    return m


def U(text):
    return {"role": "user", "content": text}


def A(text, channel="final"):
    return {"role": "assistant", "content": text, "channel": channel}


def last_logits_fresh(model, ids):
    return np.array(model(mx.array([ids]), cache=model.make_cache())[0, -1])


def last_logits_via_session(session, ids):
    reused = session.prepare(ids)
    logits = session.model(mx.array([ids[-1:]]), cache=session.cache)[0, -1]
    session.held.append(ids[-1])
    return reused, np.array(logits)


def drain(events):
    return list(events)


def test_reused_cache_gives_the_logits_of_a_fresh_prefill(model, enc):
    session = ChatSession(model, enc, context_length=4096)
    chat = [U("Tell me about the sliding window attention used in this model, in detail please.")]
    turn1 = drain(session.reply(chat, sampling=GREEDY, max_tokens=6, date="2026-11-22"))
    assert isinstance(turn1[-1], Done) and turn1[-1].reused_tokens == 0

    chat += [A("Let me think about windows.", "analysis"), A("It sees the last 128 tokens."), U("And the full layers?")]
    ids = render_prompt(chat, enc, date="2026-11-22")
    first_prompt_len = turn1[-1].prompt_tokens
    reused, logits = last_logits_via_session(session, ids)
    assert reused == first_prompt_len - 1  # everything but the last token of the previous prompt
    np.testing.assert_allclose(logits, last_logits_fresh(model, ids), rtol=1e-4, atol=1e-4)

    # A third turn extends everything the cache holds (the whole turn-2 prompt): no rewind at all.
    chat += [A("They see everything."), U("Thanks!")]
    ids3 = render_prompt(chat, enc, date="2026-11-22")
    reused3, logits3 = last_logits_via_session(session, ids3)
    assert reused3 == len(ids)
    np.testing.assert_allclose(logits3, last_logits_fresh(model, ids3), rtol=1e-4, atol=1e-4)


def test_regenerate_edit_and_switch_conversation(model, enc):
    session = ChatSession(model, enc, context_length=4096)
    a = [U("first question about numbers 1 2 3 4 5 6 7 8 9"), A("an answer"), U("second question")]
    done1 = drain(session.reply(a, sampling=GREEDY, max_tokens=3, date="2026-11-22"))[-1]
    done2 = drain(session.reply(a, sampling=GREEDY, max_tokens=3, date="2026-11-22"))[-1]  # regenerate
    assert done2.reused_tokens > 0 and done2.stats.prompt_tokens < done1.stats.prompt_tokens
    edited = a[:-1] + [U("second question, edited")]
    ids = render_prompt(edited, enc, date="2026-11-22")
    reused, logits = last_logits_via_session(session, ids)
    assert 0 < reused < len(ids) - 1
    np.testing.assert_allclose(logits, last_logits_fresh(model, ids), rtol=1e-4, atol=1e-4)
    other = [U("a completely different chat")]
    ids = render_prompt(other, enc, date="2026-11-22", effort="high")
    reused, logits = last_logits_via_session(session, ids)
    np.testing.assert_allclose(logits, last_logits_fresh(model, ids), rtol=1e-4, atol=1e-4)


def test_context_overflow_drops_oldest_turns_and_never_crashes(model, enc):
    session = ChatSession(model, enc, context_length=300)
    chat = []
    for i in range(12):
        chat += [U(f"question number {i} " + "blah " * 10), A(f"answer number {i} " + "yada " * 10)]
    chat.append(U("the latest question"))
    events = drain(session.reply(chat, sampling=GREEDY, max_tokens=20, date="2026-11-22", developer="Be nice."))
    assert isinstance(events[0], ContextTrimmed) and events[0].dropped_messages > 0
    assert events[0].dropped_messages % 2 == 0  # whole turns go
    assert isinstance(events[-1], Done) and events[-1].prompt_tokens + 20 <= 300
    text = enc.decode(session.held)
    assert "Be nice." in text and "the latest question" in text and "question number 0 " not in text
    assert text.startswith("<|start|>system<|message|>")

    huge = [U("word " * 2000)]  # refused whole before any prefill, never cut
    events = drain(session.reply(huge, sampling=GREEDY, max_tokens=20, date="2026-11-22"))
    assert isinstance(events[0], PromptTooLong) and events[0].message_chars == len("word " * 2000)
    assert len(events) == 2 and events[-1].stop_reason == "too_long" and session.cache.offset <= 300


def test_cancel_before_prefill_then_carry_on(model, enc):
    session = ChatSession(model, enc, context_length=4096)
    cancel = threading.Event()
    cancel.set()
    events = drain(session.reply([U("hello " * 50)], cancel=cancel, date="2026-11-22"))
    assert events[-1].stop_reason == "cancelled" and events[-2] == Stop("cancelled")
    assert session.cache.offset == len(session.held)
    cancel.clear()
    events = drain(session.reply([U("hello " * 50)], sampling=GREEDY, max_tokens=2, cancel=cancel, date="2026-11-22"))
    assert isinstance(events[-1], Done) and events[-1].stats.generated_tokens == 2
    assert session.cache.offset == len(session.held) == events[-1].prompt_tokens + 2


# ---------------------------------------------------------------- scripted model: the event flow


class CountingCache:
    def __init__(self):
        self.offset = 0

    def snapshot(self):
        return self.offset

    def restore(self, snap):
        self.offset = snap

    def state(self):
        return []


class ScriptedModel:
    """Emits a fixed harmony reply, token by token, whatever the prompt."""

    def __init__(self, script: list[int], vocab: int):
        self.script, self.vocab, self.step = script, vocab, 0

    def make_cache(self):
        return CountingCache()

    def hidden(self, ids, cache):
        cache.offset += ids.shape[1]
        return mx.zeros((1, ids.shape[1], 4))

    def __call__(self, ids, cache=None, last_only=False):
        cache.offset += ids.shape[1]
        token = self.script[min(self.step, len(self.script) - 1)]
        self.step += 1
        return mx.array(np.eye(1, self.vocab, token, dtype=np.float32)[None] * 50)


def test_events_of_a_well_formed_reply(enc):
    reply = "<|channel|>analysis<|message|>Two plus two.<|end|><|start|>assistant<|channel|>final<|message|>4 🙂<|return|>"
    model = ScriptedModel(enc.encode(reply, allowed_special="all"), enc.n_vocab)
    session = ChatSession(model, enc)
    events = drain(session.reply([U("2+2?")], sampling=GREEDY, date="2026-11-22"))
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "MessageStart" and kinds[-2:] == ["Stop", "Done"]
    assert events[0] == MessageStart("assistant", "analysis")
    analysis = "".join(e.text for e in events if isinstance(e, TextDelta) and e.channel == "analysis")
    final = "".join(e.text for e in events if isinstance(e, TextDelta) and e.channel == "final")
    assert (analysis, final) == ("Two plus two.", "4 🙂")
    assert MessageEnd("final") in events and events[-1].stop_reason == "return"
    assert events[-1].stats.generated_tokens == len(enc.encode(reply, allowed_special="all"))

    # next turn: the cache is rewound to the snapshot taken before the last prompt token
    model.step = 0
    chat = [U("2+2?"), A("Two plus two.", "analysis"), A("4 🙂"), U("and 3+3?")]
    done = drain(session.reply(chat, sampling=GREEDY, date="2026-11-22"))[-1]
    assert done.reused_tokens == events[-1].prompt_tokens - 1
    assert session.cache.offset == len(session.held)


def test_max_tokens_mid_message_ends_with_reason(enc):
    model = ScriptedModel(enc.encode("<|channel|>final<|message|>" + "la " * 50, allowed_special="all"), enc.n_vocab)
    events = drain(ChatSession(model, enc).reply([U("sing")], sampling=GREEDY, max_tokens=10, date="2026-11-22"))
    assert events[-3:-1] == [MessageEnd("final"), Stop("max_tokens")]
    assert events[-1].stop_reason == "max_tokens"


def test_cancel_mid_answer(enc):
    model = ScriptedModel(enc.encode("<|channel|>final<|message|>" + "la " * 50, allowed_special="all"), enc.n_vocab)
    session, cancel, events = ChatSession(model, enc), threading.Event(), []
    for ev in session.reply([U("sing")], sampling=GREEDY, max_tokens=100, cancel=cancel, date="2026-11-22"):
        events.append(ev)
        if isinstance(ev, TextDelta):
            cancel.set()
    assert events[-3:-1] == [MessageEnd("final"), Stop("cancelled")] and events[-1].stop_reason == "cancelled"
    assert session.cache.offset == len(session.held)


# ---------------------------------------------------------------- one pipeline: true stats, progress


def test_stats_count_the_whole_prompt_and_its_real_prefill_speed(model, enc):
    session = ChatSession(model, enc, context_length=4096, prefill_chunk=64)
    done = drain(session.reply([U("word " * 300)], sampling=GREEDY, max_tokens=3, date="2026-11-22"))[-1]
    s = done.stats
    assert s.prompt_tokens == done.prompt_tokens - done.reused_tokens > 300
    # Prefill speed is the whole new prompt over the time to the first token (it was 1 / ttft).
    assert s.prefill_tps == pytest.approx(s.prompt_tokens / s.ttft_s, rel=1e-6)
    assert 0 < s.ttft_s <= done.ttft_s and s.generated_tokens == 3


def test_a_long_prompt_reports_reading_progress_and_the_wired_limit_is_held(model, enc, monkeypatch):
    import engine.session as session_module

    monkeypatch.setattr(session_module, "PROGRESS_AFTER_S", 0.0)
    inside = []

    class Wired:
        def __enter__(self):
            inside.append("in")

        def __exit__(self, *exc):
            inside.append("out")

    session = ChatSession(model, enc, context_length=4096, prefill_chunk=64, wired_limit=Wired)
    events = []
    for ev in session.reply([U("word " * 300)], sampling=GREEDY, max_tokens=2, date="2026-11-22"):
        events.append((ev, list(inside)))
    progress = [ev for ev, _ in events if isinstance(ev, session_module.PrefillProgress)]
    total = events[-1][0].prompt_tokens - 1
    steps = [0] + [p.done for p in progress]  # one per chunk (a chunk also ends where a snapshot is kept)
    assert steps[-1] == total and len(steps) >= 1 + total // 64
    assert all(0 < b - a <= 64 for a, b in zip(steps, steps[1:]))
    assert all(p.total == total for p in progress) and progress[-1].fraction == 1.0
    assert all(seen == ["in"] for _, seen in events) and inside == ["in", "out"]
def test_reused_8bit_cache_gives_the_logits_of_a_fresh_prefill(tiny_chat_folder, enc):
    """The same rewinds (snapshots at turn ends, restore, overwrite) with an 8-bit KV cache."""
    from engine.memory import Policy

    model8 = load_model(tiny_chat_folder, dtype="float32", policy=Policy(embed_on_cpu=False, kv_bits=8))
    assert any(type(c).__name__ == "QuantizedFullCache" for c in model8.make_cache().layers)
    test_reused_cache_gives_the_logits_of_a_fresh_prefill(model8, enc)
