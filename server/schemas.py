"""The request bodies as typed models: every body is checked against one before anything reads it.

Strict types (`"stream": "no"` is an error, not a truthy string), unknown fields refused (OpenAI
answers "Unrecognized request argument"), JSON parsed by pydantic's own parser (nesting past 200
levels and lone UTF-16 surrogates are errors, not a RecursionError or a string the tokenizer
chokes on). The same models describe the bodies in /openapi.json. `parse_body` turns the first
error into one sentence and the `param` it is about (e.g. `messages[1].tool_calls[0].function`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator

from server.errors import bad_request

Effort = Literal["low", "medium", "high"]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]  # a function's name, as OpenAI allows it


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, populate_by_name=True)


class Part(BaseModel):
    """A text part of a message's content (extra fields such as annotations are allowed and unused)."""

    model_config = ConfigDict(strict=True, extra="allow")
    type: Literal["text", "input_text", "output_text"]
    text: str


class ReasoningPart(Strict):
    type: Literal["reasoning_text", "summary_text"]
    text: str


Content = Union[str, list[Part]]


def local_refs_only(schema: Any) -> Any:
    """A JSON Schema whose every $ref points inside itself ("#..."): a remote one is never fetched."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in ("$ref", "$dynamicRef"):
                ref = node.get(key)
                if ref is not None and not (isinstance(ref, str) and ref.startswith("#")):
                    raise ValueError(f"a {key} must point inside the schema ('#/$defs/...'); {ref!r} would "
                                     "have to be fetched, and this server fetches nothing")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return schema


JSONSchema = Annotated[dict[str, Any], Field(json_schema_extra={"description": "A JSON Schema (local $refs only)"})]


# ------------------------------------------------------------------ Chat Completions


class FunctionCall(Strict):
    name: str
    arguments: str


class ToolCall(Strict):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessage(Strict):
    role: Literal["system"]
    content: Content
    name: str | None = None


class DeveloperMessage(Strict):
    role: Literal["developer"]
    content: Content
    name: str | None = None


class UserMessage(Strict):
    role: Literal["user"]
    content: Content
    name: str | None = None


class AssistantMessage(Strict):
    role: Literal["assistant"]
    content: Content | None = None
    tool_calls: list[ToolCall] | None = None
    reasoning: str | None = None          # the chain of thought sent back (this server's own field)
    reasoning_content: str | None = None  # the same, as other local servers name it
    refusal: str | None = None
    name: str | None = None


class ToolMessage(Strict):
    role: Literal["tool"]
    content: Content
    tool_call_id: str


def _tagged(field: str, default: str | None = None):
    """A discriminator reading `field` (its tag is "field=value", so error locations can drop it)."""

    def tag(value):
        if isinstance(value, dict):
            return f"{field}={value.get(field, default)}"
        return f"{field}={getattr(value, field)}" if isinstance(value, BaseModel) else None

    return Discriminator(tag, custom_error_type=f"unknown_{field}",
                         custom_error_message=f"has an unknown or missing '{field}'")


Message = Annotated[Union[Annotated[SystemMessage, Tag("role=system")],
                          Annotated[DeveloperMessage, Tag("role=developer")],
                          Annotated[UserMessage, Tag("role=user")],
                          Annotated[AssistantMessage, Tag("role=assistant")],
                          Annotated[ToolMessage, Tag("role=tool")]], _tagged("role")]


class FunctionDefinition(Strict):
    name: Name
    description: str | None = None
    parameters: JSONSchema | None = None
    strict: bool | None = None

    _refs = field_validator("parameters")(classmethod(lambda cls, v: local_refs_only(v)))


class ChatTool(Strict):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(Strict):
    name: str


class ChatToolChoiceFunction(Strict):
    type: Literal["function"]
    function: NamedFunction


class TextFormat(Strict):
    type: Literal["text"]


class JSONObjectFormat(Strict):
    type: Literal["json_object"]


class JSONSchemaSpec(Strict):
    name: str | None = None
    description: str | None = None
    schema_: JSONSchema = Field(alias="schema")
    strict: bool | None = None

    _refs = field_validator("schema_")(classmethod(lambda cls, v: local_refs_only(v)))


class JSONSchemaFormat(Strict):
    type: Literal["json_schema"]
    json_schema: JSONSchemaSpec


ResponseFormat = Annotated[Union[Annotated[TextFormat, Tag("type=text")],
                                 Annotated[JSONObjectFormat, Tag("type=json_object")],
                                 Annotated[JSONSchemaFormat, Tag("type=json_schema")]], _tagged("type")]


class StreamOptions(Strict):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


def _whole(value):
    """JSON Schema counts 3.0 as an integer: so do we (strings and booleans stay refused)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def whole(lo: int, hi: int):
    """A whole number from lo to hi."""
    return Annotated[int, Field(ge=lo, le=hi), BeforeValidator(_whole)]


