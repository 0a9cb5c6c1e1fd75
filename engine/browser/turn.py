"""One assistant turn with the browser: the model's calls are run and answered until it is done.

    for ev in browse_turn(session, messages, tool, effort="medium"):
        ...  # the session's events, plus a BrowserStep after each call the tool answered

`messages` grows in place with what the turn wrote (analysis, each call and the tool's answer,
the final answer), so the next reply (and the next turn) carries on from it and the session's
cache is reused from the call on. The calls run inline on the caller's thread: right for the
terminal chat and the server's engine thread (a search is milliseconds); the app runs them on its
tools thread instead. At most `max_steps` calls per turn: a model stuck in a loop is told so.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.browser.spec import BROWSER
from engine.events import MessageEnd, MessageStart, TextDelta
from engine.tools import ToolCall, tool_result_message

MAX_STEPS = 12


@dataclass(frozen=True)
class BrowserStep:
    """The browser answered a call: what was asked (`call.parsed`, or `call.error`) and what the
    model read (`output`, the page view or the sentence about its mistake)."""

    call: ToolCall
    output: str
    cursor: int | None = None  # the page's cursor when a page was shown

    @property
    def action(self) -> str:
        """search / open / find."""
        return self.call.recipient.split(".", 1)[-1]


def browse_turn(session, messages: list[dict], tool, max_steps: int = MAX_STEPS, **reply):
    """Yield the session's events and a BrowserStep per browser call; see the module docstring.
    `reply` goes to session.reply (effort, sampling, max_tokens, cancel, ...), `browser=` included."""
    reply.setdefault("browser", tool.source_names)
    cancel = reply.get("cancel")
    for step in range(max_steps + 2):  # the calls, the call told to stop, the answer after it
        call, texts = None, {}
        for ev in session.reply(messages, **reply):
            if isinstance(ev, MessageStart):
                texts = {"channel": ev.channel, "recipient": ev.recipient, "parts": []}
            elif isinstance(ev, TextDelta) and texts:
                texts["parts"].append(ev.text)
            elif isinstance(ev, MessageEnd) and texts and texts["recipient"] is None:
                messages.append({"role": "assistant", "channel": texts["channel"], "content": "".join(texts["parts"])})
                texts = {}
            elif isinstance(ev, ToolCall):
                call = ev
            yield ev
        if call is None or not call.recipient.startswith(BROWSER + ".") or (cancel is not None and cancel.is_set()):
            return
        if step > max_steps:  # told to answer and still calling: the turn ends here
            return
        before = tool.next_cursor
        if step >= max_steps:
            output = f"That is {max_steps} browser calls in one answer; answer with what you have found."
        else:
            output = call.error or tool.run(call.recipient, call.arguments)
        shown = before if tool.next_cursor > before else None
        messages += [call.message, tool_result_message(call, output)]
        reply.pop("tool_choice", None)  # a forced call is the first one only
        yield BrowserStep(call, output, shown)
