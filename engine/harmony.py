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

import tiktoken

from engine.events import Event, MessageEnd, MessageStart, Stop, TextDelta  # noqa: F401 (re-exported)
from engine.tokenizer import encode_text, special_id

DEFAULT_IDENTITY = "You are ChatGPT, a large language model trained by OpenAI."
KNOWLEDGE_CUTOFF = "2024-06"
EFFORTS = ("low", "medium", "high")
CHANNELS_LINE = "# Valid channels: analysis, commentary, final. Channel must be included for every message."
MAX_HEADER_TOKENS = 64  # a header longer than this is the model rambling, not a header


def system_text(effort: str, date: str, identity: str = DEFAULT_IDENTITY) -> str:
    """The system message body (identity, cutoff, date, reasoning effort, channels)."""
    return (
        f"{identity}\nKnowledge cutoff: {KNOWLEDGE_CUTOFF}\nCurrent date: {date}\n\n"
        f"Reasoning: {effort}\n\n{CHANNELS_LINE}"
    )


def kept_messages(messages: list[dict]) -> list[dict]:
    """Drop analysis that precedes the last final answer, when the last assistant message is final.

    This is the documented harmony rule (and the Hugging Face chat template's): chain of thought
    from finished turns is not shown to the model again. openai-harmony 0.0.8 only drops analysis
    before the FIRST final answer (its PR #96 fixes that); for one earlier turn both agree.
    """
    assistant = [i for i, m in enumerate(messages) if m.get("role") == "assistant"]
    if not assistant or _channel(messages[assistant[-1]]) != "final":
        return list(messages)
    last_final = max(i for i in assistant if _channel(messages[i]) == "final")
    return [m for i, m in enumerate(messages) if not (i < last_final and _channel(m) == "analysis")]


def _channel(message: dict) -> str | None:
    if message.get("role") != "assistant":
        return None
    return message.get("channel") or "final"


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


def render_message(enc: tiktoken.Encoding, role: str, text: str, channel: str | None = None) -> list[int]:
    """Ids of one complete message, ending with <|end|>."""
    ids = _Ids(enc)
    out = [ids.start, *encode_text(enc, role)]
    if channel is not None:
        out += [ids.channel, *encode_text(enc, channel)]
    return out + [ids.message, *encode_text(enc, text), ids.end]


def render_prompt(
    messages: list[dict],
    enc: tiktoken.Encoding,
    effort: str = "medium",
    date: str | None = None,
    developer: str | None = None,
    identity: str = DEFAULT_IDENTITY,
) -> list[int]:
    """Token ids of the whole conversation, ending with `<|start|>assistant` ready for completion.

    messages: [{"role": "user"|"assistant", "content": str, "channel": "analysis"|"final"}]
    (channel only for assistant, "final" when absent). date defaults to today (YYYY-MM-DD).
    """
    if effort not in EFFORTS:
        raise ValueError(f"Reasoning effort must be one of {', '.join(EFFORTS)}, not {effort!r}.")
    for m in messages:
        if m.get("role") not in ("user", "assistant"):
            raise ValueError(f"A chat message's role must be user or assistant, not {m.get('role')!r}.")
    date = date or _dt.date.today().isoformat()
    out = render_message(enc, "system", system_text(effort, date, identity))
    if developer:
        out += render_message(enc, "developer", f"# Instructions\n\n{developer}")
    for m in kept_messages(messages):
        out += render_message(enc, m["role"], m.get("content") or "", _channel(m))
    return out + [_Ids(enc).start, *encode_text(enc, "assistant")]


# ---------------------------------------------------------------- streaming parser events


# The parser's events live in engine.events (no MLX, no tiktoken), re-exported here.


class StreamParser:
    """Token ids in, events out. Assumes the prompt ended with `<|start|>assistant`.

    Never raises on model output: anything out of place ends the stream with
    Stop("malformed: ...") after closing the open message. After Stop, feed() returns [].
    """

    HEADER, CONTENT, BETWEEN, STOPPED = range(4)

    def __init__(self, enc: tiktoken.Encoding, role: str = "assistant"):
        self.enc = enc
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
        role, channel, recipient = self._parse_header()
        if self.role is None:
            self.role = role
        if self.role != "assistant":
            return self._stop(f"malformed: the model began a {self.role or 'nameless'} message")
        if not channel:
            return self._stop("malformed: message without a channel")
        self.channel, self.state = channel, self.CONTENT
        self.decoder.reset()
        return [MessageStart(self.role, channel, recipient)]

    def _content(self, token: int) -> list[Event]:
        if token in (self.ids.end, self.ids.ret, self.ids.call):
            events = self._close_message()
            if token == self.ids.end:
                self.state = self.BETWEEN
                return events
            self.state = self.STOPPED
            return events + [Stop("return" if token == self.ids.ret else "call")]
        if self._is_special(token):
            return self._stop(f"malformed: {self._describe(token)} inside a message")
        text = self.decoder.decode(self.enc.decode_single_token_bytes(token))
        return [TextDelta(self.channel, text)] if text else []

    # -- helpers

    def _close_message(self) -> list[Event]:
        events: list[Event] = []
        tail = self.decoder.decode(b"", final=True)  # a cut-off character becomes U+FFFD
        if tail:
            events.append(TextDelta(self.channel, tail))
        events.append(MessageEnd(self.channel))
        return events

    def _stop(self, reason: str) -> list[Event]:
        events = self._close_message() if self.state == self.CONTENT else []
        self.state = self.STOPPED
        return events + [Stop(reason)]

    def _parse_header(self) -> tuple[str | None, str | None, str | None]:
        """Split the header tokens into role, channel and recipient (" to=..."), all optional."""
        before, channel_part, seen_channel = [], [], False
        for t in self.header:
            if t == self.ids.channel:
                seen_channel = True
            elif t == self.ids.constrain:
                (channel_part if seen_channel else before).append(" ")
            else:
                (channel_part if seen_channel else before).append(self.enc.decode([t]))
        role_words = "".join(before).split()
        channel_words = "".join(channel_part).split()
        recipient = next((w[3:] for w in role_words + channel_words if w.startswith("to=")), None)
        role = next((w for w in role_words if not w.startswith("to=")), None)
        channel = next((w for w in channel_words if not w.startswith("to=")), None) if seen_channel else None
        return role, channel, recipient

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