Temperature = Annotated[float, Field(ge=0, le=2)]
TopP = Annotated[float, Field(ge=0, le=1)]
MaxTokens = whole(1, 1 << 30)
Seed = whole(-(1 << 53), 1 << 53)  # exact in a JSON number (a double) on every client
StopString = Annotated[str, Field(min_length=1)]
Neutral = Annotated[float, Field(ge=0, le=0)]  # a penalty this server doesn't apply: only 0


class ChatRequest(Strict):
    """POST /v1/chat/completions."""

    model: Annotated[str, Field(min_length=1)]
    messages: Annotated[list[Message], Field(min_length=1)]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    seed: Seed | None = None
    n: whole(1, 1) | None = None  # one model answers one request at a time
    max_tokens: MaxTokens | None = None
    max_completion_tokens: MaxTokens | None = None
    stop: Union[StopString, Annotated[list[StopString], Field(max_length=4)]] | None = None
    reasoning_effort: Effort | None = None
    tools: list[ChatTool] | None = None
    tool_choice: Union[Literal["none", "auto", "required"], ChatToolChoiceFunction] | None = None
    parallel_tool_calls: bool | None = None  # gpt-oss calls one function per turn either way
    response_format: ResponseFormat | None = None
    # Parameters this server can't honour (below logprobs): only their neutral values are valid.
    logprobs: bool | None = None
    top_logprobs: whole(0, 20) | None = None  # needs logprobs: true
    frequency_penalty: Neutral | None = None
    presence_penalty: Neutral | None = None
    logit_bias: Annotated[dict[str, float], Field(max_length=0)] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None  # every request reuses the longest cached prefix anyway
    metadata: dict[str, str] | None = None
    store: Literal[False] | None = None  # chat completions are not kept (the Responses API keeps them)
    service_tier: str | None = None
    modalities: list[Literal["text"]] | None = None
    web_search_options: dict[str, Any] | None = None  # the built-in web_search over --library/--zim (server.web_search)


# ------------------------------------------------------------------ Responses


class InputMessage(Strict):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: Content
    id: str | None = None
    status: str | None = None


class FunctionCallItem(Strict):
    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str
    id: str | None = None
    status: str | None = None


class FunctionCallOutputItem(Strict):
    type: Literal["function_call_output"]
    call_id: str
    output: Content
    id: str | None = None
    status: str | None = None


class ReasoningItem(Strict):
    type: Literal["reasoning"]
    id: str | None = None
    summary: list[ReasoningPart] = []
    content: list[ReasoningPart] | None = None
    encrypted_content: str | None = None
    status: str | None = None


class WebSearchCallItem(BaseModel):
    """A web_search_call output item sent back as input (its browsing is already in the conversation)."""

    model_config = ConfigDict(strict=True, extra="allow")  # action, status, id
    type: Literal["web_search_call"]


InputItem = Annotated[Union[Annotated[InputMessage, Tag("type=message")],
                            Annotated[FunctionCallItem, Tag("type=function_call")],
                            Annotated[FunctionCallOutputItem, Tag("type=function_call_output")],
                            Annotated[ReasoningItem, Tag("type=reasoning")],
                            Annotated[WebSearchCallItem, Tag("type=web_search_call")]], _tagged("type", "message")]


