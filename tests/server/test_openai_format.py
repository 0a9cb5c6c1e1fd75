"""OpenAI's wire format <-> the engine's types (server/openai_format.py): response_format ->
AnswerFormat, every shape; a reply's calls stay the engine's ToolCall, the wire adds only the id.

Bad shapes never reach this far on the HTTP path (server/schemas.py answers 400 first:
tests/server/test_bad_requests.py); these are the sentences for a caller that skips that check."""
from __future__ import annotations

import pytest

from engine.answer_format import ANY_JSON_OBJECT, AnswerFormat
from server.openai_format import answer_format_from_openai, engine_options, openai_tool_call_opened

CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


@pytest.mark.parametrize("fmt, expected", [
    (None, None),
    ({"type": "text"}, None),
    ({"type": "json_object"}, ANY_JSON_OBJECT),
    ({"type": "json_schema", "json_schema": {"name": "city", "schema": CITY}}, AnswerFormat(CITY, "city")),
    ({"type": "json_schema", "json_schema": {"name": "city", "description": "Where.", "schema": CITY, "strict": True}},
     AnswerFormat(CITY, "city", "Where.")),
    ({"type": "json_schema", "json_schema": {"schema": CITY, "strict": False}}, AnswerFormat(CITY, "response")),
])
def test_every_response_format_becomes_the_engines_answer_format(fmt, expected):
    assert answer_format_from_openai(fmt) == expected


def test_json_object_is_enforced_but_not_described_and_a_schema_is_both():
    assert ANY_JSON_OBJECT.schema == {"type": "object"} and not ANY_JSON_OBJECT.shown
    assert answer_format_from_openai({"type": "json_schema", "json_schema": {"schema": CITY}}).shown


@pytest.mark.parametrize("fmt, words", [
    ("json", "response_format must be"),
    ({"type": "xml"}, "response_format must be"),
    ({"type": "json_schema"}, "response_format must be"),
    ({"type": "json_schema", "json_schema": {"name": "x"}}, "response_format.json_schema.schema"),
    ({"type": "json_schema", "json_schema": {"name": "x", "schema": "{}"}}, "response_format.json_schema.schema"),
])
def test_a_bad_shape_is_one_sentence(fmt, words):
    with pytest.raises(ValueError, match=words.replace(".", r"\.")):
        answer_format_from_openai(fmt)


def test_engine_options_hand_the_engine_its_own_type_under_its_own_name():
    options = engine_options({"tools": None, "tool_choice": None,
                              "response_format": {"type": "json_schema", "json_schema": {"name": "city", "schema": CITY}}})
    assert options == {"answer_format": AnswerFormat(CITY, "city")}
    assert engine_options({"response_format": None}) == {}


def test_a_reply_s_calls_are_the_engines_tool_calls_and_only_the_wire_adds_an_id():
    """One shape of a call: ReplyReader keeps engine.tools.ToolCall (as streamed), and the OpenAI
    entries (whole and as the first streamed delta) come from openai_format, with the wire's id."""
    from engine.events import MessageEnd, MessageStart, Stop, TextDelta, ToolCall
    from engine.tools import function_call
    from server.chat_api import ChatCompletion
    from server.reply import ReplyReader

    reader = ReplyReader()
    reader.feed(MessageStart("assistant", "commentary", "functions.add", "<|constrain|>json"))
    for text in ('{"a": ', '1}'):
        reader.feed(TextDelta("commentary", text))
    reader.feed(MessageEnd("commentary"))
    reader.feed(Stop("call"))
    assert reader.calls == [function_call("add", '{"a": 1}')] and type(reader.calls[0]) is ToolCall
    call_id = reader.call_ids[0]
    assert call_id.startswith("call_") and len(set(reader.call_ids)) == 1
    message = ChatCompletion("m", reader, lambda _: 0).whole()["choices"][0]["message"]
    assert message["tool_calls"] == [{"id": call_id, "type": "function",
                                      "function": {"name": "add", "arguments": '{"a": 1}'}}]
    assert openai_tool_call_opened(reader.calls[0], call_id, 0) == {
        "index": 0, "id": call_id, "type": "function", "function": {"name": "add", "arguments": ""}}
