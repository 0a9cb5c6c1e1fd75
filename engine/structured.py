"""Structured Outputs: grammar-constrained decoding of JSON inside a harmony reply (llguidance).

    constraint = ReplyConstraint(enc, response_schema={"type": "object", ...}, tools=tools)
    Generation(model, ids, cache, constraint=constraint)   # generate.py asks it for each mask

The reply is followed token by token with the harmony stream parser. The chain of thought stays
free, as the model expects; the body of a final answer is held to `response_schema` (then
<|return|>), and the body of a call to functions.NAME to that function's parameters (then
<|call|>). Headers are free, unless the reply's shape is demanded: a response schema (after at most
one analysis message, only the final header with its `<|constrain|>json`, or a call to one of the
functions offered), `final_only` (straight to a final answer) or tool_choice "required"/a function
name (the reply must end in such a call; analysis may come first; final_only skips it). A weak
model left free there can write a header that never ends and so never reach the schema. Why llguidance, and the other libraries measured: docs/structured_outputs.md.

# V vocab, W = ceil(V / 32) mask words
"""

from __future__ import annotations

import json
from functools import lru_cache

import llguidance
import llguidance.numpy as llg_numpy
import llguidance.tiktoken
import mlx.core as mx
import numpy as np
import tiktoken

from engine.answer_format import AnswerFormat
from engine.harmony import MessageEnd, MessageStart, Stop, StreamParser
from engine.tools import BROWSER, FUNCTIONS, Tool, ToolChoice

# Fixed separators (as json.dumps writes them): flexible whitespace lets a weak model pad forever.
JSON_OPTIONS = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
NO_ARGUMENTS = {"type": "object", "properties": {}, "additionalProperties": False}


@lru_cache(maxsize=4)
def _tokenizer(enc: tiktoken.Encoding) -> llguidance.LLTokenizer:
    """llguidance's view of our vocabulary (about a second to build: once per encoding)."""
    return llguidance.tiktoken.lltokenizer_from_encoding(enc, eos_token=enc.encode_single_token("<|return|>"))


def warm_up(enc: tiktoken.Encoding) -> None:
    """Build llguidance's view of the vocabulary now (seconds), e.g. on the worker right after
    loading, so that the first request with tools or a schema doesn't wait for it."""
    _tokenizer(enc)


def json_grammar(schema: dict, end: str, lenient: bool = False) -> str:
    """A llguidance (lark) grammar: JSON that `schema` accepts, then the special token `end`."""
    schema = {**schema, "x-guidance": {**JSON_OPTIONS, **({"lenient": True} if lenient else {})}}
    return f"start: body {end}\nbody: %json {json.dumps(schema)}"


def check_schema(enc: tiktoken.Encoding, schema: dict) -> None:
    """Raise ValueError (one sentence) if llguidance can't constrain output to `schema`."""
    _matcher(enc, json_grammar(schema, "<|return|>"))


def _matcher(enc: tiktoken.Encoding, grammar: str) -> llguidance.LLMatcher:
    m = llguidance.LLMatcher(_tokenizer(enc), grammar)
    if m.is_error():
        raise ValueError(f"This JSON Schema can't be used to constrain the answer: {m.get_error().splitlines()[0]}")
    return m


def _quote(text: str) -> str:
    return json.dumps(text)  # a lark string literal is a JSON string


