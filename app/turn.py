"""The answer being written: its stream, its store writes, its tool steps and the user's consent.

One Turn per answer. The controller starts it, hands it the engine worker's events for its
requests, and forgets it once it has ended. A turn is one or more requests to the model: the
first, then one after each tool result (the KV cache carries on from the call). The turn asks
its host (the controller) for everything outside it: requests to the engine and the tools
worker, the user's "Always run" choice, repainting its row, and saying that it ended.

"Thought for N s" counts the model's time only: the clock stops while a call waits for the user
or runs, and starts again where it was (`ChatMessage.think_started` is shifted back by the time
already counted).
"""
from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Protocol

from app import tool_steps
from app.context_notice import too_long_notice, trimmed_notice
from app.conversation import ChatMessage
from app.store import StoredMessage, StoreError
from app.mcp import steps as mcp_steps
from app.tool_steps import CallStep
from engine.events import ContextTrimmed, MessageEnd, MessageStart, PrefillProgress, PromptTooLong, TextDelta, step_kind

if TYPE_CHECKING:
    from app.tool_calls import ToolCalls

SAVE_EVERY_S = 1.0   # the answer being written is saved this often, so a crash keeps most of it
NO_ANSWER = "The model ended without an answer; try Regenerate or rephrase."


def stop_notice(reason: str) -> str:
    """One sentence under an answer that ended other than normally ('' when it ended normally)."""
    if reason == "max_tokens":
        return "The answer reached the maximum length; raise “Max answer length” in Settings for longer answers."
    if reason.startswith("malformed"):
        return "The model's reply ended in an unexpected format; try Regenerate."
    if reason == "call":
        return "The model tried to call a tool, which this app does not offer; try Regenerate or rephrase."
    return ""


def clause(e: Exception) -> str:
    """A one-sentence error as a clause inside another sentence."""
    text = str(e).strip().rstrip(".")
    return text[:1].lower() + text[1:]


def engine_history(rows: list[ChatMessage]) -> list[dict]:
    """The conversation for the engine. An answer that used tools is sent as the model wrote it
    (calls, results, then the final text: harmony keeps commentary calls of earlier turns);
    any other message as its final text only."""
    out: list[dict] = []
    for m in rows:
        if m.role == "assistant" and tool_steps.calls(m.steps):
            out += tool_steps.engine_messages(m.steps)
            if m.text.strip():
                out.append({"role": "assistant", "content": m.text, "channel": "final"})
        elif m.text.strip():
            out.append({"role": m.role, "content": m.text, "channel": "final"})
    return out


class TurnHost(Protocol):
    """What a turn needs from outside (app.controller.ChatController)."""

    store: object
    settings: object
    calls: "ToolCalls"    # app/tool_calls.py: where the tools' calls are started

    def generate(self, messages: list[dict], options: dict) -> int: ...      # -> request id
    def cancel(self, request_id: int) -> None: ...
    def python_always(self, conversation_id: int) -> bool: ...
    def set_python_always(self, conversation_id: int, on: bool) -> None: ...
    def show_turn(self, turn: "Turn") -> None: ...                            # repaint its row
    def turn_ended(self, turn: "Turn") -> None: ...
    def saving_failed(self, turn: "Turn", message: str) -> None: ...
    def longer_context_offered(self) -> bool: ...
    def take_back(self, turn: "Turn") -> bool: ...                           # a refused message: out of the chat


