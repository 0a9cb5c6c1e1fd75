"""Reads the engine's harmony events for one request and keeps reasoning, answer and calls apart.

What a message is comes from engine.events.step_kind: chain of thought is reasoning; the final
answer and preambles (commentary to nobody) are content; a call to `functions.NAME` is a tool call
whose text is its JSON arguments (calls to built-in tools, never offered here, count as reasoning).
Harmony tokens never reach the text: the engine's parser strips them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from engine.browser.turn import BrowserStep
from engine.events import (FUNCTIONS, ContextTrimmed, Done, MessageEnd, MessageStart, Stop, TextDelta, TokenLogprobs,
                           step_kind)
from engine.tools import BROWSER, ToolCall, function_call
from server.openai_format import new_call_id

FINISH = {"return": "stop", "call": "tool_calls", "max_tokens": "length", "cancelled": "stop"}


@dataclass
class Piece:
    """A piece of the reply to stream: kind is reasoning, content, call (a new call) or arguments."""

    kind: str
    text: str = ""
    call: int = -1  # index into ReplyReader.calls for call/arguments
    logprobs: list | None = None  # content only, when asked: OpenAI's entries for the tokens of this text


def merge(pieces: list[Piece]) -> list[Piece]:
    """Join neighbouring text pieces of the same kind (and call) into one: a batch of deltas that
    were all ready at once goes out as one chunk. The text, concatenated, is unchanged."""
    out: list[Piece] = []
    for p in pieces:
        last = out[-1] if out else None
        if last is not None and p.kind == last.kind != "call" and p.call == last.call:
            logprobs = None if last.logprobs is None and p.logprobs is None else \
                (last.logprobs or []) + (p.logprobs or [])
            out[-1] = Piece(p.kind, last.text + p.text, p.call, logprobs)
        else:
            out.append(p)
    return out


def logprob_entry(enc, token: int, logprob: float, top=()) -> dict:
    """OpenAI's log-probability entry for one token: its text, bytes and the top alternatives."""
    def one(t, lp):
        raw = enc.decode_single_token_bytes(t)
        return {"token": raw.decode("utf-8", errors="replace"), "logprob": lp, "bytes": list(raw)}

    return {**one(token, logprob), "top_logprobs": [one(t, lp) for t, lp in top]}


class ReplyReader:
    """Feed events; read pieces to stream, and the whole reply once Done arrives. With `enc` given,
    TokenLogprobs events (sent only when asked) become OpenAI's entries for the answer's tokens."""

    def __init__(self, stop_strings: list[str] = (), enc=None):
        self.stops = list(stop_strings)
        self.hold = max((len(s) for s in self.stops), default=1) - 1  # chars kept back: a stop may span deltas
        self.reasoning, self.content = "", ""
        self._pending = ""  # content not yet released (might begin a stop string)
        self.calls: list[ToolCall] = []  # the engine's calls to the client's functions, arguments as streamed so far
        self.call_ids: list[str] = []     # each call's id on the wire (its `id` / `call_id`)
        self.kind = ""  # step_kind of the message being read: analysis, preamble, final or call
        self.function_call = False  # ...and it is a call to one of the client's functions
        self.browser_call = False  # ...or to the built-in browser (web_search)
        self.stop_reason = ""
        self.hit_stop = False  # a client stop string ended the answer
        self.done: Done | None = None
        self.trimmed = False
        self.searches: list[BrowserStep] = []  # one per web_search call
        self.failed: int | None = None  # status of an error sent after the stream began (the request log)
        self.enc = enc
        self.logprobs: list[dict] | None = [] if enc is not None else None  # every content token's entry
        self._lp_pending: list[dict] = []  # entries not yet sent with a piece
        self._specials = frozenset(enc.encode_single_token(s) for s in enc.special_tokens_set) if enc else ()

    def feed(self, ev) -> list[Piece]:
        if isinstance(ev, TokenLogprobs):  # comes before the parser's events for its token
            if self.kind in ("final", "preamble") and self.logprobs is not None and not self.hit_stop \
                    and ev.token not in self._specials:
                entry = logprob_entry(self.enc, ev.token, ev.logprob, ev.top)
                self.logprobs.append(entry)
                self._lp_pending.append(entry)
            return []
        if isinstance(ev, BrowserStep):  # server.web_search: the browser answered a call
            self.searches.append(ev)
            return [Piece("web_search", call=len(self.searches) - 1)]
        if isinstance(ev, MessageStart):
            self.kind = step_kind(ev)
            self.function_call = self.kind == "call" and ev.recipient.startswith(FUNCTIONS + ".")
            self.browser_call = self.kind == "call" and ev.recipient.startswith(BROWSER + ".")
            if self.function_call:
                self.calls.append(function_call(ev.recipient.removeprefix(FUNCTIONS + "."), ""))
                self.call_ids.append(new_call_id())
                return [Piece("call", call=len(self.calls) - 1)]
            return []
        if isinstance(ev, TextDelta):
            return self._text(ev.channel, ev.text)
        if isinstance(ev, MessageEnd):
            self.kind, self.function_call, self.browser_call = "", False, False
            return []
        if isinstance(ev, Stop):
            self.stop_reason = ev.reason
            return self._release_all()
        if isinstance(ev, Done):
            self.done = ev
            self.stop_reason = self.stop_reason or ev.stop_reason
            return self._release_all()
        if isinstance(ev, ContextTrimmed):
            self.trimmed = True
        return []

    def _text(self, channel: str, text: str) -> list[Piece]:
        if self.hit_stop or not text:
            return []
        if self.function_call and self.calls:
            self.calls[-1] = dataclasses.replace(self.calls[-1], arguments=self.calls[-1].arguments + text)
            return [Piece("arguments", text, len(self.calls) - 1)]
        if self.browser_call:
            return []  # a web_search call: it becomes a web_search_call item (server.web_search), not text
        if self.kind in ("analysis", "call") or (not self.kind and channel == "analysis"):
            self.reasoning += text   # built-in tools' calls are not offered: kept apart with the reasoning
            return [Piece("reasoning", text)]
        return self._content(text)

    def _take_logprobs(self) -> list | None:
        if self.logprobs is None:
            return None
        taken, self._lp_pending = self._lp_pending, []
        return taken

    def _content(self, text: str) -> list[Piece]:
        if not self.stops:
            self.content += text
            return [Piece("content", text, logprobs=self._take_logprobs())]
        self._pending += text
        cut = min((i for i in (self._pending.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.hit_stop = True
            out, self._pending = self._pending[:cut], ""
        else:
            keep = len(self._pending) - self.hold
            out, self._pending = self._pending[:max(keep, 0)], self._pending[max(keep, 0):]
        self.content += out
        return [Piece("content", out, logprobs=self._take_logprobs())] if out else []

    def _release_all(self) -> list[Piece]:
        out, self._pending = self._pending, ""
        self.content += out
        return [Piece("content", out, logprobs=self._take_logprobs())] if out else []

    @property
    def finish_reason(self) -> str:
        if self.hit_stop:
            return "stop"
        if self.calls and self.stop_reason == "call":
            return "tool_calls"
        return FINISH.get(self.stop_reason, "stop")

    def usage(self, count_tokens) -> dict:
        """OpenAI's usage block; reasoning tokens are the analysis text's token count."""
        d = self.done
        prompt = d.prompt_tokens if d else 0
        completion = d.stats.generated_tokens if d else 0
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": d.reused_tokens if d else 0},
                "completion_tokens_details": {"reasoning_tokens": min(count_tokens(self.reasoning), completion)}}