class ReplyConstraint:
    """Follows one reply and masks the logits where JSON (or a forced header) is due.

    next_mask(token) takes the token just sampled (None before the first) and returns a bool
    mx.array [V] of the tokens allowed next, or None when anything goes.
    """

    def __init__(self, enc: tiktoken.Encoding, response_schema: dict | None = None, tools: list[Tool] = (),
                 tool_choice: ToolChoice = ToolChoice(), final_only: bool = False, free_headers: bool = False):
        self.enc = enc
        self.vocab = enc.n_vocab
        self.response_schema = response_schema
        self.tools = {t.name: t for t in tools}
        self.parser = StreamParser(enc, tools=list(tools), browser=True)  # follows the reply; checks nothing
        self.words = np.zeros((1, (self.vocab + 31) // 32), dtype=np.int32)  # [1, W]
        self.header_grammar = self._header_grammar(tool_choice, final_only, free_headers)
        # Where the header is forced, a free chain of thought must not end the reply early, nor open
        # a header inside itself (always malformed): only <|end|> closes it, then the header is forced.
        barred = [enc.encode_single_token(n) for n in
                  ("<|return|>", "<|call|>", "<|start|>", "<|channel|>", "<|message|>", "<|constrain|>")]
        self.free_body = mx.ones((self.vocab,), dtype=mx.bool_)
        self.free_body[mx.array(barred)] = False
        self.matcher = _matcher(enc, self.header_grammar) if self.header_grammar else None
        self.in_forced_body = False
        self.done = False

    def _header_grammar(self, choice: ToolChoice, final_only: bool, free_headers: bool) -> str | None:
        """Lark rules for forced headers (None when headers are free). final_only skips the chain
        of thought: straight to the final answer, or to the call tool_choice demands. With a response
        schema the answer's header is forced too (free_headers: not, e.g. when the python tool is on)."""
        forced_call = choice.mode == "function" or (choice.mode == "required" and self.tools)
        forced_answer = self.response_schema is not None and not free_headers
        if not (forced_call or final_only or forced_answer or choice.mode == BROWSER):
            return None
        heads = [] if final_only else ['<|channel|> "analysis" <|message|>']
        if choice.mode == BROWSER:  # a built-in browser call, as gpt-oss writes it (engine.browser)
            recipient = _quote(f" to={BROWSER}.{choice.name or 'search'}")
            heads.append(f'{recipient} <|channel|> "analysis" " code" <|message|>')
        elif forced_call:
            if choice.mode == "function" and choice.name not in self.tools:
                raise ValueError(f"tool_choice names {choice.name!r}, which is not one of the tools given.")
            names = [choice.name] if choice.mode == "function" else sorted(self.tools)
            # The recipient goes where harmony renders it (before the channel), so a call sent back
            # in OpenAI's format renders to the same tokens and the cache carries on.
            heads.append(self._call_head(names))
        else:
            if forced_answer and self.tools and choice.mode == "auto" and not final_only:  # functions stay callable,
                heads.append(self._call_head(sorted(self.tools)))     # the recipient before the channel
                calls = " | ".join(_quote(f" to={FUNCTIONS}.{n}") for n in sorted(self.tools))
                heads.append(f'<|channel|> "commentary" ({calls}) " " <|constrain|> "json" <|message|>')  # or after
            json_answer = self.response_schema is not None
            heads.append('<|channel|> "final" " " <|constrain|> "json" <|message|>' if json_answer else
                         '<|channel|> "final" <|message|>')
        # After one analysis message the forced head must come: a weak model would otherwise start
        # analysis message after analysis message and never reach what the request demands.
        self.later_grammar = "start: " + " | ".join(h for h in heads if not h.startswith('<|channel|> "analysis"'))
        return "start: " + " | ".join(heads)

    @staticmethod
    def _call_head(names: list[str]) -> str:
        calls = " | ".join(_quote(f" to={FUNCTIONS}.{n}") for n in names)
        return f'({calls}) <|channel|> "commentary" " " <|constrain|> "json" <|message|>'

    def next_mask(self, token: int | None) -> mx.array | None:
        """The allowed next tokens after `token` (bool [V]), or None when unconstrained."""
        if token is not None:
            self._advance(token)
        if self.done:
            return None
        if self.matcher is not None:
            llg_numpy.fill_next_token_bitmask(self.matcher, self.words)
            # Bit i of word w is token 32w + i; NumPy unpacks it ~8x faster than MLX ops on a CPU.
            bits = np.unpackbits(self.words[0].view(np.uint8), bitorder="little")[: self.vocab]  # [V]
            return mx.array(bits.view(np.bool_))
        if self.in_forced_body:
            return self.free_body
        return None

    def _advance(self, token: int) -> None:
        if self.done:
            return
        if self.matcher is not None and not self.matcher.is_stopped():
            self.matcher.consume_token(token)
        for ev in self.parser.feed(token):
            if isinstance(ev, MessageStart):
                self.matcher = self._body_matcher(ev)
                self.in_forced_body = self.header_grammar is not None and self.matcher is None
            elif isinstance(ev, MessageEnd):
                self.matcher, self.in_forced_body = None, False
            if isinstance(ev, Stop):
                self.done, self.matcher = True, None
                return
        # A message ended with <|end|>: the next one's header may be forced.
        if self.parser.state == StreamParser.BETWEEN and self.matcher is None and self.header_grammar:
            self.matcher = _matcher(self.enc, self._after_start(self.later_grammar))

    @staticmethod
    def _after_start(grammar: str) -> str:
        """The header grammar for a later message: `<|start|>assistant` first."""
        return f'start: <|start|> "assistant" head\nhead: {grammar[len("start: "):]}'

    def _body_matcher(self, start: MessageStart) -> llguidance.LLMatcher | None:
        """The JSON a message must hold, given its header (None: free text)."""
        if start.recipient and start.recipient.startswith(FUNCTIONS + "."):
            tool = self.tools.get(start.recipient.split(".", 1)[1])
            if tool is None:
                return None  # an unknown function: the call comes back as a clear error instead
            schema = tool.parameters if tool.parameters is not None else NO_ARGUMENTS
            try:
                return _matcher(self.enc, json_grammar(schema, "<|call|>"))
            except ValueError:  # keywords llguidance lacks: ignore them, jsonschema still checks the call
                return _matcher(self.enc, json_grammar(schema, "<|call|>", lenient=True))
        if start.recipient and start.recipient.startswith(BROWSER + "."):
            from engine.browser.spec import bounded_parameters  # typed as the reference, strings bounded

            schema = bounded_parameters(start.recipient[len(BROWSER) + 1:])
            return _matcher(self.enc, json_grammar(schema, "<|call|>")) if schema else None
        if start.channel == "final" and start.recipient is None and self.response_schema is not None:
            return _matcher(self.enc, json_grammar(self.response_schema, "<|return|>"))
        return None


# ---------------------------------------------------------------- the request's options


def reply_setup(enc: tiktoken.Encoding, tools=None, python: bool = False, tool_choice=None,
                answer_format: AnswerFormat | None = None, final_only: bool = False, browser: bool = False
                ) -> tuple[list[Tool], ReplyConstraint | None, dict]:
    """What a reply needs for its options: the functions offered, the decoding constraint (None
    when nothing is constrained) and the extra render_prompt arguments. ValueError: bad request."""
    functions = list(tools or [])
    if not all(isinstance(t, Tool) for t in functions):
        raise ValueError("tools must be engine.tools.Tool (server/openai_format.py reads OpenAI's shape).")
    choice = tool_choice or ToolChoice()
    if not isinstance(choice, ToolChoice):
        raise ValueError("tool_choice must be an engine.tools.ToolChoice (server/openai_format.py reads OpenAI's shape).")
    if choice.mode == "none":
        functions = []  # not even shown: the model can't call what it doesn't know
    if choice.mode in ("required", "function") and not functions:
        raise ValueError(f'tool_choice "{choice.name or choice.mode}" needs at least one function in tools.')
    if answer_format is not None and not isinstance(answer_format, AnswerFormat):
        raise ValueError("answer_format must be an engine.answer_format.AnswerFormat "
                         "(server/openai_format.py reads OpenAI's response_format).")
    schema = answer_format.schema if answer_format is not None else None
    if schema is not None:
        check_schema(enc, schema)
    constraint = None
    if schema is not None or functions or final_only or choice.mode == BROWSER:
        # python and browser calls have headers of their own: with either offered, an answer's header stays free
        constraint = ReplyConstraint(enc, schema, functions, choice, final_only, free_headers=python or browser)
    return functions, constraint, {"tools": functions, "python": python, "answer_format": answer_format}
