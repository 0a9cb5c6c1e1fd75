"""OpenAI request bodies -> the engine's harmony conversation (and the bits of a reply back).

OpenAI's `system` and `developer` messages become harmony's developer instructions (the harmony
system message is the engine's own: identity, date, reasoning effort). Reasoning a client sends
back on an assistant message (`reasoning` or `reasoning_content`) becomes an analysis message, so a
tool loop keeps its chain of thought; the engine drops it again once a final answer ends the turn.
"""

from __future__ import annotations

import json

from server.errors import bad_request

EFFORTS = ("low", "medium", "high")


def text_of(content, param: str) -> str:
    """A message's content as text: a string, or a list of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for i, part in enumerate(content):
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, dict) and part.get("type") in ("text", "input_text", "output_text"):
                out.append(str(part.get("text") or ""))
            else:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise bad_request(f"Content parts of type {kind!r} are not supported (this model reads text "
                                  "only); send text parts.", f"{param}[{i}]")
        return "".join(out)
    raise bad_request("A message's content must be a string or a list of text parts.", param)


def chat_messages(messages) -> tuple[list[dict], str | None]:
    """Chat Completions `messages` -> (harmony messages, developer instructions)."""
    if not isinstance(messages, list) or not messages:
        raise bad_request("`messages` must be a non-empty list of messages.", "messages")
    instructions: list[str] = []
    out: list[dict] = []
    call_names: dict[str, str] = {}  # tool_call_id -> function name, to label tool results
    for i, m in enumerate(messages):
        param = f"messages[{i}]"
        if not isinstance(m, dict):
            raise bad_request("Each message must be an object with a role.", param)
        role = m.get("role")
        content = text_of(m.get("content"), f"{param}.content")
        if role in ("system", "developer"):
            instructions.append(content)
        elif role == "user":
            out.append({"role": "user", "content": content})
        elif role == "assistant":
            out += assistant_messages(m, content, param, call_names)
        elif role == "tool":
            call_id = m.get("tool_call_id")
            name = call_names.get(call_id) or m.get("name")
            if not name:
                raise bad_request("A tool message's tool_call_id must match a tool call of an earlier assistant "
                                  "message.", f"{param}.tool_call_id")
            out.append(tool_result(name, content))
        else:
            raise bad_request(f"Unknown message role {role!r}; use system, developer, user, assistant or tool.",
                              f"{param}.role")
    if not out:
        raise bad_request("The messages hold no user message to answer.", "messages")
    return out, "\n\n".join(t for t in instructions if t) or None


def assistant_messages(m: dict, content: str, param: str, call_names: dict) -> list[dict]:
    """One OpenAI assistant message -> harmony analysis / final / tool-call messages."""
    out = []
    reasoning = m.get("reasoning") or m.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        out.append({"role": "assistant", "channel": "analysis", "content": reasoning})
    calls = m.get("tool_calls") or []
    if not isinstance(calls, list):
        raise bad_request("`tool_calls` must be a list.", f"{param}.tool_calls")
    if content and calls:
        out.append({"role": "assistant", "channel": "commentary", "content": content})  # a preamble
    elif content or not calls:
        out.append({"role": "assistant", "channel": "final", "content": content})
    for j, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise bad_request("Each tool call needs a function with a name.", f"{param}.tool_calls[{j}]")
        call_names[call.get("id")] = fn["name"]
        out.append(tool_call(fn["name"], fn.get("arguments") or "{}"))
    return out


def tool_call(name: str, arguments: str) -> dict:
    """The harmony message of an assistant's call to a user function."""
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return {"role": "assistant", "channel": "commentary", "recipient": f"functions.{name}",
            "content_type": "json", "content": arguments}


def tool_result(name: str, output: str) -> dict:
    """The harmony message carrying a function's result back to the model."""
    return {"role": "tool", "name": f"functions.{name}", "content": output}


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
