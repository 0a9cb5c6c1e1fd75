"""The browser namespace in the system message, token-identical to openai-harmony's rendering:
harmony's own ToolNamespaceConfig.browser() functions with our `sources=` line, alone and beside
python, with user functions, across a tool call and its answer."""

from __future__ import annotations

import os

import pytest

from engine.browser import spec
from engine.harmony import render_prompt
from engine.tools import check_call, tool_result_message
from models.tokenizer_json import shared_o200k_harmony_folder

oh = pytest.importorskip("openai_harmony")
DATE = "2026-12-07"


@pytest.fixture(scope="module")
def reference():
    os.environ["TIKTOKEN_ENCODINGS_BASE"] = str(shared_o200k_harmony_folder())
    return oh.load_harmony_encoding(oh.HarmonyEncodingName.HARMONY_GPT_OSS)


def harmony_browser(sources):
    """harmony's browser namespace with its description's sources line replaced by ours."""
    base = oh.ToolNamespaceConfig.browser()
    head, last = base.description.rsplit("\n", 1)
    assert last == "sources=web (default: web)"  # what we replace, and nothing else
    return oh.ToolNamespaceConfig(name="browser", description=f"{head}\n{spec.sources_line(sources)}", tools=base.tools)


def reference_ids(reference, sources, messages, python=False):
    system = oh.SystemContent.new().with_conversation_start_date(DATE).with_tools(harmony_browser(sources))
    if python:
        system = system.with_tools(oh.ToolNamespaceConfig.python())
    convo = [oh.Message.from_role_and_content(oh.Role.SYSTEM, system)]
    for m in messages:
        if m["role"] == "user":
            convo.append(oh.Message.from_role_and_content(oh.Role.USER, m["content"]))
        elif m["role"] == "tool":
            msg = oh.Message.from_author_and_content(oh.Author.new(oh.Role.TOOL, m["name"]), m["content"])
            convo.append(msg.with_channel(m["channel"]).with_recipient("assistant"))
        else:
            msg = oh.Message.from_role_and_content(oh.Role.ASSISTANT, m["content"]).with_channel(m["channel"])
            if m.get("recipient"):
                msg = msg.with_recipient(m["recipient"])
            if m.get("content_type"):
                msg = msg.with_content_type(m["content_type"])
            convo.append(msg)
    return reference.render_conversation_for_completion(oh.Conversation.from_messages(convo), oh.Role.ASSISTANT)


def test_our_definitions_are_harmonys():
    base = oh.ToolNamespaceConfig.browser()
    assert base.description.rsplit("\n", 1)[0] == spec.DESCRIPTION_HEAD
    assert [(t.name, t.description, t.parameters) for t in base.tools] == \
        [(t.name, t.description, t.parameters) for t in spec.FUNCTIONS]


@pytest.mark.parametrize("sources", [["library"], ["library", "wikipedia_en_all_nopic"], ["web"]])
@pytest.mark.parametrize("python", [False, True])
def test_system_message_is_token_identical(enc, reference, sources, python):
    messages = [{"role": "user", "content": "What do my notes say about tides?"}]
    ours = render_prompt(messages, enc, date=DATE, browser=sources, python=python)
    assert ours == reference_ids(reference, sources, messages, python)


def test_the_default_sources_line_is_harmonys_own(enc, reference):
    """With the source named `web`, our namespace is harmony's ToolNamespaceConfig.browser() exactly."""
    system = oh.SystemContent.new().with_conversation_start_date(DATE).with_browser_tool()
    convo = oh.Conversation.from_messages([oh.Message.from_role_and_content(oh.Role.SYSTEM, system),
                                           oh.Message.from_role_and_content(oh.Role.USER, "hi")])
    want = reference.render_conversation_for_completion(convo, oh.Role.ASSISTANT)
    assert render_prompt([{"role": "user", "content": "hi"}], enc, date=DATE, browser=["web"]) == want


def test_a_call_and_its_page_render_token_identical(enc, reference):
    call = check_call("browser.search", '{"query": "tides", "topn": 5}', {}, channel="analysis", content_type="code",
                      browser=True)
    assert call.error is None and call.parsed.query == "tides"
    page = "[0] tides\n**viewing lines [0 - 4] of 4**\n\nL0: \nL1: URL: \nL2: # Search Results\nL3: \nL4:   * 【0†Tides†library】"
    messages = [{"role": "user", "content": "tides?"},
                {"role": "assistant", "channel": "analysis", "content": "Search the notes."},
                call.message, tool_result_message(call, page)]
    assert messages[-1]["name"] == "browser.search"
    ours = render_prompt(messages, enc, date=DATE, browser=["library"])
    assert ours == reference_ids(reference, ["library"], messages)


def test_bad_calls_are_one_sentence_for_the_model():
    assert "needs 'query'" in check_call("browser.search", "{}", {}, browser=True).error
    assert "whole number" in check_call("browser.open", '{"cursor": "two"}', {}, browser=True).error
    assert "no function" in check_call("browser.click", "{}", {}, browser=True).error
    assert "not valid JSON" in check_call("browser.find", "{pattern", {}, browser=True).error
    assert check_call("browser.open", "", {}, browser=True).error is None  # open() alone: the current page
    assert check_call("browser.search", '{"query": "x", "top_n": 3}', {}, browser=True).parsed.topn == 3
    # not offered (the app today): the model reads that there is no such tool, as for any unknown one
    assert "There is no tool 'browser.search'" in check_call("browser.search", '{"query": "x"}', {}).error
