"""The developer's own functions (Settings > Developer): name, description, JSON Schema.

They are offered to the model with every request; when the model calls one, the app shows the
call and the user types its result. Checked when saved, with one sentence per problem, so a bad
schema never reaches the engine.
"""
from __future__ import annotations

import json
import re

import jsonschema

from engine.answer_format import AnswerFormat

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_function(name: str, description: str, schema_text: str, taken: set[str] = frozenset()) -> tuple[dict | None, str]:
    """({"name", "description", "parameters"}, "") when valid, else (None, one sentence)."""
    name = name.strip()
    if not NAME.match(name):
        return None, "The name may use only letters, digits, _ and - (at most 64), like get_weather."
    if name in taken:
        return None, f"There is already a function named {name}; choose another name."
    parameters = None
    if schema_text.strip():
        try:
            parameters = json.loads(schema_text)
        except json.JSONDecodeError as e:
            return None, f"The JSON Schema is not valid JSON ({e.msg}, line {e.lineno} column {e.colno})."
        if not isinstance(parameters, dict):
            return None, 'The JSON Schema must be an object, like {"type": "object", "properties": {...}}.'
        try:
            jsonschema.validators.validator_for(parameters).check_schema(parameters)
        except jsonschema.SchemaError as e:
            return None, f"The JSON Schema is not valid{_where(e)}: {_what(e)}."
        if parameters.get("type", "object") != "object":
            return None, 'A function takes an object of arguments: the schema\'s "type" must be "object".'
    return {"name": name, "description": description.strip(), "parameters": parameters}, ""


def engine_tools(functions: list[dict]) -> list:
    """Saved functions as the engine's engine.tools.Tool (invalid entries skipped)."""
    from engine.tools import Tool   # no MLX: the engine's plain types

    out = []
    for f in functions or []:
        checked, problem = check_function(str(f.get("name", "")), str(f.get("description", "")),
                                          json.dumps(f["parameters"]) if f.get("parameters") is not None else "")
        if checked is not None:
            out.append(Tool(checked["name"], checked["description"], checked["parameters"]))
    return out


def check_answer_schema(schema_text: str) -> tuple[dict | None, str]:
    """The JSON Schema every final answer must follow ("" = free answers): (schema, "") or (None, one sentence)."""
    if not schema_text.strip():
        return None, ""
    try:
        schema = json.loads(schema_text)
    except json.JSONDecodeError as e:
        return None, f"The answer format is not valid JSON ({e.msg}, line {e.lineno} column {e.colno})."
    if not isinstance(schema, dict):
        return None, 'The answer format must be a JSON Schema object, like {"type": "object", ...}.'
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as e:
        return None, f"The answer format is not a valid JSON Schema{_where(e)}: {_what(e)}."
    return schema, ""


def answer_format(schema_text: str) -> AnswerFormat | None:
    """The engine's answer format for the saved answer schema (None when answers are free)."""
    schema, _ = check_answer_schema(schema_text)
    return None if schema is None else AnswerFormat(schema, name="answer")


TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")


def _where(e: jsonschema.SchemaError) -> str:
    where = "/".join(str(p) for p in e.absolute_path)
    return f" at {where}" if where else ""


def _what(e: jsonschema.SchemaError) -> str:
    """jsonschema's message, with the common slip (a misspelt type) said plainly."""
    path = list(e.absolute_path)
    if path and path[-1] == "type" and isinstance(e.instance, str):
        return f"{e.instance!r} is not a type; use one of {', '.join(TYPES)}"
    return e.message