class FunctionTool(Strict):
    type: Literal["function"]
    name: Name
    description: str | None = None
    parameters: JSONSchema | None = None
    strict: bool | None = None

    _refs = field_validator("parameters")(classmethod(lambda cls, v: local_refs_only(v)))


WebSearchType = Literal["web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11"]


class WebSearchTool(BaseModel):
    """The built-in web_search, served over the server's --library/--zim sources (server.web_search)."""

    model_config = ConfigDict(strict=True, extra="allow")  # search_context_size, user_location, filters
    type: WebSearchType


class WebSearchChoice(Strict):
    type: WebSearchType


class ResponsesToolChoiceFunction(Strict):
    type: Literal["function"]
    name: str


class ResponsesJSONSchemaFormat(Strict):
    type: Literal["json_schema"]
    name: str | None = None
    description: str | None = None
    schema_: JSONSchema = Field(alias="schema")
    strict: bool | None = None

    _refs = field_validator("schema_")(classmethod(lambda cls, v: local_refs_only(v)))


TextFormatParam = Annotated[Union[Annotated[TextFormat, Tag("type=text")],
                                  Annotated[JSONObjectFormat, Tag("type=json_object")],
                                  Annotated[ResponsesJSONSchemaFormat, Tag("type=json_schema")]], _tagged("type")]


class TextParam(Strict):
    format: TextFormatParam | None = None
    verbosity: Literal["medium"] | None = None  # the only verbosity gpt-oss has


class ReasoningParam(Strict):
    effort: Effort | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None  # accepted; the raw reasoning comes back
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


class ResponsesRequest(Strict):
    """POST /v1/responses."""

    model: Annotated[str, Field(min_length=1)]
    input: Union[str, list[InputItem]]
    instructions: str | None = None
    previous_response_id: str | None = None
    store: bool | None = None
    stream: bool | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    max_output_tokens: MaxTokens | None = None
    reasoning: ReasoningParam | None = None
    tools: list[Annotated[Union[Annotated[FunctionTool, Tag("type=function")],
                                *[Annotated[WebSearchTool, Tag(f"type={t}")] for t in WebSearchType.__args__]],
                          _tagged("type")]] | None = None
    tool_choice: Union[Literal["none", "auto", "required"], ResponsesToolChoiceFunction, WebSearchChoice] | None = None
    parallel_tool_calls: bool | None = None
    text: TextParam | None = None
    include: list[str] | None = None  # "message.output_text.logprobs" adds log-probabilities
    top_logprobs: whole(0, 20) | None = None
    truncation: Literal["disabled"] | None = None  # too long is a 413, never a silent cut
    metadata: dict[str, str] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    service_tier: str | None = None


