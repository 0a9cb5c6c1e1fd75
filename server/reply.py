"""Reads the engine's harmony events for one request and keeps reasoning, answer and calls apart.

What a message is comes from engine.events.step_kind: chain of thought is reasoning; the final
answer and preambles (commentary to nobody) are content; a call to `functions.NAME` is a tool call
whose text is its JSON arguments (calls to built-in tools, never offered here, count as reasoning).
Harmony tokens never reach the text: the engine's parser strips them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from engine.browser.turn import BrowserStep
from engine.events import FUNCTIONS, ContextTrimmed, Done, MessageEnd, MessageStart, Stop, TextDelta, step_kind
from engine.tools import BROWSER

FINISH = {"return": "stop", "call": "tool_calls", "max_tokens": "length", "cancelled": "stop"}


@dataclass
class Piece:
    """A piece of the reply to stream: kind is reasoning, content, call (a new call) or arguments."""

    kind: str
    text: str = ""
    call: int = -1  # index into ReplyReader.calls for call/arguments


def merge(pieces: list[Piece]) -> list[Piece]:
    """Join neighbouring text pieces of the same kind (and call) into one: a batch of deltas that
    were all ready at once goes out as one chunk. The text, concatenated, is unchanged."""
    out: list[Piece] = []
    for p in pieces:
        last = out[-1] if out else None
        if last is not None and p.kind == last.kind != "call" and p.call == last.call:
            out[-1] = Piece(p.kind, last.text + p.text, p.call)
        else:
            out.append(p)
    return out


@dataclass
class ToolCallOut:
    name: str
    id: str = field(default_factory=lambda: "call_" + secrets.token_hex(12))
    arguments: str = ""


class ReplyReader:
    """Feed events; read pieces to stream, and the whole reply once Done arrives."""

    def __init__(self, stop_strings: list[str] = ()):
        self.stops = list(stop_strings)
        self.hold = max((len(s) for s in self.stops), default=1) - 1  # chars kept back: a stop may span deltas
        self.reasoning, self.content = "", ""
        self._pending = ""  # content not yet released (might begin a stop string)
        self.calls: list[ToolCallOut] = []
        self.kind = ""  # step_kind of the message being read: analysis, preamble, final or call
        self.function_call = False  # ...and it is a call to one of the client's functions
        self.browser_call = False  # ...or to the built-in browser (web_search)
        self.stop_reason = ""
        self.hit_stop = False  # a client stop string ended the answer
        self.done: Done | None = None
        self.trimmed = False
        self.searches: list[BrowserStep] = []  # one per web_search call

    def feed(self, ev) -> list[Piece]:
        if isinstance(ev, BrowserStep):  # server.web_search: the browser answered a call
            self.searches.append(ev)
            return [Piece("web_search", call=len(self.searches) - 1)]
        if isinstance(ev, MessageStart):
            self.kind = step_kind(ev)
            self.function_call = self.kind == "call" and ev.recipient.startswith(FUNCTIONS + ".")
            self.browser_call = self.kind == "call" and ev.recipient.startswith(BROWSER + ".")
            if self.function_call:
                self.calls.append(ToolCallOut(ev.recipient.removeprefix(FUNCTIONS + ".")))
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
            self.calls[-1].arguments += text
            return [Piece("arguments", text, len(self.calls) - 1)]
        if self.browser_call:
            return []  # a web_search call: it becomes a web_search_call item (server.web_search), not text
        if self.kind in ("analysis", "call") or (not self.kind and channel == "analysis"):
            self.reasoning += text   # built-in tools' calls are not offered: kept apart with the reasoning
            return [Piece("reasoning", text)]
        return self._content(text)

    def _content(self, text: str) -> list[Piece]:
        if not self.stops:
            self.content += text
            return [Piece("content", text)]
        self._pending += text
        cut = min((i for i in (self._pending.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.hit_stop = True
            out, self._pending = self._pending[:cut], ""
        else:
            keep = len(self._pending) - self.hold
            out, self._pending = self._pending[:max(keep, 0)], self._pending[max(keep, 0):]
        self.content += out
        return [Piece("content", out)] if out else []

    def _release_all(self) -> list[Piece]:
        out, self._pending = self._pending, ""
        self.content += out
        return [Piece("content", out)] if out else []

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
