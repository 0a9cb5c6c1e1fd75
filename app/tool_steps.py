"""A turn's tool steps: what the model wrote between the user's message and its final answer.

An answer that uses tools is several harmony messages: chain of thought (analysis), preambles
for the user (commentary to nobody), calls (to `python` or `functions.NAME`) and the tools'
results. `ChatMessage.steps` keeps them in order, so that the transcript can show them, the
history can store them (as JSON: `to_json`/`from_json`) and the next request can hand the model
exactly what it wrote (the KV cache then carries on without re-reading the turn):

    TextStep   analysis or preamble text, as it streams
    CallStep   a call: its text while the model writes it, then the engine's ToolCall, the
               user's or the tool's answer and where it stands (STATUSES)

The messages sent back to the model come from engine.tools (`ToolCall.message`,
`tool_result_message`). No Qt here: app/turn.py applies engine events with `apply_event`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from engine.events import MessageEnd, MessageStart, TextDelta, ToolCall, step_kind
from engine.tools import DECLINED_CALL, DECLINED_CODE, PYTHON, tool_result_message

STOPPED = "The user stopped this before it finished."
PYTHON_OFF = "The python tool is switched off in the app's settings; continue without running code."
MAX_CALLS_PER_TURN = 24   # a model stuck calling tools again and again is stopped here
STATUSES = ("writing", "pending", "waiting", "running", "done", "declined", "answered", "stopped", "off", "invalid")
OPEN_STATES = ("writing", "pending", "waiting", "running")
__all__ = ["CallStep", "DECLINED_CALL", "DECLINED_CODE", "PYTHON", "TextStep", "apply_event", "calls", "engine_messages"]


@dataclass
class TextStep:
    """Chain of thought (type "analysis") or a preamble for the user (type "preamble")."""

    type: str
    channel: str
    text: str = ""
    open: bool = True      # the model is still writing it

    def to_json(self) -> dict:
        return {"type": self.type, "channel": self.channel, "text": self.text}


@dataclass
class CallStep:
    """A call to `recipient`: written (status "writing"), then the engine's `call`, then answered."""

    type: ClassVar[str] = "call"
    recipient: str
    channel: str
    arguments: str = ""                 # the text written so far (the call's own once it is whole)
    call: ToolCall | None = None        # the engine's call, once the model finished writing it
    status: str = "writing"             # one of STATUSES
    result: str | None = None           # what goes back to the model
    images: list[str] = field(default_factory=list)
    folder: str = ""                    # the chat's Python folder (images are read only there)
    problem: str | None = None          # one sentence for the user (the code raised, timed out...)

    @property
    def python(self) -> bool:
        return self.recipient == PYTHON

    @property
    def name(self) -> str:
        """The function's name without its namespace, or "python"."""
        return self.call.name if self.call is not None else ToolCall(self.recipient, "").name

    @property
    def error(self) -> str | None:
        """Why the model's call can't be used (bad JSON, unknown function), from the engine's checks."""
        return self.call.error if self.call is not None else None

    def resolve(self, status: str, result: str) -> None:
        self.status, self.result = status, result

    def messages(self) -> list[dict]:
        """The call as the model wrote it and the answer it gets, for the next request."""
        return [self.call.message, tool_result_message(self.call, self.result if self.result is not None else STOPPED)]

    def to_json(self) -> dict:
        call = self.call or ToolCall(self.recipient, self.arguments, self.channel)
        return {"type": "call", "recipient": call.recipient, "channel": call.channel, "arguments": call.arguments,
                "content_type": call.content_type, "recipient_after_channel": call.recipient_after_channel,
                "error": call.error, "status": self.status, "result": self.result, "images": list(self.images),
                "folder": self.folder, "problem": self.problem}

    @classmethod
    def from_json(cls, d: dict) -> "CallStep":
        call = ToolCall(str(d.get("recipient") or ""), str(d.get("arguments") or ""), d.get("channel") or "commentary",
                        d.get("content_type"), error=d.get("error"),
                        recipient_after_channel=bool(d.get("recipient_after_channel")))
        return cls(call.recipient, call.channel, call.arguments, call, d.get("status") or "done", d.get("result"),
                   list(d.get("images") or []), d.get("folder") or "", d.get("problem"))


