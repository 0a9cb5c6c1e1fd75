"""What a chat session yields while it answers. Plain dataclasses: no MLX, no Qt, so the app,
the terminal chat and tests can match on them (`isinstance`) without loading the engine.

    ContextTrimmed?  PrefillProgress*  (MessageStart TextDelta* MessageEnd)*  ToolCall?  Stop  Done

MessageStart/TextDelta/MessageEnd/ToolCall/Stop come from the harmony stream parser; ContextTrimmed,
PrefillProgress and Done from the session. Done is always last. `step_kind` says what a message
is (reasoning, a preamble, the answer, a call): the one place that reads channels and recipients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MessageStart:
    role: str
    channel: str
    recipient: str | None = None  # "functions.x" for a tool call (" to=functions.x" in the header)
    content_type: str | None = None  # "<|constrain|>json" for a JSON call, "code" for python

    @property
    def user_visible(self) -> bool:
        """Final answers and preambles (commentary to nobody) are for the user; the rest is not."""
        return step_kind(self) in ("final", "preamble")


def step_kind(start: MessageStart) -> str:
    """What a message is: "call" (addressed to a tool), "preamble" (commentary to nobody: words for
    the user before calls), "final" (the answer) or "analysis" (chain of thought)."""
    if start.recipient and start.recipient != "all":
        return "call"
    return {"commentary": "preamble", "final": "final"}.get(start.channel, "analysis")


@dataclass(frozen=True)
class TextDelta:
    channel: str
    text: str


@dataclass(frozen=True)
class MessageEnd:
    channel: str


FUNCTIONS = "functions"  # the namespace of user functions: recipients are "functions.NAME"


@dataclass(frozen=True)
class ToolCall:
    """The model called a tool (its reply ended in <|call|>).

    `arguments` is the raw text the model wrote; `parsed` the decoded JSON (functions only);
    `error` one sentence when the call can't be run (bad JSON, schema violation, unknown tool):
    send `engine.tools.tool_result_message(call, call.error)` back so the model can correct itself.
    `message` is the assistant message to append to the conversation, as the model wrote it.
    """

    recipient: str  # "functions.get_weather" or "python"
    arguments: str
    channel: str = "commentary"
    content_type: str | None = None
    parsed: object = None
    error: str | None = None
    recipient_after_channel: bool = False  # header order the model used (kept for exact re-rendering)

    @property
    def name(self) -> str:
        """The function's name without its namespace ("get_weather")."""
        return self.recipient.split(".", 1)[1] if self.recipient.startswith(FUNCTIONS + ".") else self.recipient

    @property
    def message(self) -> dict:
        m = {"role": "assistant", "channel": self.channel, "recipient": self.recipient, "content": self.arguments}
        if self.content_type:
            m["content_type"] = self.content_type
        if self.recipient_after_channel:
            m["recipient_after_channel"] = True
        return m


@dataclass(frozen=True)
class Stop:
    reason: str  # "return" | "call" | "max_tokens" | "cancelled" | "malformed: <what>"


@dataclass(frozen=True)
class ContextTrimmed:
    """The oldest turns had to go so the prompt fits the context (system/developer kept)."""

    dropped_messages: int
    truncated_chars: int = 0  # always 0 now: a user's message is never cut (kept for old callers)


@dataclass(frozen=True)
class PromptTooLong:
    """Even the system message, the developer instructions and the last turn alone don't fit.

    Nothing was generated. The counts are tokens unless named otherwise; `culprit` says which part
    to shorten: "message" (the last turn), "instructions" (the developer instructions alone are
    too long) or "both" (each would fit, not together).
    """

    culprit: str
    prompt_tokens: int        # the smallest prompt possible: system + developer + last turn
    message_tokens: int       # the last turn as rendered
    message_chars: int        # characters of the last turn's text
    instructions_tokens: int  # the developer message as rendered (0 without one)
    system_tokens: int        # the system message and the closing `<|start|>assistant`
    budget: int               # what the prompt may use: context minus the room kept for the answer
    context_length: int
    answer_tokens: int        # the room kept for the answer

    @property
    def room_for_message(self) -> int:
        """Tokens the last turn may use once the fixed parts are in."""
        return max(0, self.budget - self.system_tokens - self.instructions_tokens)

    def describe(self) -> str:
        """One plain sentence (the terminal chat's; the app words its own with its Settings names)."""
        if self.culprit == "instructions":
            return (f"The developer instructions are {self.instructions_tokens:,} tokens, more than the "
                    f"{self.budget:,} tokens a prompt may use in a {self.context_length:,}-token context "
                    f"({self.answer_tokens:,} are kept for the answer); shorten them.")
        if self.culprit == "both":
            return (f"The message ({self.message_tokens:,} tokens) and the developer instructions "
                    f"({self.instructions_tokens:,} tokens) don't fit together in the {self.budget:,} tokens a prompt "
                    f"may use in a {self.context_length:,}-token context; shorten one of them.")
        return (f"The message is {self.message_tokens:,} tokens ({self.message_chars:,} characters) but at most "
                f"{self.room_for_message:,} fit in the {self.context_length:,}-token context "
                f"({self.answer_tokens:,} are kept for the answer); shorten it or use a longer context.")


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


Event = MessageStart | TextDelta | MessageEnd | ToolCall | Stop  # what the harmony parser yields
SessionEvent = ContextTrimmed | PromptTooLong | PrefillProgress | Event | Done  # what ChatSession.reply yields

__all__ = ["ContextTrimmed", "Done", "Event", "FUNCTIONS", "MessageEnd", "MessageStart", "PrefillProgress",
           "PromptTooLong", "SessionEvent", "Stop", "TextDelta", "ToolCall", "step_kind"]
