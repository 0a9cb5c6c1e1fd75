"""A scripted stand-in for engine.session.ChatSession: yields a fixed harmony event stream.

Used only where a deterministic stream is needed (analysis/final split, "Thought for N s",
stopping mid-answer). It yields the engine's own event classes and shares the real session's
sampling rule; test_scripted_session.py fails when its methods drift from the real session's.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from engine.events import ContextTrimmed, Done, MessageEnd, MessageStart, Stop, TextDelta  # noqa: F401
from engine.generate import SamplingParams
from engine.session import ChatSession


@dataclass
class FakeStats:
    prompt_tokens: int = 0
    generated_tokens: int = 0
    ttft_s: float = 0.0
    prefill_tps: float = 0.0
    decode_tps: float = 0.0
    peak_memory_bytes: int = 0
    stop_reason: str = "stop"


class FakeClock:
    """A monotonic clock the script advances, so thinking time is exact and instant."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def answer_script(analysis="Let me think.", final="Hello **there**.", think_s=3.0, pieces=4):
    """(seconds_to_advance, event) steps: an analysis message, then a final answer in pieces."""
    steps = [(0.0, MessageStart("assistant", "analysis"))]
    steps += [(think_s / max(len(analysis), 1), TextDelta("analysis", ch)) for ch in analysis]
    steps += [(0.0, MessageEnd("analysis")), (0.0, MessageStart("assistant", "final"))]
    size = max(1, len(final) // pieces)
    steps += [(0.01, TextDelta("final", final[i:i + size])) for i in range(0, len(final), size)]
    steps += [(0.0, MessageEnd("final")), (0.0, Stop("return"))]
    return steps


class ScriptedSession:
    """reply() yields the script; `delay` really sleeps per step so tests can stop mid-stream.
    Stands in for engine.open_chat's handle (engine.session.ChatSession)."""

    context_length = 8192
    enc = None
    defaults = SamplingParams()
    sampling = ChatSession.sampling  # the one rule, not a copy of it

    def __init__(self, script=None, clock: FakeClock | None = None, delay: float = 0.0, queue=None,
                 name: str = "scripted model", greedy: bool = False):
        self.name, self.greedy = name, greedy
        self.script = script if script is not None else answer_script()
        self.queue = list(queue or [])   # scripts for the next replies, in order (then `script`)
        self.clock = clock
        self.delay = delay
        self.calls: list[dict] = []
        self.started = threading.Event()

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def reset(self) -> None:
        pass

    def render(self, messages, effort="medium", developer=None, date=None, identity=None, tools=None, python=False,
               tool_choice=None, answer_format=None, final_only=False, browser=None):
        """What the local server asks first (its length decides 413): a short stand-in prompt."""
        from engine.session import RenderedPrompt
        return RenderedPrompt([1, 2, 3])

    def reply(self, messages, effort="medium", developer=None, sampling=None, max_tokens=2048, cancel=None,
              date=None, identity=None, tools=None, python=False, tool_choice=None, answer_format=None,
              final_only=False, prompt=None, browser=None, owner=None):
        offered = {"tools": tools, "python": python, "answer_format": answer_format, "tool_choice": tool_choice,
                   "browser": browser}
        self.calls.append({"messages": [dict(m) for m in messages], "effort": effort, "developer": developer,
                           "max_tokens": max_tokens, "sampling": sampling,
                           **{k: v for k, v in offered.items() if v}})
        self.started.set()
        n = 0
        reason = "stop"
        for advance, ev in (self.queue.pop(0) if self.queue else self.script):
            if cancel is not None and cancel.is_set():
                yield Stop("cancelled")
                yield Done(FakeStats(generated_tokens=n, stop_reason="cancelled"), "cancelled")
                return
            if self.clock is not None:
                self.clock.now += advance
            if self.delay:
                time.sleep(self.delay)
            n += isinstance(ev, TextDelta)
            if isinstance(ev, Stop) and ev.reason == "call":
                reason = "call"
            yield ev
        yield Done(FakeStats(prompt_tokens=12, generated_tokens=n, ttft_s=0.05, decode_tps=42.0), reason)


def scripted_loader(session):
    """A load_engine stand-in for EngineWorker that returns `session` as the loaded engine."""
    return lambda folder, context_length: session


def call_script(code: str, analysis: str = "I'll compute it.", recipient: str = "python", preamble: str = ""):
    """A reply that thinks, optionally says a preamble, then calls `recipient` with `code`, ending in
    <|call|>: the engine's own events, its ToolCall included (python calls go on the analysis channel)."""
    from engine.tools import ToolCall
    channel = "analysis" if recipient == "python" else "commentary"
    steps = [(0.0, MessageStart("assistant", "analysis"))]
    steps += [(0.0, TextDelta("analysis", analysis)), (0.0, MessageEnd("analysis"))]
    if preamble:
        steps += [(0.0, MessageStart("assistant", "commentary")), (0.0, TextDelta("commentary", preamble)),
                  (0.0, MessageEnd("commentary"))]
    steps += [(0.0, MessageStart("assistant", channel, recipient))]
    steps += [(0.0, TextDelta(channel, code[i:i + 8])) for i in range(0, len(code), 8)]
    content_type = "code" if recipient == "python" else "<|constrain|>json"
    steps += [(0.0, MessageEnd(channel)),
              (0.0, ToolCall(recipient, code, channel=channel, content_type=content_type)), (0.0, Stop("call"))]
    return steps
