"""Tools in harmony: function definitions, the built-in python tool, calls and their results.

    tools = [Tool("get_weather", "Weather now", {"type": "object", ...})]
    for ev in session.reply(messages, tools=tools): ...   # a ToolCall when the model calls one
    messages += [call.message, tool_result_message(call, '{"temp": 20}')]

User functions are shown to the model as a TypeScript-like `namespace functions { ... }` block in
the developer message, rendered from their JSON Schemas exactly as openai-harmony renders them
(its quirks included: that text is what the model was trained on). The python tool is described
in the system message. A call's arguments are untrusted model output: they are parsed and
validated here, and a bad call becomes a ToolCall with `error` set, which the caller sends back
to the model as the tool's result so that it can try again. OpenAI's shapes of all this are the
server's business (server/openai_format.py): the engine speaks only these types.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal

import jsonschema

from engine.events import FUNCTIONS, ToolCall  # noqa: F401 (re-exported: the call is an event too)

PYTHON = "python"
BROWSER = "browser"  # the built-in browser: recipients are "browser.search", "browser.open", "browser.find"
JSON_CONTENT_TYPE = "<|constrain|>json"  # what a JSON function call says after its channel
PYTHON_DESCRIPTION = (
    "Use this tool to execute Python code in your chain of thought. The code will not be shown to the "
    "user. This tool should be used for internal reasoning, but not for code that is intended to be "
    "visible to the user (e.g. when creating plots, tables, or files).\n\n"
    "When you send a message containing Python code to python, it will be executed in a stateful "
    "Jupyter notebook environment. python will respond with the output of the execution or time out "
    "after 120.0 seconds. The drive at '/mnt/data' can be used to save and persist user files. "
    "Internet access for this session is UNKNOWN. Depends on the cluster."
)
FUNCTIONS_CHANNEL_LINE = "Calls to these tools must go to the commentary channel: 'functions'."
# What a tool answers when the user says no (the window's "Don't run"; the demo model learnt it).
DECLINED_CODE = "The user chose not to run this code. Continue without running it, or ask the user."
DECLINED_CALL = "The user declined to answer this call. Continue without it, or ask the user."


@dataclass(frozen=True)
class Tool:
    """A user function: its name, what it does, and the JSON Schema of its arguments object."""

    name: str
    description: str = ""
    parameters: dict | None = None  # None: the function takes no arguments


@dataclass(frozen=True)
class ToolChoice:
    """Which calls the model may make: "auto" (any or none), "none", "required" (some function)
    or a function's name (that one). Mirrors the OpenAI API's tool_choice."""

    mode: str = "auto"
    name: str | None = None


@dataclass(frozen=True)
class ToolResult:
    """What a tool answered to a call (its output as text, e.g. JSON or the python cell's output)."""

    call: ToolCall
    output: str

    @property
    def message(self) -> dict:
        """The message to append after `call.message`: `<|start|>functions.x to=assistant<|channel|>...`."""
        return {"role": "tool", "name": self.call.recipient, "channel": self.call.channel, "content": self.output}


def function_call(name: str, arguments: str = "{}") -> ToolCall:
    """A call to the user function `name` with JSON `arguments`, as harmony renders it."""
    return ToolCall(f"{FUNCTIONS}.{name}", arguments, content_type=JSON_CONTENT_TYPE)


def tool_result_message(call: ToolCall, output: str) -> dict:
    """The tool's answer to `call`, as a message to append after `call.message`."""
    return ToolResult(call, output).message


# ---------------------------------------------------------------- validating a call


def check_call(recipient: str, arguments: str, tools: dict[str, Tool], channel: str = "commentary",
               content_type: str | None = None, recipient_after_channel: bool = False,
               browser: bool = False) -> ToolCall:
    """Parse and validate a call the model made; problems become `error`, never an exception.
    browser: the built-in browser is offered (otherwise a call to it is an error the model reads)."""
    common = dict(recipient=recipient, arguments=arguments, channel=channel, content_type=content_type,
                  recipient_after_channel=recipient_after_channel)
    if recipient == PYTHON:
        return ToolCall(**common)
    if recipient.startswith(BROWSER + ".") and browser:  # the built-in browser checks its own typed arguments
        from engine.browser.calls import check_browser_call

        parsed, error = check_browser_call(recipient, arguments)
        return ToolCall(**common, parsed=parsed, error=error)
    name = recipient.split(".", 1)[1] if recipient.startswith(FUNCTIONS + ".") else None
    tool = tools.get(name) if name else None
    if tool is None:
        known = ", ".join(sorted(tools)) or "none"
        return ToolCall(**common, error=f"There is no tool {recipient!r}; the available functions are: {known}.")
    text = arguments.strip()
    if not text and tool.parameters is None:
        return ToolCall(**common, parsed={})
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        return ToolCall(**common, error=f"The arguments are not valid JSON ({e.msg} at character {e.pos}); send a JSON object.")
    if tool.parameters is not None:
        problem = jsonschema.exceptions.best_match(jsonschema.validators.validator_for(tool.parameters)(tool.parameters).iter_errors(value))
        if problem is not None:
            where = "/".join(str(p) for p in problem.absolute_path) or "the arguments"
            return ToolCall(**common, parsed=value, error=f"The arguments don't match the schema of {name}: {where}: {problem.message}.")
    return ToolCall(**common, parsed=value)


# ---------------------------------------------------------------- rendering the definitions


def tools_section(namespaces: list[tuple[str, str | None, list[Tool]]]) -> str:
    """`# Tools` followed by one `## name` section per namespace (name, description, functions)."""
    sections = ["# Tools"]
    for name, description, functions in namespaces:
        lines = [f"## {name}\n"]
        for line in _rust_lines(description or ""):
            lines.append(f"// {line}" if functions else line)
        if functions:
            lines.append(f"namespace {name} {{\n")
            for tool in functions:
                lines += [f"// {line}" for line in _rust_lines(tool.description)]
                if tool.parameters is not None:
                    lines.append(f"type {tool.name} = (_: {schema_to_typescript(tool.parameters, '')}) => any;\n")
                else:
                    lines.append(f"type {tool.name} = () => any;\n")
            lines.append(f"}} // namespace {name}")
        sections.append("\n".join(lines))
    return "\n\n".join(sections)


def schema_to_typescript(schema: dict, indent: str = "") -> str:
    """A JSON Schema as the TypeScript-like type openai-harmony shows the model (same text)."""
    if isinstance(schema.get("oneOf"), list):
        return _one_of_inline(schema["oneOf"], indent)
    kind = schema.get("type")
    if isinstance(kind, list):
        names = ["number" if t == "integer" else t for t in kind if isinstance(t, str)]
        if names:
            return " | ".join(names)
        kind = None
    if not isinstance(kind, str):
        return "any"
    if kind == "object":
        return _object(schema, indent)
    if kind == "string":
        values = schema.get("enum")
        strings = [f'"{v}"' for v in values if isinstance(v, str)] if isinstance(values, list) else []
        return " | ".join(strings) if strings else "string"
    if kind in ("number", "integer"):
        return "number"
    if kind == "boolean":
        return "boolean"
    if kind == "array":
        return f"{schema_to_typescript(schema['items'], indent)}[]" if "items" in schema else "Array<any>"
    return "any"


def _object(schema: dict, indent: str) -> str:
    out = ""
    if isinstance(schema.get("description"), str):
        out += f"{indent}// {schema['description']}\n"
    out += "{\n"
    props = schema.get("properties")
    required = {r for r in schema.get("required", []) if isinstance(r, str)} if isinstance(schema.get("required"), list) else set()
    for key, val in (props.items() if isinstance(props, dict) else ()):
        val = val if isinstance(val, dict) else {}
        if isinstance(val.get("title"), str):
            out += f"{indent}// {val['title']}\n{indent}//\n"
        if "oneOf" not in val and isinstance(val.get("description"), str):
            out += f"{indent}// {val['description']}\n"
        examples = val.get("examples")
        if isinstance(examples, list) and examples:
            out += f"{indent}// Examples:\n"
            out += "".join(f'{indent}// - "{ex}"\n' for ex in examples if isinstance(ex, str))
        optional = "" if key in required else "?"
        if isinstance(val.get("oneOf"), list):
            out += _one_of_property(key, optional, val, indent)
            continue
        text = schema_to_typescript(val, indent + "    ")
        if val.get("nullable") is True and "null" not in text:
            text += " | null"
        out += f"{indent}{key}{optional}: {text},"
        if "oneOf" not in val and "default" in val:
            out += f" // default: {_default_text(val)}"
        out += "\n"
    return out + f"{indent}}}"


def _one_of_inline(variants: list, indent: str) -> str:
    out = ""
    for variant in variants:
        variant = variant if isinstance(variant, dict) else {}
        out += f"\n{indent} | " + _variant_type(variant, indent)
        comments = [variant["description"]] if isinstance(variant.get("description"), str) else []
        if "default" in variant:
            comments.append(f"default: {_default_text(variant, quote_enum=True)}")
        if comments:
            out += f" // {' '.join(comments)}"
    return out


def _one_of_property(key: str, optional: str, val: dict, indent: str) -> str:
    variants = [v if isinstance(v, dict) else {} for v in val["oneOf"]]
    desc = val.get("description") if isinstance(val.get("description"), str) else None
    skip = desc is not None and bool(variants) and variants[0].get("description") == desc
    out, desc_above = "", False
    if desc is not None and not skip:
        out += f"{indent}// {desc}\n"
        desc_above = True
    if "default" in val:
        out += f"{indent}// default: {_default_text(val)}\n"
    out += f"{indent}{key}{optional}:\n"
    for i, variant in enumerate(variants):
        out += f"{indent} | " + _variant_type(variant, indent)
        comments = []
        if not (i == 0 and desc_above) and isinstance(variant.get("description"), str) and variant["description"] != desc:
            comments.append(variant["description"])
        if "default" in variant:
            comments.append(f"default: {_default_text(variant)}")
        if comments:
            out += f" // {' '.join(comments)}"
        out += "\n"
    return out + f"{indent},\n"


def _variant_type(variant: dict, indent: str) -> str:
    text = schema_to_typescript(variant, indent + "   ")
    if variant.get("nullable") is True and "null" not in text:
        text += " | null"
    return text


def _default_text(schema: dict, quote_enum: bool = False) -> str:
    """A default as openai-harmony prints it: strings quoted unless the schema is an enum
    (inline oneOf variants quote enum strings too, through serde's JSON display)."""
    value = schema["default"]
    if isinstance(value, str):
        is_enum = isinstance(schema.get("enum"), list) and bool(schema["enum"])
        return json_display(value) if (is_enum and quote_enum) else (value if is_enum else f'"{value}"')
    return json_display(value)


def json_display(value) -> str:
    """Compact JSON as Rust's serde_json prints a Value (floats in ryu's shortest form)."""
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return json.dumps(value)
    if isinstance(value, float):
        return _ryu(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(json_display(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json_display(str(k))}:{json_display(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def _ryu(x: float) -> str:
    """A finite float as ryu's `format64` writes it (serde_json's float display)."""
    if not math.isfinite(x):
        return "null"
    if x == 0:
        return "-0.0" if math.copysign(1, x) < 0 else "0.0"
    _, digit_tuple, exponent = Decimal(repr(abs(x))).normalize().as_tuple()  # repr is the shortest round trip
    digits = "".join(map(str, digit_tuple))
    n, sign = len(digits), "-" if x < 0 else ""
    kk = n + exponent  # the value is 0.DIGITS * 10^kk
    if n <= kk <= 16:
        return f"{sign}{digits}{'0' * (kk - n)}.0"
    if 0 < kk <= 16:
        return f"{sign}{digits[:kk]}.{digits[kk:]}"
    if -5 < kk <= 0:
        return f"{sign}0.{'0' * -kk}{digits}"
    e = kk - 1
    return f"{sign}{digits}e{e}" if n == 1 else f"{sign}{digits[0]}.{digits[1:]}e{e}"


def _rust_lines(text: str) -> list[str]:
    """Rust's str::lines(): split after each \n (a \r\n counts as one), no final empty line.
    A bare \r is text, even at the very end."""
    if not text:
        return []
    parts = text.split("\n")
    last = parts.pop()  # not followed by \n: its \r stays
    lines = [p[:-1] if p.endswith("\r") else p for p in parts]
    return lines + [last] if last else lines
