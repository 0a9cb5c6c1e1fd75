"""The Responses API's server-side state, as the openai client and the OpenAI Agents SDK use it: the
canonical tool loop sends only the function_call_output with previous_response_id, so the server
must remember the calls it made itself; GET and DELETE /v1/responses/{id}; store: false.
Against a real server process on the demo model; tool_choice forces the call (the demo was not
trained on tools), and constrained decoding holds its arguments to the schema."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest

from engine.events import Done, MessageEnd, MessageStart, Stop, TextDelta
from engine.generate import GenerationStats, SamplingParams
from engine.session import RenderedPrompt
from server.app import create_app
from server.runner import EngineRunner

ADD = {"type": "function", "name": "add", "description": "Adds two whole numbers.",
       "parameters": {"type": "object", "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 999},
                                                      "b": {"type": "integer", "minimum": 0, "maximum": 999}},
                      "required": ["a", "b"], "additionalProperties": False}}
QUESTION = "What is 486 + 357?"


def test_the_canonical_tool_loop_with_previous_response_id(demo_server):
    client = demo_server.client()
    first = client.responses.create(model="demo", input=QUESTION, tools=[ADD], max_output_tokens=300,
                                    tool_choice={"type": "function", "name": "add"})
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "add"
    args = json.loads(calls[0].arguments)
    # only the output goes back: the server knows which call it answers
    second = client.responses.create(model="demo", previous_response_id=first.id, tools=[ADD], max_output_tokens=200,
                                     input=[{"type": "function_call_output", "call_id": calls[0].call_id,
                                             "output": str(args["a"] + args["b"])}])
    assert second.status in ("completed", "incomplete") and second.previous_response_id == first.id
    assert second.usage.input_tokens_details.cached_tokens >= first.usage.input_tokens  # the cache carried on


def test_a_call_id_the_server_never_made_is_still_refused(demo_server):
    client = demo_server.client()
    first = client.responses.create(model="demo", input=QUESTION, max_output_tokens=100)
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model="demo", previous_response_id=first.id,
                                input=[{"type": "function_call_output", "call_id": "call_made_up", "output": "1"}])
    assert e.value.body["param"] == "input[0].call_id"


def test_get_and_delete_a_response(demo_server):
    client = demo_server.client()
    made = client.responses.create(model="demo", input=QUESTION, max_output_tokens=100)
    assert made.store is True
    got = client.responses.retrieve(made.id)
    assert got.id == made.id and got.output_text == made.output_text
    deleted = httpx.delete(f"{demo_server.url}/v1/responses/{made.id}", timeout=10)
    assert deleted.status_code == 200 and deleted.json() == {"id": made.id, "object": "response.deleted",
                                                             "deleted": True}
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError) as e:
        client.responses.create(model="demo", input="and then?", previous_response_id=made.id)
    assert e.value.body["param"] == "previous_response_id"


def test_store_false_keeps_nothing(demo_server):
    client = demo_server.client()
    made = client.responses.create(model="demo", input=QUESTION, max_output_tokens=100, store=False)
    assert made.store is False and made.output
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="demo", input="and then?", previous_response_id=made.id)


class AddingSession:
    """A scripted engine session: a call to add(486, 357) when the conversation doesn't end in a tool
    result, else the final answer naming that result. It records the conversations it was given,
    so the test sees what the server rebuilt from previous_response_id."""

    context_length = 4096

    def sampling(self, temperature=None, top_p=None, seed=None):  # the runner asks; a script ignores it
        return SamplingParams(temperature=0.0)

    def count_tokens(self, text):
        return len(text.split())

    def __init__(self):
        self.seen: list[list[dict]] = []

    def render(self, messages, **options):
        return RenderedPrompt(list(range(10 * len(messages))))

    def reply(self, messages, prompt=None, **kw):
        self.seen.append(list(messages))
        if messages[-1]["role"] == "tool":
            yield MessageStart("assistant", "final")
            yield TextDelta("final", f"The sum is {messages[-1]['content']}.")
            yield MessageEnd("final")
            yield Stop("return")
            reason = "return"
        else:
            yield MessageStart("assistant", "commentary", recipient="functions.add", content_type="<|constrain|>json")
            yield TextDelta("commentary", '{"a": 486, "b": 357}')
            yield MessageEnd("commentary")
            yield Stop("call")
            reason = "call"
        yield Done(GenerationStats(generated_tokens=5, stop_reason=reason), reason, 0, len(prompt.ids))


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "run_streamed"])
def test_an_openai_agents_loop_with_a_function_tool(streamed):
    """A real agent loop: the SDK calls the model, runs the tool, and sends only its output back with
    previous_response_id (auto_previous_response_id), then gets the final answer. The server is the
    real app and runner over a scripted session (the demo model answers nothing sensible after a tool)."""
    agents = pytest.importorskip("agents")
    agents.set_tracing_disabled(True)
    session = AddingSession()
    runner = EngineRunner(opener=lambda: session).start()
    runner.loaded.wait(10)
    app = create_app(runner, "adder")
    ran: list[tuple[int, int]] = []

    @agents.function_tool
    def add(a: int, b: int) -> int:
        """Adds two whole numbers."""
        ran.append((a, b))
        return a + b

    async def run():
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost")
        client = openai.AsyncOpenAI(base_url="http://localhost/v1", api_key="unused", max_retries=0, http_client=http)
        agent = agents.Agent(name="adder", instructions="Use the add tool for sums.", tools=[add],
                             model=agents.OpenAIResponsesModel(model="adder", openai_client=client))
        if not streamed:
            return await agents.Runner.run(agent, QUESTION, max_turns=4, auto_previous_response_id=True)
        result = agents.Runner.run_streamed(agent, QUESTION, max_turns=4, auto_previous_response_id=True)
        async for _ in result.stream_events():
            pass
        return result

    try:
        result = asyncio.run(run())
    finally:
        runner.stop()
    assert ran == [(486, 357)]
    assert result.final_output == "The sum is 843."
    assert len(result.raw_responses) == 2
    # the second request carried only the tool's output; the server put the question and its own call back
    second = session.seen[1]
    assert [m["role"] for m in second] == ["user", "assistant", "tool"]
    assert second[0]["content"] == QUESTION and second[-1]["content"] == "843"
