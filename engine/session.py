"""A chat session: the model, its KV cache across turns, and harmony in and out.

    session = ChatSession(model, enc, context_length=8192)
    for ev in session.reply(messages, effort="medium"):
        ...  # ContextTrimmed? , MessageStart/TextDelta/MessageEnd..., Stop, Done (always last)

`reply` gets the whole conversation each time. The cache is reused for the longest prefix of the
new prompt that it still holds: harmony drops a finished turn's analysis, so the history diverges
from what was generated right after the previous prompt. Sliding-window layers can't be trimmed,
so the session keeps cache snapshots at the end of each prompt (minus its last token) and rewinds
to the newest one that is still a prefix; only the tokens after it are prefilled. Regenerate,
edit-and-resend and switching conversations fall out of the same rule.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import mlx.core as mx

from engine.generate import Generation, GenerationStats, SamplingParams
from engine.harmony import Event, Stop, StreamParser, kept_messages, render_prompt
from engine.tokenizer import special_id
from engine.structured import reply_setup

MAX_SNAPSHOTS = 8  # each holds the sliding layers' windows (a few MB for gpt-oss-20b)
PREFILL_CHUNK = 512


@dataclass(frozen=True)
class ContextTrimmed:
    """The oldest turns had to go so the prompt fits the context (system/developer kept)."""

    dropped_messages: int
    truncated_chars: int = 0  # > 0 when even the last message alone was too long: its start was cut


@dataclass(frozen=True)
class Done:
    stats: GenerationStats
    stop_reason: str  # the parser's Stop reason
    reused_tokens: int = 0  # prompt tokens served from the cache
    prompt_tokens: int = 0  # the whole rendered prompt
    ttft_s: float = 0.0  # reply() start -> first token, cache rewind and prefill included


@dataclass
class _Snapshot:
    position: int
    state: object = field(repr=False)


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the longest common prefix of two id lists."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class ChatSession:
    """Holds the KV cache between turns; one per model (not thread-safe: use from one thread)."""

    def __init__(self, model, enc, context_length: int = 8192, prefill_chunk: int = PREFILL_CHUNK):
        self.model, self.enc = model, enc
        self.context_length = context_length
        self.prefill_chunk = prefill_chunk  # the memory plan shrinks it for long contexts
        self.cache = None
        self.held: list[int] = []  # the ids the cache holds, in order
        self.snapshots: list[_Snapshot] = []
        self.start_id = special_id(enc, "<|start|>")
        self.stop_ids = frozenset(special_id(enc, n) for n in ("<|return|>", "<|call|>"))

    def _last_message_start(self, ids: list[int]) -> int:
        return _last_start(ids, self.start_id)

    def reset(self) -> None:
        """Forget the cache (the next reply prefills from scratch)."""
        self.cache, self.held, self.snapshots = None, [], []

    # ------------------------------------------------------------------ prompt fitting

    def fit_prompt(self, messages: list[dict], max_tokens: int, **render) -> tuple[list[int], ContextTrimmed | None]:
        """Render, dropping the oldest turns until the prompt leaves room to answer."""
        budget = self.context_length - min(max_tokens, self.context_length // 2)
        messages = kept_messages(messages)
        ids = render_prompt(messages, self.enc, **render)
        dropped = 0
        # Once trimming, go well below the budget so the next turns keep a stable prefix
        # (and reuse the cache) instead of dropping one turn, and re-prefilling, every time.
        target = budget if len(ids) <= budget else budget * 3 // 4
        while len(ids) > target and len(messages) > 1:
            cut = _next_turn_start(messages)
            dropped += cut
            messages = messages[cut:]
            ids = render_prompt(messages, self.enc, **render)
        truncated = 0
        if len(ids) > budget and messages:
            last = dict(messages[-1])
            excess_tokens = len(ids) - budget
            text_ids = self.enc.encode_ordinary(last.get("content") or "")
            kept_text = self.enc.decode(text_ids[excess_tokens + 8:])  # margin: re-encoding may differ
            truncated = len(last.get("content") or "") - len(kept_text)
            last["content"] = kept_text
            ids = render_prompt([last], self.enc, **render)
        event = ContextTrimmed(dropped, truncated) if dropped or truncated else None
        return ids, event

    # ------------------------------------------------------------------ cache reuse

    def prepare(self, ids: list[int], cancel: threading.Event | None = None,
                marks: tuple[int, ...] = ()) -> int:
        """Make the cache hold exactly ids[:-1], reusing what it can. Returns the reused count.

        The last prompt token is always fed by the generation so that it yields the first token.
        A snapshot is kept at ids[:-1] and at each position in `marks` (e.g. where the last user
        message starts, so that editing it reuses everything before).
        """
        target = len(ids) - 1
        reusable = min(common_prefix(self.held, ids), target)
        snap = next((s for s in reversed(self.snapshots) if s.position <= reusable), None)
        if self.cache is not None and reusable == len(self.held) == self.cache.offset:
            # The new prompt extends everything held (a tool result after a call): no rewind needed.
            snap = _Snapshot(reusable, None)
        if self.cache is None or snap is None:
            self.cache, self.held, self.snapshots = self.model.make_cache(), [], []
            start = 0
        else:
            if snap.state is not None:
                self.cache.restore(snap.state)
            start = snap.position
            self.held = self.held[:start]
            # A full-attention cache is overwritten in place after the rewind: later snapshots die.
            self.snapshots = [s for s in self.snapshots if s.position <= start]
        stops = sorted({m for m in marks if start < m < target} | {target})
        pos = start
        for stop in stops:
            for i in range(pos, stop, self.prefill_chunk):
                if cancel is not None and cancel.is_set():
                    return start
                chunk = ids[i:min(i + self.prefill_chunk, stop)]
                self.model.hidden(mx.array([chunk]), self.cache)
                mx.eval(self.cache.state())
                self.held += chunk
            pos = stop
            if not self.snapshots or self.snapshots[-1].position < stop:
                self.snapshots.append(_Snapshot(stop, self.cache.snapshot()))
        self.snapshots = self.snapshots[-MAX_SNAPSHOTS:]
        return start

    # ------------------------------------------------------------------ one turn

    def reply(self, messages: list[dict], effort: str = "medium", developer: str | None = None,
              sampling: SamplingParams = SamplingParams(), max_tokens: int = 2048,
              cancel: threading.Event | None = None, date: str | None = None, identity: str | None = None,
              tools: list | None = None, python: bool = False, tool_choice=None,
              response_format: dict | None = None, final_only: bool = False):
        """Generate the assistant's answer to `messages` (ending with the user's message or a tool result).

        Yields ContextTrimmed (if needed), then harmony parser events, then Done. Model output
        never raises: a malformed reply ends with Stop("malformed: ..."). With tools (engine.tools.Tool
        or OpenAI function dicts), a reply that calls one yields a ToolCall then Stop("call"):
        append `call.message` and the tool's answer (tool_result_message) and call reply again; the
        cache carries on from the call. response_format: OpenAI's {"type": "json_schema",
        "json_schema": {...}} or {"type": "json_object"}: the final answer is held to it.
        """
        started = time.perf_counter()
        tools, constraint, extra = reply_setup(self.enc, tools, python, tool_choice, response_format, final_only)
        render = {"effort": effort, "date": date, "developer": developer, **extra}
        if identity:
            render["identity"] = identity
        ids, trimmed = self.fit_prompt(messages, max_tokens, **render)
        if trimmed:
            yield trimmed
        reused = self.prepare(ids, cancel, marks=(self._last_message_start(ids),))
        parser = StreamParser(self.enc, tools=tools)
        if len(self.held) != len(ids) - 1:  # cancelled while prefilling
            stats = GenerationStats(prompt_tokens=len(ids) - reused, stop_reason="cancelled")
            yield from parser.finish("cancelled")
            yield Done(stats, "cancelled", reused, len(ids), 0.0)
            return

        room = max(1, self.context_length - len(ids))
        gen = Generation(self.model, ids[-1:], self.cache, sampling=sampling, max_tokens=min(max_tokens, room),
                         stop_ids=self.stop_ids, cancel=cancel, prefill_chunk=self.prefill_chunk,
                         constraint=constraint)
        self.held.append(ids[-1])
        stop: Stop | None = None
        ttft = 0.0
        tokens = iter(gen)
        try:
            for token in tokens:
                if not ttft:
                    ttft = time.perf_counter() - started
                self.held.append(token)
                for ev in parser.feed(token):
                    yield ev
                    if isinstance(ev, Stop):
                        stop = ev
                if stop is not None:
                    break
        finally:
            tokens.close()  # its cleanup lets the queued decode step land in the cache
            if self.cache.offset != len(self.held):  # never trust a cache we can't account for
                self.reset()
        if stop is None:
            reason = {"stop": "return", "max_tokens": "max_tokens"}.get(gen.stats.stop_reason, "cancelled")
            events = parser.finish(reason)
            yield from events
            stop = events[-1] if events else Stop(reason)
        stats = gen.stats
        stats.prompt_tokens = len(ids) - reused
        yield Done(stats, stop.reason, reused, len(ids), ttft)


def _last_start(ids: list[int], start_id: int) -> int:
    """Index of the last <|start|> before the prompt's closing `<|start|>assistant`."""
    for i in range(len(ids) - 3, -1, -1):
        if ids[i] == start_id:
            return i
    return 0


def _next_turn_start(messages: list[dict]) -> int:
    """How many leading messages make up the oldest turn (its user message and the replies)."""
    i = 1
    while i < len(messages) - 1 and messages[i]["role"] != "user":
        i += 1
    return i


__all__ = ["ChatSession", "ContextTrimmed", "Done", "Event", "common_prefix"]
