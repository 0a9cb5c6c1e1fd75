"""OpenAI's wire format <-> the engine's own types: the one place the server translates.

    functions_from_openai(body["tools"])        -> [engine.tools.Tool]
    tool_choice_from_openai(body["tool_choice"]) -> engine.tools.ToolChoice
    messages_from_openai(body["messages"])      -> (developer instructions, harmony messages)
    answer_format_from_openai(body["response_format"]) -> engine.answer_format.AnswerFormat | None
    openai_tool_call(call, call_id)             <- engine.events.ToolCall, for a reply's `tool_calls`
    openai_tool_call_opened(call, call_id, i)  <- the same, as the first streamed delta of call i

OpenAI's `system` and `developer` messages become harmony's developer instructions; reasoning a
client sends back on an assistant message (`reasoning` or `reasoning_content`) becomes an analysis
message, so a tool loop keeps its chain of thought. Each ValueError is one sentence (a 400).
"""

from __future__ import annotations

import dataclasses
import secrets

import jsonschema

from engine.answer_format import ANY_JSON_OBJECT, AnswerFormat
from engine.tools import Tool, ToolCall, ToolChoice, function_call, tool_result_message
from server.errors import bad_request

TEXT_PARTS = ("text", "input_text", "output_text")


def text_of(content, param: str) -> str:
    """A message's content as text: a string, or a list of text parts (others: a 400 naming `param`)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for i, part in enumerate(content):
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, dict) and part.get("type") in TEXT_PARTS:
                out.append(str(part.get("text") or ""))
            else:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise bad_request(f"Content parts of type {kind!r} are not supported (this model reads text "
                                  "only); send text parts.", f"{param}[{i}]")
        return "".join(out)
    raise bad_request("A message's content must be a string or a list of text parts.", param)
def functions_from_openai(tools: list[dict] | None) -> list[Tool]:
    """OpenAI `tools=[{"type": "function", "function": {name, description, parameters}}]` -> Tools.

    Raises ValueError with one sentence when a definition is unusable (the server answers 400)."""
    out: list[Tool] = []
    seen: set[str] = set()
    for i, t in enumerate(tools or []):
        if not isinstance(t, dict):
            raise ValueError(f"tools[{i}] must be an object like {{\"type\": \"function\", \"function\": {{...}}}}.")
        fn = t.get("function") if t.get("type", "function") == "function" else None
        if not isinstance(fn, dict):
            raise ValueError(f"tools[{i}] must have type \"function\" and a \"function\" object; other tool types are not supported.")
        name = fn.get("name")
        if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-" for c in name):
            raise ValueError(f"tools[{i}].function.name must be letters, digits, _ or -, not {name!r}.")
        if name in seen:
            raise ValueError(f"Two tools are named {name!r}; tool names must be unique.")
        seen.add(name)
        params = fn.get("parameters")
        if params is not None:
            if not isinstance(params, dict):
                raise ValueError(f"tools[{i}].function.parameters must be a JSON Schema object.")
            try:
                jsonschema.validators.validator_for(params).check_schema(params)
            except jsonschema.SchemaError as e:
                raise ValueError(f"The parameters of tool {name!r} are not a valid JSON Schema: {e.message}.") from None
        out.append(Tool(name, fn.get("description") or "", params))
    return out


def tool_choice_from_openai(choice: str | dict | None) -> ToolChoice:
    """OpenAI `tool_choice` ("auto" | "none" | "required" | {"type": "function", "function": {"name"}})."""
    if choice is None or choice in ("auto", "none", "required"):
        return ToolChoice(choice or "auto")
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict) and choice["function"].get("name"):
        return ToolChoice("function", choice["function"]["name"])
    raise ValueError('tool_choice must be "auto", "none", "required" or {"type": "function", "function": {"name": ...}}.')


def answer_format_from_openai(fmt: dict | None) -> AnswerFormat | None:
    """OpenAI `response_format` -> the engine's AnswerFormat (None: free text).

    {"type": "text"} or None: free; {"type": "json_object"}: any JSON object (not described to the
    model); {"type": "json_schema", "json_schema": {"name"?, "description"?, "schema", "strict"?}}:
    that schema, described under its name. `strict` changes nothing: constrained decoding always
    holds the answer to the schema."""
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return ANY_JSON_OBJECT
    if kind == "json_schema" and isinstance(fmt.get("json_schema"), dict):
        spec = fmt["json_schema"]
        if not isinstance(spec.get("schema"), dict):
            raise ValueError("response_format.json_schema.schema must be a JSON Schema object.")
        return AnswerFormat(spec["schema"], spec.get("name") or "response", spec.get("description"))
    raise ValueError('response_format must be {"type": "text"}, {"type": "json_object"} or '
                     '{"type": "json_schema", "json_schema": {...}}.')


def new_call_id() -> str:
    """The id a client answers a call by (`tool_call_id`, `call_id`): the wire's, not the engine's."""
    return "call_" + secrets.token_hex(12)


def openai_tool_call(call: ToolCall, call_id: str) -> dict:
    """A ToolCall as an entry of an OpenAI assistant message's `tool_calls`."""
    return {"id": call_id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def openai_tool_call_opened(call: ToolCall, call_id: str, index: int) -> dict:
    """A streamed call's first delta: its index, id and name; its arguments follow in later deltas."""
    return {"index": index, **openai_tool_call(dataclasses.replace(call, arguments=""), call_id)}


def messages_from_openai(messages: list[dict]) -> tuple[str | None, list[dict]]:
    """OpenAI chat messages -> (developer instructions, harmony messages for render_prompt).

    system/developer text becomes the developer message's instructions; an assistant message's
    `reasoning_content` (or `reasoning`) its analysis, its `tool_calls` calls to functions.NAME;
    a `tool` message answers the call whose `tool_call_id` it names. ValueError: bad input."""
    instructions: list[str] = []
    out: list[dict] = []
    names: dict[str, str] = {}  # tool_call_id -> function name
    for i, m in enumerate(messages):
        role, content = m.get("role"), text_of(m.get("content"), f"messages[{i}].content")
        if role in ("system", "developer"):
            instructions.append(content)
        elif role == "user":
            out.append({"role": "user", "content": content})
        elif role == "assistant":
            thinking = m.get("reasoning_content") or m.get("reasoning")
            if isinstance(thinking, str) and thinking:
                out.append({"role": "assistant", "channel": "analysis", "content": thinking})
            calls = m.get("tool_calls") or []
            if content:
                out.append({"role": "assistant", "channel": "commentary" if calls else "final", "content": content})
            for c in calls:
                fn = c.get("function") or {}
                if not fn.get("name"):
                    raise ValueError(f"messages[{i}].tool_calls needs a function name in every call.")
                names[c.get("id", "")] = fn["name"]
                out.append(function_call(fn["name"], fn.get("arguments") or "{}").message)
        elif role == "tool":
            name = names.get(m.get("tool_call_id", "")) or m.get("name")
            if not name:
                raise ValueError(f"messages[{i}] answers tool call {m.get('tool_call_id')!r}, which no earlier assistant message made.")
            out.append(tool_result_message(function_call(name), content))
        else:
            raise ValueError(f"messages[{i}].role must be system, developer, user, assistant or tool, not {role!r}.")
    return ("\n\n".join(t for t in instructions if t) or None), out


def engine_options(extra: dict) -> dict:
    """A request's tools, tool_choice and response_format as ChatSession.render takes them (the
    engine's Tool, ToolChoice and AnswerFormat; fields not sent are left out). ValueError: one
    sentence (a 400)."""
    out = {k: v for k, v in extra.items() if v is not None}
    if "tools" in out:
        out["tools"] = functions_from_openai(out["tools"])
    if "tool_choice" in out and not isinstance(out["tool_choice"], ToolChoice):  # web_search forces its own
        out["tool_choice"] = tool_choice_from_openai(out["tool_choice"])
    if "response_format" in out:
        out["answer_format"] = answer_format_from_openai(out.pop("response_format"))
    return out
