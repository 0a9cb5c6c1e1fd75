"""OpenAI request bodies -> the engine's harmony conversation (and the bits of a reply back).

server/openai_format.py does the conversion (messages_from_openai): OpenAI's `system` and
`developer` messages become harmony's developer instructions; reasoning a client sends back on an
assistant message (`reasoning` or `reasoning_content`) becomes an analysis message, so a tool loop
keeps its chain of thought, and the engine drops it once a final answer ends the turn. Here: the
checks that give a client a 400 with the field that is wrong.
"""

from __future__ import annotations

import json

from engine.tools import function_call, tool_result_message
from server.errors import bad_request
from server.openai_format import messages_from_openai, text_of  # noqa: F401 (text_of: re-exported)

EFFORTS = ("low", "medium", "high")


def chat_messages(messages) -> tuple[list[dict], str | None]:
    """Chat Completions `messages` -> (harmony messages, developer instructions)."""
    if not isinstance(messages, list) or not messages:
        raise bad_request("`messages` must be a non-empty list of messages.", "messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise bad_request("Each message must be an object with a role.", f"messages[{i}]")
        text_of(m.get("content"), f"messages[{i}].content")  # refuses image and audio parts in one sentence
    try:
        developer, out = messages_from_openai(messages)
    except ValueError as e:  # the engine's own sentence, naming the message
        raise bad_request(str(e), "messages") from None
    if not out:
        raise bad_request("The messages hold no user message to answer.", "messages")
    return out, developer


def tool_call(name: str, arguments) -> dict:
    """The harmony message of an assistant's call to a user function (Responses input items)."""
    return function_call(name, arguments if isinstance(arguments, str) else json.dumps(arguments)).message


def tool_result(name: str, output: str) -> dict:
    """The harmony message carrying a function's result back to the model."""
    return tool_result_message(function_call(name), output)


def effort_of(value, param: str) -> str:
    if value is None:
        return "medium"
    if value not in EFFORTS:
        raise bad_request(f"Reasoning effort must be low, medium or high, not {value!r}.", param)
    return value


def number(body: dict, key: str, default, lo: float, hi: float, integer: bool = False):
    """A numeric field of the body, checked against its range."""
    value = body.get(key, default)
    if value is None:
        return default
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not lo <= value <= hi:
        raise bad_request(f"`{key}` must be a{'n integer' if integer else ' number'} from {lo:g} to {hi:g}.", key)
    return value


def stop_strings(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or len(value) > 4 or not all(isinstance(s, str) and s for s in value):
        raise bad_request("`stop` must be a string or a list of up to 4 non-empty strings.", "stop")
    return value
