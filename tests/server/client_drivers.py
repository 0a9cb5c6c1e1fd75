"""The six OpenAI clients of issue 27, each asking for a structured answer the way its docs say, in
the mode that sends an answer format (json_schema / json_object) rather than a tool call, plus
pydantic-ai's default (a tool) so that what it sends is on record too.

A driver is `drive(url, model, question, max_tokens)` and returns the client's parsed answer or
raises the client's own error; tests/server/test_client_schemas.py records what reached the server."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

API_KEY = "unused"  # the local server takes any key; clients insist on one


@dataclass(frozen=True)
class Driver:
    client: str
    mode: str
    api: str  # "chat" | "responses": the endpoint the client posts to
    drive: Callable


def openai_chat_parse(url, model, question, max_tokens):
    import openai

    client = openai.OpenAI(base_url=url + "/v1", api_key=API_KEY, max_retries=0)
    got = client.chat.completions.parse(model="demo", messages=[{"role": "user", "content": question}],
                                        response_format=model, max_completion_tokens=max_tokens, temperature=0)
    return got.choices[0].message.parsed


def openai_responses_parse(url, model, question, max_tokens):
    import openai

    client = openai.OpenAI(base_url=url + "/v1", api_key=API_KEY, max_retries=0)
    got = client.responses.parse(model="demo", input=question, text_format=model,
                                 max_output_tokens=max_tokens, temperature=0)
    if got.output_parsed is None:  # the client raises nothing for an unfinished answer: say why
        raise IncompleteResponse(f"status {got.status}: {got.incomplete_details}")
    return got.output_parsed


class IncompleteResponse(Exception):
    """responses.parse gave no parsed answer (openai returns None when the response is incomplete)."""


def agents_output_type(url, model, question, max_tokens):
    import openai
    from agents import Agent, ModelSettings, OpenAIResponsesModel, Runner, set_tracing_disabled

    set_tracing_disabled(True)  # no upload of traces to OpenAI
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=API_KEY, max_retries=0)
    agent = Agent(name="answer", model=OpenAIResponsesModel("demo", client), output_type=model,
                  model_settings=ModelSettings(max_tokens=max_tokens, temperature=0))
    return Runner.run_sync(agent, question).final_output


def llm_schema(url, model, question, max_tokens):
    """llm's Python API with our server registered as an OpenAI-compatible model in a temporary
    LLM_USER_PATH (its extra-openai-models.yaml), so the user's own llm setup is left alone."""
    with tempfile.TemporaryDirectory(prefix="llm-user-") as folder:
        Path(folder, "extra-openai-models.yaml").write_text(
            f"- model_id: demo\n  model_name: demo\n  api_base: {url}/v1\n  supports_schema: true\n")
        return _llm_in(folder, model, question, max_tokens)


def _llm_in(folder, model, question, max_tokens):
    import llm

    old = os.environ.get("LLM_USER_PATH")
    os.environ["LLM_USER_PATH"] = folder
    try:
        reply = llm.get_model("demo").prompt(question, schema=model, key=API_KEY,
                                             max_tokens=max_tokens, temperature=0)
        return model.model_validate_json(reply.text())
    finally:
        if old is None:
            os.environ.pop("LLM_USER_PATH", None)
        else:
            os.environ["LLM_USER_PATH"] = old


def langchain(method):
    def drive(url, model, question, max_tokens):
        from langchain_openai import ChatOpenAI

        chat = ChatOpenAI(base_url=url + "/v1", api_key=API_KEY, model="demo", max_tokens=max_tokens,
                          temperature=0, max_retries=0)
        kw = {"method": method} if method else {}
        return chat.with_structured_output(model, **kw).invoke(question)
    return drive


def pydantic_ai(native: bool):
    def drive(url, model, question, max_tokens):
        from pydantic_ai import Agent, NativeOutput
        from pydantic_ai.models.openai import OpenAIChatModel
        from pydantic_ai.providers.openai import OpenAIProvider

        chat = OpenAIChatModel("demo", provider=OpenAIProvider(base_url=url + "/v1", api_key=API_KEY))
        agent = Agent(chat, output_type=NativeOutput(model) if native else model, retries=0,
                      model_settings={"max_tokens": max_tokens, "temperature": 0})
        return agent.run_sync(question).output
    return drive


def instructor_mode(mode_name):
    def drive(url, model, question, max_tokens):
        import instructor
        import openai

        mode = getattr(instructor.Mode, mode_name)
        client = instructor.from_openai(openai.OpenAI(base_url=url + "/v1", api_key=API_KEY, max_retries=0),
                                        mode=mode)
        return client.chat.completions.create(model="demo", messages=[{"role": "user", "content": question}],
                                              response_model=model, max_retries=0, max_tokens=max_tokens,
                                              temperature=0)
    return drive


DRIVERS = [
    Driver("openai", "chat.completions.parse", "chat", openai_chat_parse),
    Driver("openai", "responses.parse", "responses", openai_responses_parse),
    Driver("openai-agents", "output_type", "responses", agents_output_type),
    Driver("llm", "schema", "chat", llm_schema),
    Driver("langchain-openai", "with_structured_output", "chat", langchain(None)),
    Driver("langchain-openai", "json_mode", "chat", langchain("json_mode")),
    Driver("pydantic-ai", "NativeOutput", "chat", pydantic_ai(native=True)),
    Driver("pydantic-ai", "ToolOutput (default)", "chat", pydantic_ai(native=False)),
    Driver("instructor", "JSON_SCHEMA", "chat", instructor_mode("JSON_SCHEMA")),
    Driver("instructor", "JSON", "chat", instructor_mode("JSON")),
]
