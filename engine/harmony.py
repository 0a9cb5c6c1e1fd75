"""The harmony chat format: render a conversation to token ids, parse the model's streamed reply.

A message is `<|start|>{role}<|channel|>{channel}<|message|>{text}<|end|>` (no channel for
system/developer/user). A completion prompt ends with `<|start|>assistant`; the model answers
`<|channel|>analysis<|message|>...<|end|><|start|>assistant<|channel|>final<|message|>...<|return|>`.
Earlier chain of thought is dropped once a turn has ended in a final answer (what the model was
trained on). Special-token ids always come from the tokenizer, and message text is encoded as
ordinary text, so a user typing "<|end|>" can't forge a control token.
"""

from __future__ import annotations

import codecs
import datetime as _dt
import json
from dataclasses import dataclass

import tiktoken

from engine.answer_format import AnswerFormat
from engine.events import Event, MessageEnd, MessageStart, Stop, TextDelta  # noqa: F401 (re-exported)
from engine.tokenizer import encode_text, special_id
from engine.tools import (FUNCTIONS, FUNCTIONS_CHANNEL_LINE, PYTHON, PYTHON_DESCRIPTION, Tool, ToolCall,
                          check_call, tools_section)

DEFAULT_IDENTITY = "You are ChatGPT, a large language model trained by OpenAI."
KNOWLEDGE_CUTOFF = "2024-06"
EFFORTS = ("low", "medium", "high")
CHANNELS_LINE = "# Valid channels: analysis, commentary, final. Channel must be included for every message."
MAX_HEADER_TOKENS = 64  # a header longer than this is the model rambling, not a header


def system_text(effort: str, date: str, identity: str = DEFAULT_IDENTITY, python: bool = False,
                functions: bool = False, browser: list[str] | None = None) -> str:
    """The system message body (identity, cutoff, date, reasoning effort, built-in tools, channels).
    browser: the names of the sources the browser reads (None: no browser); harmony puts it first."""
    builtins = []
    if browser is not None:
        from engine.browser.spec import namespace  # the browser's definitions live with the browser

        builtins.append(namespace(browser))
    if python:
        builtins.append((PYTHON, PYTHON_DESCRIPTION, []))
    tools = f"{tools_section(builtins)}\n\n" if builtins else ""
    channels = CHANNELS_LINE + (f"\n{FUNCTIONS_CHANNEL_LINE}" if functions else "")
    return (
        f"{identity}\nKnowledge cutoff: {KNOWLEDGE_CUTOFF}\nCurrent date: {date}\n\n"
        f"Reasoning: {effort}\n\n{tools}{channels}"
    )


def developer_text(instructions: str | None, functions: list[Tool] = (),
                   answer_format: AnswerFormat | None = None) -> str:
    """The developer message body: instructions, the functions namespace, the answer's format."""
    sections = ["# Instructions", instructions] if instructions else []
    if functions:
        sections.append(tools_section([(FUNCTIONS, None, list(functions))]))
    if answer_format is not None and answer_format.shown:
        sections.append(response_format_section(answer_format))
    return "\n\n".join(sections)


def response_format_section(answer_format: AnswerFormat) -> str:
    """`# Response Formats` as the harmony guide shows it: name, description comment, the schema."""
    comment = f"// {answer_format.description}\n" if answer_format.description else ""
    schema = json.dumps(answer_format.schema, separators=(",", ":"), ensure_ascii=False)
    return f"# Response Formats\n\n## {answer_format.name or 'response'}\n\n{comment}{schema}"


def kept_messages(messages: list[dict]) -> list[dict]:
    """Drop the chain of thought (analysis-channel messages) of every turn that ended in a final answer.

    This is the documented harmony rule: analysis before the last final answer is not shown to the
    model again, while the current turn's analysis stays through its tool calls and results (the
    model may call tools from its chain of thought). openai-harmony 0.0.8 drops analysis only before
    the FIRST final answer and only when the last assistant message is final (its PR #96 changes
    that); where it drops anything, the two agree for one earlier turn.
    """
    finals = [i for i, m in enumerate(messages) if _channel(m) == "final"]
    if not finals:
        return list(messages)
    return [m for i, m in enumerate(messages) if not (i < finals[-1] and _channel(m) == "analysis")]


def _channel(message: dict) -> str | None:
    role = message.get("role")
    if role == "assistant":
        return message.get("channel") or "final"
    if role == "tool":
        return message.get("channel") or "commentary"
    return None


class _Ids:
    """Special-token ids looked up once from the tokenizer."""

    def __init__(self, enc: tiktoken.Encoding):
        self.start, self.end, self.message = (special_id(enc, n) for n in ("<|start|>", "<|end|>", "<|message|>"))
        self.channel, self.ret, self.call = (special_id(enc, n) for n in ("<|channel|>", "<|return|>", "<|call|>"))
        self.constrain = _optional_id(enc, "<|constrain|>")


def _optional_id(enc: tiktoken.Encoding, name: str) -> int | None:
    try:
        return enc.encode_single_token(name)
    except KeyError:
        return None


