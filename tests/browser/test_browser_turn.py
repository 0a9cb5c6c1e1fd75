"""A whole turn with the browser through the real renderer and parser (a scripted model): the
calls are run, their pages go back as tool messages, the prompt grows by exactly those messages
(so the cache carries on), and the cited answer resolves to the document."""

from __future__ import annotations

import pytest

from engine.browser import BrowserTool, Library, citations
from engine.browser.turn import BrowserStep, browse_turn
from engine.events import Done, MessageStart, TextDelta
from engine.tools import ToolCall
from scripted import ScriptedSession

SEARCH = '<|channel|>analysis<|message|>I should search the notes.<|end|><|start|>assistant<|channel|>analysis to=browser.search code<|message|>{"query": "spring tide Brest"}<|call|>'
OPEN = '<|channel|>analysis to=browser.open code<|message|>{"id": 0, "cursor": 0}<|call|>'
FINAL = '<|channel|>final<|message|>The spring tide at Brest peaks at 7.9 metres 【1†L2】.<|return|>'


@pytest.fixture
def tool(notes, tmp_path, count_tokens):
    lib = Library(tmp_path / "index", [notes])
    lib.update()
    return BrowserTool([lib], count_tokens)


def test_a_turn_searches_opens_and_cites(enc, tool, notes):
    session = ScriptedSession(enc, [SEARCH, OPEN, FINAL])
    messages = [{"role": "user", "content": "How high is the spring tide at Brest?"}]
    events = list(browse_turn(session, messages, tool))
    steps = [e for e in events if isinstance(e, BrowserStep)]
    assert [s.action for s in steps] == ["search", "open"] and [s.cursor for s in steps] == [0, 1]
    assert steps[0].output.startswith("[0] spring tide Brest") and "7.9 metres" in steps[1].output
    assert [m["role"] for m in messages] == ["user", "assistant", "assistant", "tool", "assistant", "tool", "assistant"]
    assert messages[3] == {"role": "tool", "name": "browser.search", "channel": "analysis", "content": steps[0].output}
    assert messages[2]["recipient"] == "browser.search" and messages[2]["content_type"] == "code"
    # each prompt extends the previous one by the call and the page: the KV cache carries on
    for before, after in zip(session.prompts, session.prompts[1:]):
        assert after[:len(before) - 2] == before[:-2]
    answer = messages[-1]["content"]
    (cite,) = citations(answer, tool)
    assert cite.url == (notes / "tides.md").as_uri() and cite.lines == (2, 2)
    assert sum(isinstance(e, Done) for e in events) == 3


def test_a_bad_call_is_answered_so_the_model_can_retry(enc, tool):
    bad = '<|channel|>analysis to=browser.search code<|message|>{"q": "tides"}<|call|>'
    session = ScriptedSession(enc, [bad, FINAL])
    messages = [{"role": "user", "content": "tides?"}]
    steps = [e for e in browse_turn(session, messages, tool) if isinstance(e, BrowserStep)]
    assert steps[0].call.error and steps[0].output == steps[0].call.error
    assert "browser.search has no argument 'q'" in messages[2]["content"]


def test_a_model_stuck_in_a_loop_is_told_to_answer(enc, tool):
    session = ScriptedSession(enc, [OPEN.replace('"id": 0, "cursor": 0', '"query": "x"').replace("open", "search")] * 3 + [FINAL])
    messages = [{"role": "user", "content": "tides?"}]
    steps = [e for e in browse_turn(session, messages, tool, max_steps=2) if isinstance(e, BrowserStep)]
    assert len(steps) == 3 and "answer with what you have found" in steps[-1].output
    assert messages[-1]["channel"] == "final"


def test_the_system_message_offers_the_browser_with_its_sources(enc, tool):
    session = ScriptedSession(enc, [FINAL])
    list(browse_turn(session, [{"role": "user", "content": "hi"}], tool))
    text = enc.decode(session.prompts[0])
    assert "## browser" in text and "// sources=library (default: library)" in text


def test_a_saved_conversation_gets_its_pages_back(enc, tool, notes, count_tokens):
    session = ScriptedSession(enc, [SEARCH, OPEN, FINAL])
    messages = [{"role": "user", "content": "tides?"}]
    list(browse_turn(session, messages, tool))
    reopened = BrowserTool(list(tool.sources.values()), count_tokens)
    assert reopened.replay(messages) == 2
    assert reopened.page(1).url == tool.page(1).url == (notes / "tides.md").as_uri()
    assert citations(messages[-1]["content"], reopened)[0].url == (notes / "tides.md").as_uri()
    assert reopened.next_cursor == tool.next_cursor  # the next call gets the cursor it would have had
