"""A reply the engine stopped as malformed never looks like success on the wire: a 502 in OpenAI's
shape before a stream starts, an error frame the openai client raises on after it started, in both
APIs. And the probe's structured answer (a nested schema the demo model once left unanswered with a
200 and empty content) now comes back as JSON that validates."""

from __future__ import annotations

import asyncio
import json

import httpx
import jsonschema
import openai
import pytest

from server.app import create_app
from server.runner import EngineRunner

from one_answer import OneAnswerSession

MALFORMED = "malformed: message header never ended"  # what the parser reports


@pytest.fixture(scope="module")
def broken_app():
    runner = EngineRunner(opener=lambda: OneAnswerSession("Half an ans", MALFORMED)).start()
    runner.loaded.wait(10)
    yield create_app(runner, "broken")
    runner.stop()


def _client(app) -> openai.AsyncOpenAI:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost")
    return openai.AsyncOpenAI(base_url="http://localhost/v1", api_key="unused", max_retries=0, http_client=http)


async def _chat(client, stream):
    got = await client.chat.completions.create(model="broken", messages=[{"role": "user", "content": "hi"}],
                                               stream=stream)
    if stream:
        async for _ in got:
            pass


async def _responses(client, stream):
    got = await client.responses.create(model="broken", input="hi", stream=stream)
    if stream:
        async for _ in got:
            pass


@pytest.mark.parametrize("api", [_chat, _responses], ids=["chat", "responses"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_malformed_stop_is_an_error_the_client_sees(broken_app, api, stream):
    with pytest.raises(openai.APIError) as e:
        asyncio.run(api(_client(broken_app), stream))
    assert "broke the chat format" in e.value.message
    if not stream:
        assert e.value.status_code == 502 and e.value.code == "invalid_model_output"


NESTED = {"type": "object", "additionalProperties": False, "required": ["city", "stats", "tags"], "properties": {
    "city": {"type": "string", "maxLength": 12},
    "stats": {"type": "object", "additionalProperties": False, "required": ["population", "rank"], "properties": {
        "population": {"type": "integer", "minimum": 0, "maximum": 100000000},
        "rank": {"type": "integer", "minimum": 1, "maximum": 10}}},
    "tags": {"type": "array", "maxItems": 3, "items": {"enum": ["old", "big", "coastal"]}}}}


def test_the_probes_structured_answer_is_json_not_an_empty_200(demo_server):
    client = demo_server.client()
    for stream in (False, True):
        got = client.chat.completions.create(
            model="demo", messages=[{"role": "user", "content": "Describe Lisbon."}], max_tokens=600, stream=stream,
            response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": NESTED}})
        text = "".join(c.choices[0].delta.content or "" for c in got if c.choices) if stream else \
            got.choices[0].message.content
        jsonschema.validate(json.loads(text), NESTED)