def render_message(enc: tiktoken.Encoding, role: str, text: str, channel: str | None = None,
                   recipient: str | None = None, content_type: str | None = None,
                   recipient_after_channel: bool = False) -> list[int]:
    """Ids of one complete message, ending with <|end|> (<|call|> for an assistant's tool call).

    Each header piece is encoded on its own, as openai-harmony does. A tool's answer has the
    tool's name as its role and recipient "assistant"."""
    ids = _Ids(enc)
    out = [ids.start, *encode_text(enc, role)]
    to = encode_text(enc, f" to={recipient}") if recipient and recipient != "all" else []
    if not recipient_after_channel:
        out += to
    if channel is not None:
        out += [ids.channel, *encode_text(enc, channel)]
    if recipient_after_channel:
        out += to
    if content_type:
        if content_type.startswith("<|constrain|>") and ids.constrain is not None:
            rest = content_type[len("<|constrain|>"):]
            out += [*encode_text(enc, " "), ids.constrain, *encode_text(enc, rest)]
        else:
            out += encode_text(enc, f" {content_type}")
    end = ids.call if role == "assistant" and recipient else ids.end
    return out + [ids.message, *encode_text(enc, text), end]


def render_chat_message(enc: tiktoken.Encoding, m: dict) -> list[int]:
    """One user, assistant or tool message of the conversation (see render_prompt)."""
    if m["role"] == "tool":
        name = m.get("name")
        if not name:
            raise ValueError("A tool message needs the name of the tool that answered (e.g. functions.get_weather).")
        return render_message(enc, name, m.get("content") or "", _channel(m), recipient="assistant")
    return render_message(enc, m["role"], m.get("content") or "", _channel(m), recipient=m.get("recipient"),
                          content_type=m.get("content_type"),
                          recipient_after_channel=bool(m.get("recipient_after_channel")))


def render_prompt(
    messages: list[dict],
    enc: tiktoken.Encoding,
    effort: str = "medium",
    date: str | None = None,
    developer: str | None = None,
    identity: str = DEFAULT_IDENTITY,
    tools: list[Tool] | None = None,
    python: bool = False,
    answer_format: AnswerFormat | None = None,
    browser: list[str] | None = None,
) -> list[int]:
    """Token ids of the whole conversation, ending with `<|start|>assistant` ready for completion.

    messages: [{"role": "user"|"assistant"|"tool", "content": str, "channel": ...}]: an assistant
    message has a channel ("final" when absent) and, for a tool call, a recipient
    ("functions.NAME" or "python") and content_type ("<|constrain|>json"); a tool message has the
    tool's `name` (its answer goes to the assistant). tools: user functions (developer message);
    python: offer the built-in python tool (system message); answer_format: the answer's format, shown
    to the model when `answer_format.shown`. date defaults to today (YYYY-MM-DD).
    browser: offer the built-in browser over these named sources (engine.browser).
    """
    if effort not in EFFORTS:
        raise ValueError(f"Reasoning effort must be one of {', '.join(EFFORTS)}, not {effort!r}.")
    for m in messages:
        if m.get("role") not in ("user", "assistant", "tool"):
            raise ValueError(f"A chat message's role must be user, assistant or tool, not {m.get('role')!r}.")
    date = date or _dt.date.today().isoformat()
    tools = list(tools or [])
    out = render_message(enc, "system", system_text(effort, date, identity, python=python, functions=bool(tools),
                                                         browser=browser))
    if developer or tools or (answer_format is not None and answer_format.shown):
        out += render_message(enc, "developer", developer_text(developer, tools, answer_format))
    for m in kept_messages(messages):
        out += render_chat_message(enc, m)
    return out + [_Ids(enc).start, *encode_text(enc, "assistant")]


# ---------------------------------------------------------------- streaming parser events


# The parser's events (engine.events.Event, ToolCall included) live in engine.events: no MLX, no tiktoken.


