"""What a chat session yields while it answers. Plain dataclasses: no MLX, no Qt, so the app,
the terminal chat and tests can match on them (`isinstance`) without loading the engine.

    ContextTrimmed?  PrefillProgress*  (MessageStart TextDelta* MessageEnd)*  Stop  Done

MessageStart/TextDelta/MessageEnd/Stop come from the harmony stream parser; ContextTrimmed,
PrefillProgress and Done from the session. Done is always last.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MessageStart:
    role: str
    channel: str
    recipient: str | None = None  # "functions.x" for a tool call (" to=functions.x" in the header)


@dataclass(frozen=True)
class TextDelta:
    channel: str
    text: str


@dataclass(frozen=True)
class MessageEnd:
    channel: str


@dataclass(frozen=True)
class Stop:
    reason: str  # "return" | "call" | "max_tokens" | "cancelled" | "malformed: <what>"


@dataclass(frozen=True)
class ContextTrimmed:
    """The oldest turns had to go so the prompt fits the context (system/developer kept)."""

    dropped_messages: int
    truncated_chars: int = 0  # > 0 when even the last message alone was too long: its start was cut


@dataclass(frozen=True)
class PrefillProgress:
    """The prompt is being read: `done` of `total` new prompt tokens are in the cache."""

    done: int
    total: int

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


@dataclass(frozen=True)
class Done:
    stats: Any  # engine.generate.GenerationStats
    stop_reason: str  # the parser's Stop reason
    reused_tokens: int = 0  # prompt tokens served from the cache
    prompt_tokens: int = 0  # the whole rendered prompt
    ttft_s: float = 0.0  # reply() start -> first token, cache rewind and prefill included


Event = MessageStart | TextDelta | MessageEnd | Stop
SessionEvent = ContextTrimmed | PrefillProgress | MessageStart | TextDelta | MessageEnd | Stop | Done

__all__ = ["ContextTrimmed", "Done", "Event", "MessageEnd", "MessageStart", "PrefillProgress",
           "SessionEvent", "Stop", "TextDelta"]