Step = TextStep | CallStep


def to_json(steps: list[Step]) -> list[dict]:
    return [s.to_json() for s in steps]


def from_json(saved: list[dict]) -> list[Step]:
    """Steps as the history stored them (unknown entries are skipped: the chat still opens)."""
    out: list[Step] = []
    for d in saved if isinstance(saved, list) else []:
        if not isinstance(d, dict):
            continue
        if d.get("type") == "call":
            out.append(CallStep.from_json(d))
        elif d.get("type") in ("analysis", "preamble"):
            out.append(TextStep(d["type"], d.get("channel") or "", str(d.get("text") or ""), open=False))
    return out


def apply_event(steps: list[Step], ev) -> bool:
    """Record one engine event in `steps`. True when the event's text belongs to a call or a
    preamble (so it is not chain of thought); False for everything else."""
    if isinstance(ev, MessageStart):
        kind = step_kind(ev)
        if kind == "call":
            steps.append(CallStep(ev.recipient, ev.channel))
        elif kind in ("analysis", "preamble"):
            steps.append(TextStep(kind, ev.channel))
        return kind in ("call", "preamble")
    if isinstance(ev, TextDelta):
        last = steps[-1] if steps else None
        if last is None or ev.channel == "final":
            return False
        if isinstance(last, CallStep) and last.status == "writing":
            last.arguments += ev.text
            return True
        if isinstance(last, TextStep) and last.open:
            last.text += ev.text
            return last.type == "preamble"
        return False
    if isinstance(ev, MessageEnd):
        if steps and isinstance(steps[-1], TextStep):
            steps[-1].open = False
        return False
    if isinstance(ev, ToolCall):
        step = open_call(steps, "writing")
        if step is None:   # a call without its opening header event: keep it anyway
            step = CallStep(ev.recipient, ev.channel)
            steps.append(step)
        step.recipient, step.channel, step.arguments, step.call, step.status = (
            ev.recipient, ev.channel, ev.arguments, ev, "pending")
        return True
    return False


def open_call(steps: list[Step], status: str | None = None) -> CallStep | None:
    """The last call still in progress (any of OPEN_STATES, or exactly `status`)."""
    for step in reversed(steps):
        if isinstance(step, CallStep):
            wanted = step.status == status if status else step.status in OPEN_STATES
            return step if wanted else None
    return None


def calls(steps: list[Step]) -> list[CallStep]:
    return [s for s in steps if isinstance(s, CallStep)]


def close_open_steps(steps: list[Step], reason_text: str = STOPPED) -> None:
    """The turn ended (stopped, failed): a call still waiting or running gets `reason_text` as
    its result; one the model never finished writing is dropped (it was never a call)."""
    for step in list(steps):
        if isinstance(step, TextStep):
            step.open = False
        elif step.status in OPEN_STATES:
            if step.status == "writing" or step.call is None:
                steps.remove(step)
            else:
                step.resolve("stopped", step.result or reason_text)


def engine_messages(steps: list[Step]) -> list[dict]:
    """The harmony messages the model wrote in this turn (and the tools' answers), in order."""
    out: list[dict] = []
    for s in steps:
        if isinstance(s, TextStep):
            if s.text:
                out.append({"role": "assistant", "channel": s.channel, "content": s.text})
        elif s.call is not None:
            out += s.messages()
    return out


def worth_saving(steps: list[Step]) -> bool:
    """Only answers with a call or a preamble keep their steps (plain chain of thought is already
    the message's analysis text)."""
    return any(s.type in ("call", "preamble") for s in steps)