class ErrorObject(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(BaseModel):
    """Every error this server sends: OpenAI's shape."""

    error: ErrorObject


# ------------------------------------------------------------------ errors -> one sentence


UNSUPPORTED = {
    "frequency_penalty": "`frequency_penalty` is not supported by this server (gpt-oss is sampled as it was trained); "
                         "leave it out or send 0.",
    "presence_penalty": "`presence_penalty` is not supported by this server (gpt-oss is sampled as it was trained); "
                        "leave it out or send 0.",
    "logit_bias": "`logit_bias` is not supported by this server; leave it out.",
    "n": "Only n=1 is supported: one model answers one request at a time.",
    "store": "This server keeps no chat completions (`store` must be false); use /v1/responses to keep a "
             "conversation on the server.",
    "truncation": "`truncation: \"auto\"` is not supported: a conversation longer than the context gets a 413; "
                  "shorten it, or leave truncation out.",
}

# Words for the error types a client meets; anything else keeps pydantic's own short message.
_WANTS = {"string_type": "a string", "bool_type": "true or false", "int_type": "a whole number",
          "float_type": "a number", "list_type": "a list", "dict_type": "an object", "model_type": "an object",
          "model_attributes_type": "an object", "int_from_float": "a whole number", "none_required": "null",
          "literal_error": None, "finite_number": "a finite number"}


def _param(loc: tuple) -> str | None:
    """('messages', 1, 'tool_calls', 0) -> 'messages[1].tool_calls[0]'; union tags are dropped."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _is_field(part):
            out += f".{part}" if out else part
    return out or None


def _is_field(part: str) -> bool:
    """Field names are lower snake case; pydantic's union member tags are not ('str', 'list[Part]',
    'role=user', 'function-after[...]', class names)."""
    return part.replace("_", "").isalnum() and part == part.lower() and part not in (
        "str", "int", "float", "bool", "list", "dict", "none")


def _chosen(errors: list[dict]) -> tuple[dict, list[dict]]:
    """The error to report: among those about the first field, the deepest (the union member that
    matched furthest), and the others at the same place (a union's alternatives)."""
    top = errors[0]["loc"][:1]
    mine = [e for e in errors if e["loc"][:1] == top]
    deepest = max(mine, key=lambda e: len((_param(e["loc"]) or "").replace("[", ".[").split(".")))
    param = _param(deepest["loc"])
    same = [e for e in mine if _param(e["loc"]) == param]
    constrained = [e for e in same if e["type"] not in _WANTS]  # a member of the right type broke a rule
    return (constrained or same)[0], same


def _sentence(errors: list[dict]) -> tuple[str, str | None]:
    if errors[0]["type"] == "json_invalid":
        why = str((errors[0].get("ctx") or {}).get("error", ""))
        if "recursion limit" in why:
            return "The request body is nested too deeply (more than 200 levels); send a flatter JSON object.", None
        return f"The request body is not valid JSON ({why}); send one JSON object in UTF-8.", None
    first, same = _chosen(errors)
    kind, ctx = first["type"], first.get("ctx") or {}
    param = _param(first["loc"])
    if kind in ("unknown_role", "unknown_type"):
        if not isinstance(first.get("input"), dict):
            return f"`{param}` must be an object.", param
        field = kind.removeprefix("unknown_")
        return (f"`{param}` has an unknown or missing `{field}`; see /openapi.json for the ones served.",
                f"{param}.{field}" if param else field)
    if param is None:
        return "The request body must be a JSON object.", None
    part = re.fullmatch(r"(.*\.content\[\d+\])\.type", param)
    if part and kind == "literal_error":
        shown = str(first.get("input"))[:40]
        return (f"Content parts of type {shown!r} are not supported (this model reads text only); send text parts.",
                part.group(1))
    if param in UNSUPPORTED and not _WANTS.get(kind):  # the right type, a value this server can't honour
        return UNSUPPORTED[param], param
    if kind == "extra_forbidden":
        return f"Unrecognized request argument supplied: `{param}` (this server's parameters are in /openapi.json).", param
    if kind == "missing":
        return f"`{param}` is required.", param
    if kind == "value_error":
        return f"`{param}`: {str(ctx.get('error', first['msg']))}.", param
    if kind == "literal_error":
        return f"`{param}` must be {ctx.get('expected', 'one of the documented values')}.", param
    named = list(dict.fromkeys(_WANTS[e["type"]] for e in same if _WANTS.get(e["type"])))
    if kind in _WANTS and named:
        return f"`{param}` must be {' or '.join(named)}.", param
    return f"`{param}`: {first['msg'][0].lower() + first['msg'][1:]}.", param


def parse_body(model: type[BaseModel], raw: bytes) -> dict:
    """The body checked against `model`, as a plain dict of the fields the client sent (by their
    JSON names). Raises a 400 APIError naming the first field that is wrong."""
    try:
        parsed = model.model_validate_json(raw or b"null")
    except ValidationError as e:
        message, param = _sentence(e.errors(include_url=False))
        raise bad_request(message, param) from None
    return parsed.model_dump(mode="json", by_alias=True, exclude_unset=True)
