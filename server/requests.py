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
               top_p=number(body, "top_p", 1.0, 0, 1) or 1.0,
               seed=number(body, "seed", None, -(1 << 63), (1 << 63) - 1, integer=True),
               max_tokens=max_tokens)


def function_tools(tools, tool_choice, param: str = "tools", flat: bool = False) -> list[dict]:
    """OpenAI function tools -> [{name, description, parameters}] (empty when tool_choice is none).

    Chat Completions nests the function ({"type": "function", "function": {...}}); the Responses
    API has it flat ({"type": "function", "name": ...}): `flat` says which.
    """
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise bad_request("`tools` must be a list of function tools.", param)
    out = []
    for i, tool in enumerate(tools):
        fn = tool if flat else (tool.get("function") if isinstance(tool, dict) else None)
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(fn, dict):
            raise bad_request("Only tools of type \"function\" are supported.", f"{param}[{i}]")
        name = fn.get("name")
        if not isinstance(name, str) or not name.replace("_", "a").replace("-", "a").isalnum():
            raise bad_request("A function's name must be letters, digits, _ or -.", f"{param}[{i}].name")
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(params, dict):
            raise bad_request("A function's parameters must be a JSON Schema object.", f"{param}[{i}].parameters")
        out.append({"name": name, "description": fn.get("description") or "", "parameters": params})
    if tool_choice in (None, "auto", "required"):
        return out
    if tool_choice == "none":
        return []
    chosen = tool_choice.get("function", tool_choice) if isinstance(tool_choice, dict) else None
    name = chosen.get("name") if isinstance(chosen, dict) else None
    picked = [t for t in out if t["name"] == name]
    if not picked:
        raise bad_request("`tool_choice` must be none, auto, required or one of the given functions.",
                          "tool_choice")
    return picked


def response_schema(fmt, param: str = "response_format") -> dict | None:
    """`response_format` -> the JSON Schema the answer must follow (None: free text)."""
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        spec = fmt.get("json_schema", fmt)  # Responses' text.format is flat
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise bad_request("A json_schema response format needs a `schema` object.", param)
        return schema
    raise bad_request("`response_format` type must be text, json_object or json_schema.", param)