class Turn:
    """One answer in conversation `conv`, from the user's message to its end."""

    def __init__(self, host: TurnHost, conv: int, history: list[dict], options: dict, effort: str):
        self.host, self.conv, self.history, self.options = host, conv, history, options
        self.message = ChatMessage(role="assistant", effort=effort, state="streaming", phase="queued")
        self.request_id = -1           # the engine or tools request this turn waits for
        self.started = False           # the engine began the current request (else it waits its turn)
        self.on_model = False          # a request to the model is out (not a tool step, not the user's turn)
        self.stats: dict = {}
        self.stopping = False          # Stop was pressed while code ran
        self.ended = False
        self.too_long: dict | None = None   # the engine's PromptTooLong, as a dict, when it refused the prompt
        self._saved_at = 0.0

    # -- the requests ----------------------------------------------------------------------
    def start(self) -> None:
        self.save_progress()
        self._generate(self.history)

    def _generate(self, messages: list[dict]) -> None:
        self.message.phase, self.started, self.on_model = "queued", False, True
        self.request_id = self.host.generate(messages, self.options)

    def on_mcp_tools(self, tools: list, notes: list[str]) -> None:
        """The chat's MCP tools are listed (their servers started): offer them too, say in a notice
        what went wrong, and start (app/tool_calls.py)."""
        if self.ended:           # stopped while its servers started
            return
        self.options = {**self.options, "tools": [*(self.options.get("tools") or []), *tools]}
        self.message.notice = " ".join(n for n in notes if n)
        self.start()

    def on_started(self) -> None:
        """The engine took this turn's request (until then it answered another one)."""
        self.started = True
        if self.message.phase == "queued":
            self.message.phase = "waiting"
        self.host.show_turn(self)

    # -- events from the engine --------------------------------------------------------------
    def apply(self, t: float, ev) -> None:
        """Apply one engine.events event (see app/worker.py) to the message."""
        msg = self.message
        if msg.phase == "queued":   # an event means the request runs (its start signal may lag)
            msg.phase = "waiting"
        if tool_steps.apply_event(msg.steps, ev):   # a call's code or a preamble: not chain of thought
            if isinstance(ev, MessageStart):
                self._stop_thinking(t)
                msg.phase = "tool" if step_kind(ev) == "call" else "answering"
            return
        if isinstance(ev, MessageStart):
            kind = step_kind(ev)
            if kind == "analysis":
                msg.phase = "thinking"
                if msg.analysis.strip() and not msg.analysis.endswith("\n\n"):
                    msg.analysis += "\n\n"     # one reasoning message per paragraph, not run together
                # Resume the clock where it stopped: only the model's own time is counted.
                msg.think_started = t - (msg.thought_seconds or 0.0)
            elif kind == "final":
                self._stop_thinking(t)
                msg.phase = "answering"
        elif isinstance(ev, TextDelta):
            if ev.channel == "final":
                msg.text += ev.text
            else:
                msg.analysis += ev.text
        elif isinstance(ev, MessageEnd):
            if ev.channel != "final":
                self._stop_thinking(t)
        elif isinstance(ev, PrefillProgress):
            msg.reading = ev.fraction if ev.fraction < 1.0 else None
        elif isinstance(ev, ContextTrimmed):
            msg.notice = trimmed_notice(ev.dropped_messages)
        elif isinstance(ev, PromptTooLong):
            where = self.options.get("instructions_in", "Settings")   # the chat's own instructions say so
            self.too_long = dict(dataclasses.asdict(ev), instructions_in=where)
            msg.notice = too_long_notice(self.too_long)

    def _stop_thinking(self, t: float) -> None:
        msg = self.message
        if msg.think_started is not None:
            msg.thought_seconds = t - msg.think_started
            msg.think_started = None

    def on_finished(self, stats: dict, reason: str) -> None:
        """The engine's request ended (Done): take a call, or end the answer."""
        self.on_model = False
        if reason == "call" and self._take_call(stats):
            return
        if reason == "too_long" and self.too_long is not None:
            # Suggest a longer context only when Settings offers one; a refused message goes back
            # to the message box rather than staying as a bubble (the host decides; False: it stays).
            self.message.notice = too_long_notice(self.too_long, self.host.longer_context_offered())
            if self.too_long.get("culprit") in ("message", "both") and self.host.take_back(self):
                self.ended, self.on_model = True, False
                return
        notice = stop_notice(reason)
        if notice:
            self.message.notice = notice
        self.finish(stats, reason)

    def on_failed(self, message: str) -> None:
        self.on_model = False
        self.message.notice = message
        self.finish({}, "error")

    def stop(self) -> None:
        """End the answer now; what was written is kept and saved as stopped. Code that is running
        is interrupted; a call waiting for the user is left unanswered; a request still waiting
        behind another (a local API request) is dropped at once."""
        step = tool_steps.open_call(self.message.steps)
        if step is not None and step.status == "waiting":
            self.finish(self.stats, "cancelled")
        elif step is not None and step.status == "running":
            self.stopping = True
            if step.mcp:
                self.host.calls.cancel_mcp(self.request_id)
            else:
                self.host.calls.interrupt_python(str(self.conv))
        else:
            self.host.cancel(self.request_id)
            if not self.started:   # the engine never began it: nothing to wait for
                self.finish(self.stats, "cancelled")

    # -- saving ----------------------------------------------------------------------------
    def save_progress(self, force: bool = True) -> None:
        """Write the answer being written as a 'streaming' row, so kill -9 keeps it (marked at restart)."""
        if not force and time.monotonic() - self._saved_at < SAVE_EVERY_S:
            return
        msg, store = self.message, self.host.store
        self._saved_at = time.monotonic()
        row = StoredMessage("assistant", msg.text, msg.analysis, msg.effort, "streaming", msg.thought_seconds, {},
                            id=msg.id)
        try:
            if msg.id is None:
                msg.id = store.add_message(self.conv, row).id
            else:
                store.update_message(row)
        except StoreError:
            pass  # the final save says it to the user, once

    def finish(self, stats: dict, reason: str) -> None:
        if self.ended:
            return
        self.ended, self.on_model = True, False
        msg = self.message
        tool_steps.close_open_steps(msg.steps)
        msg.state = {"cancelled": "stopped", "error": "error", "too_long": "error"}.get(reason, "done")
        msg.phase = ""
        if msg.think_started is not None:   # stopped mid-thought
            msg.thought_seconds = time.monotonic() - msg.think_started
            msg.think_started = None
        msg.stats = dict(stats) if reason != "too_long" else {}  # nothing ran: no token counts to show
        # The engine's own stats may say "cancelled" for a reply that ended normally (the
        # session closes the token stream after <|return|>): the Done reason is the truth.
        msg.stats["stop_reason"] = reason
        if msg.state == "done" and not msg.text.strip() and not msg.notice:
            msg.notice = NO_ANSWER   # never an empty bubble with nothing said
        if self.options.get("answer_format"):
            msg.stats["json_answer"] = True    # shown as a JSON block
        if msg.notice:
            msg.stats["notice"] = msg.notice
        self._save_finished()
        if tool_steps.worth_saving(msg.steps) and msg.id is not None:
            try:
                self.host.store.set_tool_steps(msg.id, tool_steps.to_json(msg.steps))
            except StoreError as e:
                self.host.saving_failed(self, str(e))
        self.host.turn_ended(self)

    def _save_finished(self) -> None:
        """Save the finished answer; if that fails it stays on screen and says it wasn't saved."""
        msg, store = self.message, self.host.store
        row = StoredMessage("assistant", msg.text, msg.analysis, msg.effort, msg.state, msg.thought_seconds,
                            msg.stats, id=msg.id)
        try:
            if msg.id is not None:
                store.update_message(row)
            elif store.conversation(self.conv) is not None:  # not deleted meanwhile
                msg.id = store.add_message(self.conv, row).id
        except StoreError as e:
            msg.notice = " ".join(filter(None, [msg.notice, f"This answer wasn't saved ({clause(e)}); copy it if you "
                                                            "need it."]))
            self.host.saving_failed(self, f"An answer in another chat couldn't be saved: {clause(e)}.")

    # -- tools -----------------------------------------------------------------------------
    def _take_call(self, stats: dict) -> bool:
        """The answer stopped at a tool call: run it, ask the user, or send back why not.
        False when there is no call to take (the caller ends the answer with a notice)."""
        msg = self.message
        step = tool_steps.open_call(msg.steps, "pending")
        if step is None:
            return False
        self.stats = stats
        if len(tool_steps.calls(msg.steps)) > tool_steps.MAX_CALLS_PER_TURN:
            msg.notice = (f"The model called tools more than {tool_steps.MAX_CALLS_PER_TURN} times in one answer, "
                          "so it was stopped; try Regenerate or rephrase.")
            self.finish(stats, "cancelled")
            return True
        if step.error:          # a malformed call: the model reads why and tries again
            self._resolve(step, "invalid", step.error)
        elif step.recipient.startswith("browser."):   # reads only what the user added: no consent
            self._run_browser(step)
        elif step.python:
            if not self.host.settings.python_tool:
                self._resolve(step, "off", tool_steps.PYTHON_OFF)
            elif self.host.python_always(self.conv):
                self._run_python(step)
            else:
                self._wait_for_user(step)
        elif (route := self.host.calls.mcp_route(self.conv, step.name)) is not None:
            decision, server, tool = route      # an MCP server's tool: asks like Python, or may not run here
            mcp_steps.mark(step, server, tool)
            if decision == "off":
                self._resolve(step, "off", mcp_steps.off_text(server))
            elif decision == "always":
                self._run_mcp(step)
            else:
                self._wait_for_user(step)
        else:
            self._wait_for_user(step)
        return True

    def waiting_call(self) -> CallStep | None:
        return tool_steps.open_call(self.message.steps, "waiting")

    def answer_tool(self, choice: str, text: str = "") -> bool:
        """The user's answer to the waiting call (see ChatController.answer_tool)."""
        step = self.waiting_call()
        if step is None:
            return False
        if step.mcp:
            if choice == "always":
                self.host.calls.mcp_allow_always(self.conv, step.name)
                choice = "run"
            if choice == "run":
                self._run_mcp(step)
            elif choice == "decline":
                self._resolve(step, "declined", mcp_steps.DECLINED)
            else:
                return False
        elif step.python:
            if choice == "always":
                self.host.set_python_always(self.conv, True)
                choice = "run"
            if choice == "run":
                self._run_python(step)
            elif choice == "decline":
                self._resolve(step, "declined", tool_steps.DECLINED_CODE)
            else:
                return False
        elif choice == "answer":
            self._resolve(step, "answered", text)
        elif choice == "decline":
            self._resolve(step, "declined", tool_steps.DECLINED_CALL)
        else:
            return False
        return True

    def _wait_for_user(self, step: CallStep) -> None:
        step.status = "waiting"
        self.message.phase = "tool"
        self.host.show_turn(self)
        if step.python:
            self.host.calls.warm_python(str(self.conv))

    def _run_python(self, step: CallStep) -> None:
        step.status = "running"
        self.message.phase = "tool"
        self.host.show_turn(self)
        self.request_id = self.host.calls.run_python(str(self.conv), step.arguments)

    def _run_browser(self, step: CallStep) -> None:
        step.status = "running"
        self.message.phase = "tool"
        self.host.show_turn(self)
        self.request_id = self.host.calls.run_browser(str(self.conv), step.recipient, step.arguments)

    def _run_mcp(self, step: CallStep) -> None:
        step.status = "running"
        self.message.phase = "tool"
        self.host.show_turn(self)
        self.request_id = self.host.calls.run_mcp(self.conv, step.name, mcp_steps.arguments_of(step))

    def on_tool_finished(self, out: dict) -> None:
        step = tool_steps.open_call(self.message.steps, "running")
        if step is None:
            return
        step.result, step.images, step.folder = out.get("text", ""), list(out.get("images") or []), out.get("folder", "")
        step.problem, step.status = out.get("error"), "done"
        if self.stopping:
            step.status = "stopped"
            self.finish(self.stats, "cancelled")
        else:
            self._continue()

    def _resolve(self, step: CallStep, status: str, result: str) -> None:
        step.resolve(status, result)
        self._continue()

    def _continue(self) -> None:
        """Send the turn so far (calls and results included) back to the model: it carries on."""
        self.host.show_turn(self)
        self._generate(self.history + tool_steps.engine_messages(self.message.steps))
