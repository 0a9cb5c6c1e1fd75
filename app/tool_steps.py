"""A turn's tool steps: what the model wrote between the user's message and its final answer.

An answer that uses tools is several harmony messages: chain of thought (analysis), preambles
for the user (commentary to nobody), calls (to `python` or `functions.NAME`) and the tools'
results. `ChatMessage.steps` keeps them in order as plain JSON-able dicts, so that the transcript
can show them, the history can store them, and the next request can hand the model exactly what
it wrote (the KV cache then carries on without re-reading the turn):

    {"type": "analysis" | "preamble", "channel": str, "text": str}
    {"type": "call", "recipient": "python" | "functions.NAME", "channel": str, "arguments": str,
     "content_type": str | None, "recipient_after_channel": bool, "error": str | None,
     "status": "writing" | "pending" | "waiting" | "running" | "done" | "declined" | "answered"
               | "stopped" | "off" | "invalid",
     "result": str | None, "images": [str], "folder": str, "problem": str | None}

No Qt here: the controller applies engine events with `apply_event` and builds requests with
`engine_messages`.
"""
from __future__ import annotations

from engine.events import MessageEnd, MessageStart, TextDelta

PYTHON = "python"
DECLINED_CODE = "The user chose not to run this code. Continue without running it, or ask the user."
DECLINED_CALL = "The user declined to answer this call. Continue without it, or ask the user."
STOPPED = "The user stopped this before it finished."
PYTHON_OFF = "The python tool is switched off in the app's settings; continue without running code."
MAX_CALLS_PER_TURN = 24   # a model stuck calling tools again and again is stopped here
OPEN_STATES = ("writing", "pending", "waiting", "running")


def is_tool_call(ev) -> bool:
    """The engine's ToolCall event (engine.tools), matched by shape so this module loads without it."""
    return type(ev).__name__ == "ToolCall" and hasattr(ev, "recipient") and hasattr(ev, "arguments")


def apply_event(steps: list[dict], ev) -> bool:
    """Record one engine event in `steps`. True when the event's text belongs to a call or a
    preamble (so it is not chain of thought); False for everything else."""
    if isinstance(ev, MessageStart):
        if ev.recipient and ev.recipient != "all":
            steps.append({"type": "call", "recipient": ev.recipient, "channel": ev.channel, "arguments": "",
                          "content_type": getattr(ev, "content_type", None), "recipient_after_channel": False,
                          "error": None, "status": "writing", "result": None, "images": [], "folder": "",
                          "problem": None})
            return True
        if ev.channel in ("analysis", "commentary"):
            kind = "analysis" if ev.channel == "analysis" else "preamble"
            steps.append({"type": kind, "channel": ev.channel, "text": "", "open": True})
            return kind == "preamble"
        return False
    if isinstance(ev, TextDelta):
        last = steps[-1] if steps else None
        if last is None or ev.channel == "final":
            return False
        if last["type"] == "call" and last["status"] == "writing":
            last["arguments"] += ev.text
            return True
        if last.get("open"):
            last["text"] += ev.text
            return last["type"] == "preamble"
        return False
    if isinstance(ev, MessageEnd):
        if steps and steps[-1].get("open"):
            steps[-1].pop("open")
        return False
    if is_tool_call(ev):
        step = open_call(steps, "writing")
        if step is None:   # a call without its opening header event: keep it anyway
            step = {"type": "call", "images": [], "folder": "", "problem": None, "result": None}
            steps.append(step)
        step.update(recipient=ev.recipient, channel=ev.channel, arguments=ev.arguments,
                    content_type=getattr(ev, "content_type", None),
                    recipient_after_channel=bool(getattr(ev, "recipient_after_channel", False)),
                    error=getattr(ev, "error", None), status="pending")
        return True
    return False


def open_call(steps: list[dict], status: str | None = None) -> dict | None:
    """The last call still in progress (any of OPEN_STATES, or exactly `status`)."""
    for step in reversed(steps):
        if step.get("type") == "call":
            wanted = (step.get("status") == status) if status else step.get("status") in OPEN_STATES
            return step if wanted else None
    return None


def calls(steps: list[dict]) -> list[dict]:
    return [s for s in steps if s.get("type") == "call"]


def close_open_steps(steps: list[dict], reason_text: str = STOPPED) -> None:
    """The turn ended (stopped, failed): a call still waiting or running gets `reason_text` as
    its result; one the model never finished writing is dropped (it was never a call)."""
    for step in list(steps):
        step.pop("open", None)
        if step.get("type") == "call" and step.get("status") in OPEN_STATES:
            if step["status"] == "writing":
                steps.remove(step)
            else:
                step["status"], step["result"] = "stopped", step.get("result") or reason_text


def engine_messages(steps: list[dict]) -> list[dict]:
    """The harmony messages the model wrote in this turn (and the tools' answers), in order."""
    out: list[dict] = []
    for s in steps:
        if s.get("type") in ("analysis", "preamble"):
            if s.get("text"):
                out.append({"role": "assistant", "channel": s["channel"], "content": s["text"]})
        elif s.get("type") == "call" and s.get("status") != "writing":
            call = {"role": "assistant", "channel": s["channel"], "recipient": s["recipient"],
                    "content": s["arguments"]}
            if s.get("content_type"):
                call["content_type"] = s["content_type"]
            if s.get("recipient_after_channel"):
                call["recipient_after_channel"] = True
            out.append(call)
            result = s.get("result")
            out.append({"role": "tool", "name": s["recipient"], "channel": s["channel"],
                        "content": result if result is not None else STOPPED})
    return out


def worth_saving(steps: list[dict]) -> bool:
    """Only answers with a call or a preamble keep their steps (plain chain of thought is already
    the message's analysis text)."""
    return any(s.get("type") in ("call", "preamble") for s in steps)


def function_name(step: dict) -> str:
    r = step.get("recipient") or ""
    return r.split(".", 1)[1] if r.startswith("functions.") else r
