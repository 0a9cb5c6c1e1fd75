"""app/turn_request.py: the request of a chat's next answer, built from the real Settings, chat
options, library and MCP service (no Qt widgets, no model): what the demo model is not offered
(functions, MCP, and the answer format until its weights fill one),
a chat's own sampling over the app's, MCP tools only for a chat that has a server on."""
from __future__ import annotations

import json

import pytest

from app import turn_request
from app.chat_options import ChatOptions, ChatOptionsStore
from app.conversation import ChatMessage
from app.library_sources import LibrarySources
from app.mcp.service import McpService
from app.settings import Settings

WEATHER = {"name": "get_weather", "description": "The weather in a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
SCHEMA = '{"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}'


@pytest.fixture
def parts(store, tmp_path):
    mcp = McpService(store, path=tmp_path / "mcp.json")
    yield ChatOptionsStore(store), LibrarySources(store, tmp_path / "browser"), mcp
    mcp.shutdown()


def build(parts, conv, settings, demo=False, rows=None):
    chat_options, library, mcp = parts
    rows = rows if rows is not None else [ChatMessage(role="user", text="Hi")]
    return turn_request.build(conv, "high", rows, settings, chat_options, library, mcp, demo)


def test_the_model_is_offered_the_users_functions_and_answer_format_the_demo_no_functions(store, parts):
    conv = store.create_conversation("c", "high").id
    settings = Settings(functions=[WEATHER], answer_schema=SCHEMA, max_tokens=123, python_tool=True)
    full = build(parts, conv, settings)
    assert [t.name for t in full.options["tools"]] == ["get_weather"]
    assert full.options["answer_format"] is not None
    assert (full.options["effort"], full.options["max_tokens"], full.options["python"]) == ("high", 123, True)
    assert full.history == [{"role": "user", "content": "Hi", "channel": "final"}]
    demo = build(parts, conv, settings, demo=True)
    assert "tools" not in demo.options   # the demo learnt no functions
    assert ("answer_format" in demo.options) == turn_request.DEMO_FILLS_ANSWER_FORMATS
    assert "browser" not in full.options   # the library is empty: nothing to browse


def test_the_demo_is_offered_the_answer_format_once_its_weights_fill_one(store, parts, monkeypatch):
    conv = store.create_conversation("c", "high").id
    monkeypatch.setattr(turn_request, "DEMO_FILLS_ANSWER_FORMATS", False)
    assert "answer_format" not in build(parts, conv, Settings(answer_schema=SCHEMA), demo=True).options
    monkeypatch.setattr(turn_request, "DEMO_FILLS_ANSWER_FORMATS", True)
    demo = build(parts, conv, Settings(functions=[WEATHER], answer_schema=SCHEMA), demo=True)
    assert demo.options["answer_format"].schema == json.loads(SCHEMA) and "tools" not in demo.options
    assert build(parts, conv, Settings(answer_schema=""), demo=True).options["answer_format"] is None   # free text


def test_a_chats_own_sampling_wins_over_the_apps(store, parts):
    conv, other = store.create_conversation("c", "high").id, store.create_conversation("d", "high").id
    parts[0].set(conv, ChatOptions(temperature=0.2, developer="Be brief."))
    settings = Settings(temperature=0.9, top_p=0.8, developer="")
    own, plain = build(parts, conv, settings).options, build(parts, other, settings).options
    assert (own["temperature"], own["top_p"], own["developer"]) == (0.2, 0.8, "Be brief.")
    assert (plain["temperature"], plain["top_p"], plain["developer"]) == (0.9, 0.8, "")


def test_mcp_tools_are_listed_first_only_where_a_server_is_on_and_never_for_the_demo(store, parts):
    conv, other = store.create_conversation("c", "high").id, store.create_conversation("d", "high").id
    mcp = parts[2]
    assert mcp.add("notes", {"command": "notes-server"}) == ""   # configured, never started here
    mcp.set_on(conv, "notes", True)
    mcp.set_on(other, "notes", False)
    assert build(parts, conv, Settings()).with_mcp
    assert not build(parts, other, Settings()).with_mcp
    assert not build(parts, conv, Settings(), demo=True).with_mcp