class StreamParser:
    """Token ids in, events out. Assumes the prompt ended with `<|start|>assistant`.

    Never raises on model output: anything out of place ends the stream with
    Stop("malformed: ...") after closing the open message. After Stop, feed() returns [].
    A message to a tool that ends in <|call|> yields a ToolCall (checked against `tools`) before
    Stop("call").
    """

    HEADER, CONTENT, BETWEEN, STOPPED = range(4)

    def __init__(self, enc: tiktoken.Encoding, role: str = "assistant", tools: list[Tool] | None = None,
                 browser: bool = False):
        self.enc = enc
        self.browser = browser  # the built-in browser is offered: its calls are checked, not refused
        self.tools = {t.name: t for t in tools or ()}
        self.recipient: str | None = None
        self.content_type: str | None = None
        self.recipient_after_channel = False
        self.call_text: list[str] = []  # a tool call's arguments, gathered to be checked at <|call|>
        self.ids = _Ids(enc)
        self.state = self.HEADER
        self.header: list[int] = []
        self.role = role  # the prompt already said who speaks first
        self.channel: str | None = None
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token: int) -> list[Event]:
        """Events caused by one more token of model output."""
        if self.state == self.STOPPED:
            return []
        if self.state == self.CONTENT:
            return self._content(token)
        if self.state == self.BETWEEN:
            if token == self.ids.start:
                self.state, self.header, self.role = self.HEADER, [], None
                return []
            return self._stop(f"malformed: {self._describe(token)} between messages")
        return self._header(token)

    def finish(self, reason: str) -> list[Event]:
        """Close the stream because generation ended without a stop token (e.g. "max_tokens")."""
        if self.state == self.STOPPED:
            return []
        return self._stop(reason)

    # -- states

    def _header(self, token: int) -> list[Event]:
        if token == self.ids.message:
            return self._open_message()
        if token in (self.ids.end, self.ids.ret, self.ids.call):
            return self._stop(f"malformed: {self._describe(token)} before the message began")
        if token not in (self.ids.channel, self.ids.constrain) and self._is_special(token):
            return self._stop(f"malformed: {self._describe(token)} in a message header")
        self.header.append(token)
        if len(self.header) > MAX_HEADER_TOKENS:
            return self._stop("malformed: message header never ended")
        return []

    def _open_message(self) -> list[Event]:
        role, channel, recipient, content_type, after = self._parse_header()
        if self.role is None:
            self.role = role
        if self.role != "assistant":
            return self._stop(f"malformed: the model began a {self.role or 'nameless'} message")
        if not channel:
            return self._stop("malformed: message without a channel")
        self.channel, self.state = channel, self.CONTENT
        self.recipient, self.content_type, self.recipient_after_channel = recipient, content_type, after
        self.call_text = []
        self.decoder.reset()
        return [MessageStart(self.role, channel, recipient, content_type)]

    def _content(self, token: int) -> list[Event]:
        if token in (self.ids.end, self.ids.ret, self.ids.call):
            events = self._close_message()
            if token == self.ids.end:
                self.state = self.BETWEEN
                return events
            self.state = self.STOPPED
            if token == self.ids.ret:
                return events + [Stop("return")]
            if self.recipient is None:
                return events + [Stop("malformed: <|call|> ended a message that was not to a tool")]
            call = check_call(self.recipient, "".join(self.call_text), self.tools, self.channel,
                              self.content_type, self.recipient_after_channel, self.browser)
            return events + [call, Stop("call")]
        if self._is_special(token):
            return self._stop(f"malformed: {self._describe(token)} inside a message")
        text = self.decoder.decode(self.enc.decode_single_token_bytes(token))
        return self._text(text)

    def _text(self, text: str) -> list[Event]:
        if not text:
            return []
        if self.recipient is not None:
            self.call_text.append(text)
        return [TextDelta(self.channel, text)]

    # -- helpers

    def _close_message(self) -> list[Event]:
        events: list[Event] = []
        tail = self.decoder.decode(b"", final=True)  # a cut-off character becomes U+FFFD
        events += self._text(tail)
        events.append(MessageEnd(self.channel))
        return events

    def _stop(self, reason: str) -> list[Event]:
        events = self._close_message() if self.state == self.CONTENT else []
        self.state = self.STOPPED
        return events + [Stop(reason)]

    def _parse_header(self) -> tuple[str | None, str | None, str | None, str | None, bool]:
        """Split the header into role, channel, recipient (" to=..."), content type
        ("<|constrain|>json", "code") and whether the recipient came after the channel."""
        parts: list[list[str]] = [[]]  # words before the channel token, then after it
        for t in self.header:
            if t == self.ids.channel:
                parts.append([])
            elif t == self.ids.constrain:
                parts[-1].append(" <|constrain|>")
            else:
                parts[-1].append(self.enc.decode([t]))
        before = "".join(parts[0]).split()
        seen_channel = len(parts) > 1
        after = "".join(w for p in parts[1:] for w in p).replace("<|constrain|> ", "<|constrain|>").split()
        channel = after.pop(0) if after and seen_channel and not after[0].startswith(("to=", "<|")) else None
        role = before.pop(0) if before and not before[0].startswith("to=") else None
        recipient = next((w[3:] for w in before + after if w.startswith("to=")), None)
        recipient_after = any(w.startswith("to=") for w in after) and not any(w.startswith("to=") for w in before)
        content_type = next((w for w in before + after if not w.startswith("to=")), None)
        return role, channel, recipient, content_type, recipient_after

    def _is_special(self, token: int) -> bool:
        try:
            self.enc.decode_single_token_bytes(token)
        except KeyError:
            return True  # not in the vocabulary at all: treat like a stray control token
        return token in self._special_ids

    @property
    def _special_ids(self) -> frozenset[int]:
        if not hasattr(self, "_specials"):
            self._specials = frozenset(self.enc.encode_single_token(s) for s in self.enc.special_tokens_set)
        return self._specials

    def _describe(self, token: int) -> str:
        try:
            raw = self.enc.decode_single_token_bytes(token)
        except KeyError:
            return f"unknown token {token}"
        if token in self._special_ids:
            return raw.decode("utf-8", "replace")
        return "text"
