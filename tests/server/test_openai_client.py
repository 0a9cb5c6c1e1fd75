"""The local server as clients meet it: the official openai package against a real server process
running the demo model, checked against the engine called directly on the same conversation."""

from __future__ import annotations

import threading

import httpx
import openai
import pytest

from models.registry import demo_folder

QUESTION = "What is 486 + 357?"
HARMONY_MARKERS = ("<|", "|>", "analysis", "final", "commentary", "assistant<")


@pytest.fixture(scope="module")
def direct():
    """The engine itself, in this process: what the server must return (the demo decodes greedily)."""
    from engine import open_chat

    chat = open_chat(demo_folder(), context_length=2048)

    def reply(messages, effort="medium", developer=None):
        parts = {"analysis": "", "final": ""}
        from engine.harmony import TextDelta

        for ev in chat.reply(messages, effort=effort, developer=developer,
                                     sampling=chat.sampling(0.0), max_tokens=1024):
            if isinstance(ev, TextDelta):
                parts[ev.channel] = parts.get(ev.channel, "") + ev.text
        return parts

    return reply


def assert_clean(text: str) -> None:
    for marker in HARMONY_MARKERS:
        assert marker not in text, f"harmony leaked into content: {marker!r} in {text!r}"


def test_models_and_health(demo_server):
    client = demo_server.client()
    assert [m.id for m in client.models.list().data] == ["demo"]
    assert demo_server.health()["status"] == "ok"


def test_chat_completion_keeps_reasoning_apart_and_matches_the_engine(demo_server, direct):
    client = demo_server.client()
    got = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": QUESTION}],
                                         reasoning_effort="high")
    want = direct([{"role": "user", "content": QUESTION}], effort="high")
    message = got.choices[0].message
    assert message.content == want["final"] and "843" in message.content
    assert_clean(message.content)
    extra = message.model_extra
    assert extra["reasoning"] == extra["reasoning_content"] == want["analysis"] != ""
    assert got.choices[0].finish_reason == "stop"
    usage = got.usage
    assert usage.completion_tokens_details.reasoning_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_streaming_deltas_add_up_to_the_whole_answer(demo_server, direct):
    client = demo_server.client()
    stream = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": QUESTION}],
                                            reasoning_effort="high", stream=True,
                                            stream_options={"include_usage": True})
    content, reasoning, finish, usage = "", "", None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            content += choice.delta.content or ""
            reasoning += (choice.delta.model_extra or {}).get("reasoning") or ""
            finish = choice.finish_reason or finish
    want = direct([{"role": "user", "content": QUESTION}], effort="high")
    assert (content, reasoning) == (want["final"], want["analysis"])
    assert finish == "stop" and usage.completion_tokens > 0
    assert_clean(content)


def test_effort_changes_the_reasoning(demo_server):
    client = demo_server.client()
    ask = lambda effort: client.chat.completions.create(  # noqa: E731
        model="demo", messages=[{"role": "user", "content": QUESTION}], reasoning_effort=effort)
    low, high = ask("low"), ask("high")
    assert len(low.choices[0].message.model_extra["reasoning"]) < len(high.choices[0].message.model_extra["reasoning"])


def test_a_growing_conversation_reuses_the_cache(demo_server):
    client = demo_server.client()
    messages = [{"role": "user", "content": QUESTION}]
    first = client.chat.completions.create(model="demo", messages=messages)
    messages += [{"role": "assistant", "content": first.choices[0].message.content},
                 {"role": "user", "content": "Multiply 248 by 7."}]
    second = client.chat.completions.create(model="demo", messages=messages)
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached >= first.usage.prompt_tokens - 2  # all of turn one's prompt came from the cache


def test_responses_api_items_and_previous_response_id(demo_server, direct):
    client = demo_server.client()
    first = client.responses.create(model="demo", input=QUESTION, reasoning={"effort": "high"})
    kinds = [item.type for item in first.output]
    assert kinds == ["reasoning", "message"]
    want = direct([{"role": "user", "content": QUESTION}], effort="high")
    assert first.output_text == want["final"]
    assert first.output[0].content[0].text == want["analysis"]
    follow = client.responses.create(model="demo", input="Multiply 248 by 7.", previous_response_id=first.id,
                                     reasoning={"effort": "high"})
    history = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": want["final"]},
               {"role": "user", "content": "Multiply 248 by 7."}]
    assert follow.output_text == direct(history, effort="high")["final"]
    assert follow.usage.input_tokens_details.cached_tokens > first.usage.input_tokens // 2


