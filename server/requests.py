"""What Chat Completions and Responses requests share: sampling fields, tools, formats, the model."""

from __future__ import annotations

from server.convert import number
from server.errors import APIError, bad_request
from server.runner import Job


def check_model(body: dict, model_id: str) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("`model` is required; GET /v1/models lists the one this server runs.", "model")
    if model != model_id:
        raise APIError(404, f"The model {model!r} does not exist here; this server runs {model_id!r}.",
                       "model", "model_not_found")


def sampling_job(body: dict, messages: list[dict], developer: str | None, effort: str,
                 max_tokens_keys: tuple[str, ...]) -> Job:
    """A Job with the request's sampling fields checked (OpenAI's ranges)."""
    max_tokens = None
    for key in max_tokens_keys:
        if body.get(key) is not None:
            max_tokens = number(body, key, None, 1, 1 << 30, integer=True)
    n = number(body, "n", 1, 1, 128, integer=True)
    if n != 1:
        raise bad_request("Only n=1 is supported: one model answers one request at a time.", "n")
    return Job(messages=messages, developer=developer, effort=effort,
               temperature=number(body, "temperature", None, 0, 2),
               top_p=number(body, "top_p", None, 0, 1) or None,  # None (or 0): the session decides
               seed=number(body, "seed", None, -(1 << 63), (1 << 63) - 1, integer=True),
               max_tokens=max_tokens)


def flat_tools(tools) -> list | None:
    """The Responses API's flat function tools ({"type": "function", "name", ...}) -> Chat's nested form."""
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise bad_request("`tools` must be a list of function tools.", "tools")
    nested = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise bad_request("Only tools of type \"function\" are supported.", f"tools[{i}]")
        fn = {k: tool[k] for k in ("name", "description", "parameters") if k in tool}
        nested.append({"type": "function", "function": fn})
    return nested


def text_format(fmt) -> dict | None:
    """The Responses API's `text.format` -> Chat's `response_format`."""
    if fmt is None or not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return fmt
    spec = {k: fmt[k] for k in ("name", "description", "schema", "strict") if k in fmt}
    return {"type": "json_schema", "json_schema": spec}


def tool_choice_of(value):
    """The Responses API names a forced function flat ({"type": "function", "name"}): nest it."""
    if isinstance(value, dict) and "name" in value and "function" not in value:
        return {"type": "function", "function": {"name": value["name"]}}
    return value
