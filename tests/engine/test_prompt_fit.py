"""engine.prompt_fit: every part of the prompt counts against the context, the oldest whole turns
go first, a user's message is never cut, and the work grows linearly with the history.

The reference for where to cut is brute force: render every possible slice with the real
renderer and take the first one that fits."""

from __future__ import annotations

import pytest

from engine.harmony import kept_messages, render_prompt
from engine.prompt_fit import ContextTrimmed, PromptTooLong, fit_prompt, prompt_budget

DATE = "2026-11-22"


def U(text):
    return {"role": "user", "content": text}


def A(text, channel="final"):
    return {"role": "assistant", "content": text, "channel": channel}


def chat(turns: int, words: int = 30) -> list[dict]:
    out = []
    for i in range(turns):
        out += [U(f"question {i} " + "blah " * words), A(f"thinking {i} " + "hmm " * words, "analysis"),
                A(f"answer {i} " + "yada " * words)]
    return out + [U("the latest question")]


def brute_force_cut(messages, enc, context_length, max_tokens, **render):
    """The first turn start whose slice renders within 3/4 of the budget, else within the budget."""
    budget, _ = prompt_budget(context_length, max_tokens)
    kept = kept_messages(messages)
    starts = [0] + [i for i, m in enumerate(kept) if i > 0 and m["role"] == "user"]
    lengths = {s: len(render_prompt(kept[s:], enc, **render)) for s in starts}
    if lengths[0] <= budget:
        return 0
    for limit in (budget * 3 // 4, budget):
        for s in starts:
            if lengths[s] <= limit:
                return s
    return None


@pytest.mark.parametrize("context_length,developer", [(1024, None), (1024, "Be brief. " * 40), (2048, "Be nice.")])
def test_the_cut_matches_brute_force_and_the_render(enc, context_length, developer):
    messages = chat(40)
    render = {"date": DATE, "developer": developer, "effort": "high"}
    ids, event = fit_prompt(messages, enc, context_length, 256, **render)
    cut = brute_force_cut(messages, enc, context_length, 256, **render)
    assert isinstance(event, ContextTrimmed) and event.dropped_messages == cut > 0
    assert ids == render_prompt(kept_messages(messages)[cut:], enc, **render)
    assert len(ids) <= context_length - 256
    text = enc.decode(ids)
    assert "the latest question" in text and (developer or "") in text


def test_a_short_chat_is_untouched(enc):
    messages = chat(2)
    ids, event = fit_prompt(messages, enc, 8192, 1024, date=DATE)
    assert event is None and ids == render_prompt(messages, enc, date=DATE)


def test_long_developer_instructions_count_against_the_context(enc):
    """Issue 19.6: 30k characters of instructions in an 8k context used to make a 26k-token prompt."""
    instructions = "Always answer in the style of a formal letter with many clauses. " * 470  # ~30k chars
    ids, event = fit_prompt([U("What is 2 + 2?")], enc, 8192, 4096, date=DATE, developer=instructions)
    assert ids == [] and isinstance(event, PromptTooLong) and event.culprit == "instructions"
    bare = len(render_prompt([U("What is 2 + 2?")], enc, date=DATE))
    full = len(render_prompt([U("What is 2 + 2?")], enc, date=DATE, developer=instructions))
    assert event.prompt_tokens == full and event.instructions_tokens == full - bare > 4096
    assert "developer instructions" in event.describe() and "4,096" in event.describe()


def test_instructions_that_fit_push_out_old_turns_not_the_question(enc):
    instructions = "Prefer short sentences. " * 150   # ~600 tokens of a 1,536-token budget
    messages = chat(30)
    ids, event = fit_prompt(messages, enc, 2048, 512, date=DATE, developer=instructions)
    assert isinstance(event, ContextTrimmed) and event.dropped_messages > 0
    assert len(ids) <= 2048 - 512 and instructions.strip() in enc.decode(ids)
    assert enc.decode(ids).endswith("the latest question<|end|><|start|>assistant")


def test_a_message_longer_than_the_context_is_refused_whole_not_cut(enc):
    """Issue 17.1: a ~20,000-character message in an 8k context was cut at its start silently."""
    question = "Which of these numbers is the largest? " + " ".join(str(i * 7919 % 100003) for i in range(3300))
    assert 19_000 < len(question) < 22_000
    history = [U("hello"), A("Hi! How can I help?")]
    ids, event = fit_prompt(history + [U(question)], enc, 8192, 4096, date=DATE)
    assert ids == [] and isinstance(event, PromptTooLong) and event.culprit == "message"
    alone = render_prompt([U(question)], enc, date=DATE)
    assert event.prompt_tokens == len(alone) > 4096
    assert event.message_chars == len(question) and event.message_tokens == len(alone) - event.system_tokens
    assert event.room_for_message == 4096 - event.system_tokens
    assert f"{len(question):,} characters" in event.describe()


def test_the_last_turn_keeps_its_replies(enc):
    """A turn is the user message plus what followed (e.g. an analysis being continued)."""
    messages = chat(20) + [A("still thinking about the latest question", "analysis")]
    ids, event = fit_prompt(messages, enc, 1024, 128, date=DATE)
    assert isinstance(event, ContextTrimmed)
    assert "still thinking about the latest question" in enc.decode(ids)


class CountingEncoding:
    """Wraps the real encoding and counts the characters it is asked to encode."""

    def __init__(self, enc):
        self._enc, self.chars = enc, 0

    def encode_ordinary(self, text):
        self.chars += len(text)
        return self._enc.encode_ordinary(text)

    def __getattr__(self, name):
        return getattr(self._enc, name)


def test_work_grows_linearly_with_the_history(enc):
    """Issue 19.7: each dropped turn re-rendered the whole history (1,000 turns took 64 s)."""
    for turns in (100, 400):
        messages = chat(turns)
        history_chars = sum(len(m["content"]) for m in messages)
        counting = CountingEncoding(enc)
        ids, event = fit_prompt(messages, counting, 2048, 512, date=DATE)
        assert isinstance(event, ContextTrimmed) and event.dropped_messages > turns  # most of it goes
        # once per message to size it, once more for the slice that is kept, plus the system text
        assert counting.chars < history_chars + 4000, (turns, counting.chars, history_chars)


def test_the_terminal_chat_says_what_does_not_fit(enc):
    import io

    from engine.chat import TerminalView
    question = "word " * 9000
    _ids, event = fit_prompt([U(question)], enc, 8192, 4096, date=DATE)
    from engine.generate import GenerationStats
    from engine.session import Done
    out = io.StringIO()
    view = TerminalView(out, show_reasoning=False)
    view.handle(event)
    view.handle(Done(GenerationStats(stop_reason="too_long"), "too_long", 0, event.prompt_tokens))
    assert f"({len(question):,} characters)" in out.getvalue() and "8,192-token context" in out.getvalue()
    assert "tokens/s" not in out.getvalue()


def test_a_message_and_instructions_that_only_fit_apart_are_both_named(enc):
    instructions = "Prefer short sentences. " * 600    # ~2,400 tokens
    question = "Explain this: " + "lorem ipsum dolor " * 750   # ~2,300 tokens
    ids, event = fit_prompt([U(question)], enc, 8192, 4096, date=DATE, developer=instructions)
    assert ids == [] and isinstance(event, PromptTooLong) and event.culprit == "both"
    assert fit_prompt([U(question)], enc, 8192, 4096, date=DATE)[1] is None  # the message alone fits
    assert fit_prompt([U("hi")], enc, 8192, 4096, date=DATE, developer=instructions)[1] is None
    assert "don't fit together" in event.describe()


def test_the_next_reply_tokenizes_only_the_new_messages_and_the_kept_slice(enc):
    messages = chat(400)
    counting = CountingEncoding(enc)
    first_ids, _ = fit_prompt(messages, counting, 2048, 512, date=DATE)
    first = counting.chars
    messages += [A("one more answer"), U("one more question")]
    ids, event = fit_prompt(messages, counting, 2048, 512, date=DATE)
    kept_chars = sum(len(m["content"]) for m in kept_messages(messages)[event.dropped_messages:])
    assert counting.chars - first < kept_chars + 4000 < first // 10
    assert ids == render_prompt(kept_messages(messages)[event.dropped_messages:], enc, date=DATE)