def test_responses_streaming_events(demo_server):
    client = demo_server.client()
    events = list(client.responses.create(model="demo", input=QUESTION, stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    thought = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    assert text == events[-1].response.output_text and thought
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_stop_strings_end_the_answer(demo_server):
    client = demo_server.client()
    whole = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": QUESTION}])
    text = whole.choices[0].message.content
    cut = text[3:6]
    got = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": QUESTION}], stop=[cut])
    assert got.choices[0].message.content == text[:text.index(cut)]


def test_errors_have_openai_shape_and_status(demo_server):
    client = demo_server.client()
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "hi"}])
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "hi"}], temperature=5)
    assert e.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="demo", messages=[])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "hi"}],
                                       reasoning_effort="extreme")
    with pytest.raises(openai.APIStatusError) as e:  # 2048-token context; this is ~4,000 tokens
        client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "7 + 8 = 15. " * 1000}])
    assert e.value.status_code == 413 and e.value.code == "context_length_exceeded"
    raw = httpx.post(demo_server.url + "/v1/chat/completions", content=b"{not json", timeout=10)
    assert raw.status_code == 400 and raw.json()["error"]["type"] == "invalid_request_error"


def test_concurrent_clients_are_served_in_order_with_right_answers(demo_server, direct):
    questions = ["What is 486 + 357?", "Multiply 248 by 7.", "How many minutes are in 7 hours?"]
    answers: dict[str, str] = {}

    def ask(q):
        got = demo_server.client().chat.completions.create(model="demo", messages=[{"role": "user", "content": q}])
        answers[q] = got.choices[0].message.content

    threads = [threading.Thread(target=ask, args=(q,)) for q in questions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for q in questions:
        assert answers[q] == direct([{"role": "user", "content": q}])["final"]


def test_a_client_that_disconnects_cancels_its_generation(demo_server):
    before = demo_server.health()["served"]
    question = "Multiply 987 by 9."
    with httpx.stream("POST", demo_server.url + "/v1/chat/completions", timeout=60,
                      json={"model": "demo", "stream": True, "reasoning_effort": "high",
                            "messages": [{"role": "user", "content": question}]}) as response:
        lines = response.iter_lines()
        for _ in range(3):
            next(lines)
    health = _wait(lambda: demo_server.health(), lambda h: h["served"] > before)
    assert health["last_stop"] == "cancelled"
    whole = demo_server.client().chat.completions.create(
        model="demo", reasoning_effort="high", messages=[{"role": "user", "content": question}])
    assert health["last_generated_tokens"] < whole.usage.completion_tokens


def _wait(get, ok, timeout=30.0):
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = get()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


ADD = {"type": "function", "function": {
    "name": "add", "description": "Adds two whole numbers.",
    "parameters": {"type": "object", "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 999},
                                                     "b": {"type": "integer", "minimum": 0, "maximum": 999}},
                   "required": ["a", "b"], "additionalProperties": False}}}


def test_a_tool_call_round_trip(demo_server):
    """The demo model was not trained on tools, so tool_choice forces the call; the arguments are
    held to the schema by the engine's constrained decoding, and the result goes back as role tool."""
    import json

    import jsonschema

    client = demo_server.client()
    messages = [{"role": "user", "content": QUESTION}]
    first = client.chat.completions.create(model="demo", messages=messages, tools=[ADD],
                                           tool_choice={"type": "function", "function": {"name": "add"}})
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "add" and call.id.startswith("call_")
    jsonschema.validate(json.loads(call.function.arguments), ADD["function"]["parameters"])
    assert_clean(choice.message.content or "")
    messages += [{"role": "assistant", "content": choice.message.content, "tool_calls": [call.model_dump()],
                  "reasoning_content": choice.message.model_extra.get("reasoning")},
                 {"role": "tool", "tool_call_id": call.id, "content": "843"}]
    second = client.chat.completions.create(model="demo", messages=messages, tools=[ADD], max_tokens=200)
    assert second.choices[0].finish_reason in ("stop", "length", "tool_calls")
    assert_clean(second.choices[0].message.content or "")
    # the call and its result continue the first request's cache: only the result is new
    assert second.usage.prompt_tokens_details.cached_tokens >= first.usage.prompt_tokens


def test_a_structured_answer_parses_and_validates(demo_server):
    import json

    import jsonschema

    schema = {"type": "object", "properties": {"answer": {"type": "integer", "minimum": 0, "maximum": 2000}},
              "required": ["answer"], "additionalProperties": False}
    client = demo_server.client()
    got = client.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": QUESTION}], max_tokens=400,
        response_format={"type": "json_schema", "json_schema": {"name": "sum", "schema": schema}})
    jsonschema.validate(json.loads(got.choices[0].message.content), schema)
    assert got.choices[0].message.model_extra["reasoning"]  # the chain of thought stays free, and apart
    resp = client.responses.create(model="demo", input=QUESTION, max_output_tokens=400,
                                   text={"format": {"type": "json_schema", "name": "sum", "schema": schema}})
    jsonschema.validate(json.loads(resp.output_text), schema)


def test_bad_tools_are_a_400_with_one_sentence(demo_server):
    client = demo_server.client()
    bad = {"type": "function", "function": {"name": "x", "parameters": {"type": "nonsense"}}}
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "hi"}], tools=[bad])
    assert "JSON Schema" in e.value.message
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "hi"}], tools=[ADD],
                                       tool_choice={"type": "function", "function": {"name": "nope"}})
