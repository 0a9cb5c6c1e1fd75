"""MCP tools as harmony functions: a name that is unique and valid, and a schema the model can read.

A server's tool `create_issue` on server "github" becomes `functions.github__create_issue` in the
developer message, next to the user's own functions, rendered by engine.tools exactly as
openai-harmony renders functions. The `functions` namespace is the one gpt-oss was trained to call
functions in (and the one our call checking, constrained arguments and forced calls know); the
server's name in front keeps two servers' `search` apart. Names keep to [A-Za-z0-9_-] and 64
characters (what the OpenAI API and most clients accept): anything else is replaced, and a short
hash of the original name is added only when that replacement or a cut made two names meet, so a
tool's name never depends on which server answered first.

Schemas are what the server listed, made easier to read: local `$ref`s inlined (pydantic servers
put every nested model in `$defs`, which harmony shows as `any`), `Optional[X]` as `X | null`,
pydantic's automatic titles dropped, and no keys beyond the listed ones unless the schema says
otherwise. The result is still a JSON Schema that the engine checks the model's arguments against
(and constrains them by).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import jsonschema

from engine.tools import Tool

MAX_NAME = 64
SEPARATOR = "__"
MAX_DESCRIPTION = 2000        # characters of a tool's description shown to the model
_INVALID = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class McpTool:
    """One tool of one server, as the model sees it (`function`) and as the server knows it (`tool`)."""

    server: str
    tool: str
    function: str                 # the harmony function name: "github__create_issue"
    description: str
    parameters: dict | None       # None: takes no arguments

    def engine_tool(self) -> Tool:
        return Tool(self.function, self.description, self.parameters)


def slug(text: str) -> str:
    return _INVALID.sub("_", text).strip("_") or "tool"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:6]


def function_names(server: str, tools: list[str], taken: set[str] = frozenset()) -> dict[str, str]:
    """{tool name: function name} for one server's tools, unique among themselves and `taken`."""
    prefix = slug(server)
    plain = {t: f"{prefix}{SEPARATOR}{slug(t)}" for t in tools}
    counts: dict[str, int] = {}
    for name in plain.values():
        counts[name] = counts.get(name, 0) + 1
    out = {}
    for tool, name in plain.items():
        if len(name) > MAX_NAME or counts[name] > 1 or name in taken:
            suffix = "_" + _short_hash(f"{server}\0{tool}")
            name = name[:MAX_NAME - len(suffix)] + suffix
        out[tool] = name
    return out


def model_schema(schema) -> tuple[dict | None, str]:
    """A tool's inputSchema -> (parameters for the model, "") or (None, why it can't be used).

    None parameters with no problem: the tool takes no arguments."""
    if schema is None:
        return None, ""
    if not isinstance(schema, dict):
        return None, "its input schema is not a JSON object"
    if schema.get("type", "object") != "object":
        return None, 'its input schema is not of type "object"'
    defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    cleaned = _clean(schema, defs)
    cleaned.pop("$schema", None)
    cleaned.pop("title", None)
    cleaned.setdefault("type", "object")
    # The model is shown only the listed properties; a key it makes up is a slip (constrained
    # decoding would otherwise let a weak model write one endless made-up key). A schema that
    # says what extra keys may be keeps its say.
    cleaned.setdefault("additionalProperties", False)
    try:
        jsonschema.validators.validator_for(cleaned).check_schema(cleaned)
    except jsonschema.SchemaError as e:
        return None, f"its input schema is not valid ({e.message})"
    except Exception:      # a hostile schema can break the validator itself (recursion, odd types)
        return None, "its input schema is not valid"
    if not cleaned.get("properties") and not cleaned.get("required"):
        return None, ""
    return cleaned, ""


def _clean(node, defs: dict, refs: tuple = ()):
    """`refs`: the $defs being inlined around this node (a recursive model stops at "any")."""
    if isinstance(node, list):
        return [_clean(v, defs, refs) for v in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(("#/$defs/", "#/definitions/")):
        name = ref.split("/")[-1]
        rest = {k: v for k, v in node.items() if k != "$ref"}
        if name not in defs or name in refs or len(refs) >= 6:
            return _clean(rest, defs, refs)
        return _clean({**defs[name], **rest}, defs, refs + (name,))
    out = {}
    for key, value in node.items():
        if key in ("$defs", "definitions"):
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _property(name, prop, defs, refs) for name, prop in value.items()}
        else:
            out[key] = _clean(value, defs, refs)
    any_of = out.get("anyOf")
    if _disjoint_types(any_of):
        out.pop("anyOf")
        other = [v for v in any_of if v.get("type") != "null"]
        if len(any_of) == 2 and len(other) == 1 and set(other[0]) <= {"type", "format"}:
            out["type"] = [other[0]["type"], "null"]       # harmony shows "string | null"
        else:
            out["oneOf"] = any_of      # the same values when the types can't overlap; harmony shows oneOf
    return out


def _disjoint_types(variants) -> bool:
    if not isinstance(variants, list) or len(variants) < 2 or not all(isinstance(v, dict) for v in variants):
        return False
    kinds = [v.get("type") for v in variants]
    return (all(isinstance(k, str) for k in kinds) and len(set(kinds)) == len(kinds)
            and not {"number", "integer"} <= set(kinds))


def _property(name: str, prop, defs: dict, refs: tuple):
    prop = _clean(prop, defs, refs)
    if isinstance(prop, dict) and isinstance(prop.get("title"), str) and _auto_title(name) == prop["title"]:
        prop = {k: v for k, v in prop.items() if k != "title"}   # pydantic's "Max Results" for max_results
    return prop


def _auto_title(name: str) -> str:
    return " ".join(part.capitalize() for part in name.replace("-", "_").split("_") if part)


def short_description(text) -> str:
    text = text if isinstance(text, str) else ""
    return text if len(text) <= MAX_DESCRIPTION else text[:MAX_DESCRIPTION - 1].rstrip() + "…"
