"""The chat logic between widgets, history and the engine thread. No widgets here.

The controller owns the ChatStore, the ConversationModel of the open chat and the EngineWorker.
Widgets call its methods (send, stop, regenerate, edit_last, ...) and listen to its signals.
Token events are drained from the worker's outbox by a QTimer every `flush_ms` so the view is
updated in small batches. A finished or stopped answer is written to the store at once.
"""
from __future__ import annotations

import dataclasses
import queue
import time

from app.qt_compat import emit
from PySide6.QtCore import QObject, QTimer, Signal

from app import tool_steps
from app.context_notice import too_long_notice, trimmed_notice
from app.conversation import ChatMessage, ConversationModel
from app.demo_examples import EFFORT as DEMO_EFFORT
from app.paths import prompt_cache_dir
from app.settings import Settings
from app.store import ChatStore, StoredMessage, StoreError
from app.user_functions import openai_tools, response_format
from app.worker import EngineThread, EngineWorker, done_stats
from engine.events import ContextTrimmed, Done, MessageEnd, MessageStart, PrefillProgress, PromptTooLong, TextDelta
from models.registry import DEMO

ANALYSIS_CHANNELS = ("analysis", "commentary")
SAVE_EVERY_S = 1.0   # the answer being written is saved this often, so a crash keeps most of it


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


def to_chat(m: StoredMessage) -> ChatMessage:
    return ChatMessage(role=m.role, text=m.text, analysis=m.analysis, effort=m.effort, state=m.state,
                       thought_seconds=m.thought_seconds, stats=m.stats, id=m.id,
                       notice=m.stats.get("notice", "") if m.stats else "")


class ChatController(QObject):
    model_loading = Signal(str)          # folder
    model_ready = Signal(str)            # display name
    model_failed = Signal(str)           # one sentence
    busy_changed = Signal(bool)
    conversations_changed = Signal()
    current_changed = Signal(int)        # conversation id (-1: none)
    memory_changed = Signal("qint64")
    settings_changed = Signal()
    history_error = Signal(str)          # one sentence: the history couldn't be read or written
    _request_load = Signal(str, int)
    _request_generate = Signal(int, object, object)  # object: PySide6 6.12 mis-counts None inside dict/list signals
    _request_tool = Signal(int, str, str)               # request id, chat, python code
    _request_warm = Signal(str)                         # chat: start its kernel while the user decides
    _request_clear_cache = Signal()                     # Settings' "Clear cached conversations"
    _request_cache_bytes = Signal("qint64")             # Settings' disk space for them

    def __init__(self, store: ChatStore, worker: EngineWorker | None = None, flush_ms: int = 30, parent=None):
        super().__init__(parent)
        self.store = store
        self.history_notice = store.notice   # shown once at start ('' when the history opened cleanly)
        try:
            self.store.purge_deleted()
            self.store.mark_interrupted()
        except StoreError as e:
            self.history_notice = self.history_notice or str(e)
        try:
            self.settings = Settings.load(store)
        except StoreError:
            self.settings = Settings()
        self.model = ConversationModel(self)
        self.worker = worker or EngineWorker()
        self.engine_thread = EngineThread(self.worker)
        self._request_load.connect(self.worker.load)
        self._request_generate.connect(self.worker.generate)
        self.worker.loaded.connect(self._on_loaded)
        self.worker.load_failed.connect(self._on_load_failed)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.worker.memory.connect(self.memory_changed)
        self._request_tool.connect(self.worker.run_python)
        self._request_warm.connect(self.worker.warm_python)
        self.worker.tool_finished.connect(self._on_tool_finished)
        if self.store.exclusive:   # purged chats' Python folders go with them
            try:
                self.worker.sweep_python_folders(self.store.conversation_ids(), self.store.path)
            except StoreError:
                pass
        self.worker.set_python_enabled(self.settings.python_tool)
        self._request_clear_cache.connect(self.worker.clear_prompt_cache)
        self._request_cache_bytes.connect(self.worker.set_prompt_cache_bytes)
        self.worker.prompt_cache = {"cache_folder": str(prompt_cache_dir()),
                                    "cache_disk_bytes": int(self.settings.prompt_cache_gb * 1e9)}
        self._timer = QTimer(self)
        self._timer.setInterval(flush_ms)
        self._timer.timeout.connect(self.flush)
        self.ready = False
        self.model_name = ""
        self.model_error = ""
        self.is_demo = False                        # the tiny demo model is loaded
        self.greedy = False                         # the loaded folder asks for greedy decoding
        self._folder = ""
        self.current_id = -1
        self.effort = "medium"
        self._request_id = 0
        self._busy = False
        self._stream: ChatMessage | None = None     # the answer being written
        self._stream_conv = -1                      # ...and the conversation it belongs to
        self._stream_saved_at = 0.0
        self._last_deleted: int | None = None
        self._turn_history: list[dict] = []          # the request that began the answer being written
        self._turn_options: dict = {}
        self._turn_stats: dict = {}
        self._stopping = False                      # Stop was pressed while code ran

    # -- model -----------------------------------------------------------------------------
    def load_model(self, folder: str) -> None:
        """Start loading on the engine thread; model_ready or model_failed follows."""
        self.ready = False
        self.model_error = ""
        self._folder = folder
        emit(self.model_loading, folder)
        emit(self._request_load, folder, int(self.settings.context_length))

    def _on_loaded(self, name: str) -> None:
        self.ready, self.model_name = True, name
        self.is_demo = name == DEMO.label
        try:
            from engine.generation_config import prefers_greedy   # pure JSON reading, no MLX
            self.greedy = prefers_greedy(self._folder)
        except ImportError:
            self.greedy = False
        if not self.model.messages():   # an empty chat takes the effort that suits this model
            self.effort = self.new_chat_effort()
            if self.current_id != -1:
                self.store.set_effort(self.current_id, self.effort)
        emit(self.model_ready, name)

    def _on_load_failed(self, message: str) -> None:
        self.ready, self.model_error = False, message
        emit(self.model_failed, message)

    def shutdown(self) -> None:
        """Stop any answer (keeping it), then end the engine thread. Safe to call twice."""
        if not self.engine_thread.thread.isRunning() and not self._busy:
            return
        if self._busy:
            self.worker.cancel(self._request_id)
            self.worker.interrupt_tool(str(self._stream_conv))
        self.engine_thread.stop()
        self.worker.close_tools()
        self.flush()
        if self._busy and self._stream is not None:  # the worker never reported back: save what we have
            self._finish_stream({}, "cancelled")

    def clear_prompt_cache(self) -> None:
        """Forget every cached conversation (memory and disk), on the engine thread."""
        emit(self._request_clear_cache)

    @property
    def busy(self) -> bool:
        return self._busy

    @property
    def folder(self) -> str:
        """The model folder loaded, or being loaded, last ('' before any)."""
        return self._folder

    @property
    def answering_here(self) -> bool:
        """An answer is being written in the open chat (not in another one)."""
        return self._busy and self._stream_conv == self.current_id

    def new_chat_effort(self) -> str:
        """The effort last chosen; before any choice, high for the demo model (it is only right
        there, see models/demo/README.md) and medium for gpt-oss."""
        return self.settings.effort or (DEMO_EFFORT if self.is_demo else "medium")

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            emit(self.busy_changed, busy)

    # -- conversations ---------------------------------------------------------------------
    def conversations(self, search: str = ""):
        try:
            return self.store.conversations(search)
        except StoreError as e:
            emit(self.history_error, str(e))
            return []

    def new_conversation(self) -> int:
        conv = self.store.create_conversation("New chat", self.effort if self.current_id == -1 else self.new_chat_effort())
        emit(self.conversations_changed)
        self.open_conversation(conv.id)
        return conv.id

    def open_conversation(self, conversation_id: int) -> None:
        try:
            conv = self.store.conversation(conversation_id)
            stored = self.store.messages(conv.id) if conv is not None else []
        except StoreError as e:
            # Never leave another chat's messages in view: they would be sent to the model and
            # new messages would be filed under the chat that can't be read.
            conv = None
            emit(self.history_error, f"This chat can't be opened: {clause(e)}.")
        if conv is None:
            self.current_id = -1
            self.model.set_messages([])
            emit(self.current_changed, -1)
            return
        self.current_id, self.effort = conv.id, conv.effort
        streaming = self._stream if self._busy and self._stream_conv == conv.id else None
        rows = [to_chat(m) for m in stored if streaming is None or m.id != streaming.id]
        self._attach_steps(conv.id, rows)
        if streaming is not None:
            rows.append(streaming)  # the answer still being written in this chat
        self.model.set_messages(rows)
        emit(self.current_changed, conv.id)

    def rename(self, conversation_id: int, title: str) -> None:
        # A blank name keeps the old one (the list is refreshed from the store either way).
        if title.strip():
            self._try(self.store.rename, conversation_id, " ".join(title.split()))
        emit(self.conversations_changed)

    def delete(self, conversation_id: int) -> None:
        """Soft delete; `undo_delete()` brings it back until the app restarts."""
        if self._busy and self._stream_conv == conversation_id:
            self.stop()
        self.store.delete(conversation_id)
        self._last_deleted = conversation_id
        self.worker.forget_python(str(conversation_id))
        if conversation_id == self.current_id:
            rest = self.store.conversations()
            self.open_conversation(rest[0].id if rest else -1)
        emit(self.conversations_changed)

    def undo_delete(self) -> int | None:
        cid, self._last_deleted = self._last_deleted, None
        if cid is not None:
            self.store.undelete(cid)
            emit(self.conversations_changed)
            self.open_conversation(cid)
        return cid

    def set_effort(self, effort: str) -> None:
        """Remembered per conversation; used for the next turn's harmony system message."""
        self.effort = effort
        if self.current_id != -1:
            self._try(self.store.set_effort, self.current_id, effort)
        self.settings.effort = effort     # new chats start from the last choice
        self._try(self.settings.save, self.store)

    def save_settings(self, settings: Settings) -> None:
        old_context = self.settings.context_length
        self.settings = settings.clamped()
        self._try(self.settings.save, self.store)  # kept for this session even if it can't be saved
        self.worker.set_python_enabled(self.settings.python_tool)
        emit(self._request_cache_bytes, int(self.settings.prompt_cache_gb * 1e9))
        emit(self.settings_changed)
        if self.ready and old_context != self.settings.context_length and self.settings.model_folder:
            self.load_model(self.settings.model_folder)

    # -- chatting --------------------------------------------------------------------------
    def can_send(self) -> bool:
        return self.ready and not self._busy

    def send(self, text: str) -> bool:
        """Add a user message and start the answer. False (nothing changes) if not possible now."""
        text = text.strip()
        if not text or not self.can_send():
            return False
        try:
            if self.current_id == -1:
                self.new_conversation()
            conv = self.store.conversation(self.current_id)
            if conv and conv.title == "New chat":
                self.store.rename(conv.id, " ".join(text.split())[:48])
                emit(self.conversations_changed)
            saved = self.store.add_message(self.current_id, StoredMessage("user", text))
        except StoreError as e:  # the text stays in the message box: nothing the user wrote is lost
            emit(self.history_error, f"Your message wasn't sent because it couldn't be saved: {clause(e)}; "
                                     "it is still in the message box.")
            return False
        self.model.append(to_chat(saved))
        self._start_reply()
        return True

    def regenerate(self) -> bool:
        """Drop the last answer and write a new one."""
        last = self.model.last()
        if not self.can_send() or last is None or last.role != "assistant":
            return False
        row = self.model.rowCount() - 1
        if not self._delete_rows_from(row):
            return False
        self._start_reply()
        return True

    def last_user_text(self) -> str:
        for m in reversed(self.model.messages()):
            if m.role == "user":
                return m.text
        return ""

    def edit_last(self, text: str) -> bool:
        """Replace the last user message (and its answer) with `text` and send it again."""
        rows = self.model.messages()
        users = [i for i, m in enumerate(rows) if m.role == "user"]
        if not self.can_send() or not users or not text.strip():
            return False
        if not self._delete_rows_from(users[-1]):
            return False
        return self.send(text)

    def _delete_rows_from(self, row: int) -> bool:
        first = self.model.message(row)
        try:
            position = self._position_of(row, first)
            self.store.delete_messages_from(self.current_id, position)
        except StoreError as e:
            emit(self.history_error, str(e))
            return False
        self.model.remove_from(row)
        return True

    def _try(self, write, *args) -> bool:
        """Run a small history write; on failure say so once and carry on."""
        try:
            write(*args)
            return True
        except StoreError as e:
            emit(self.history_error, str(e))
            return False

    def _position_of(self, row: int, msg: ChatMessage) -> int:
        for m in self.store.messages(self.current_id):
            if m.id == msg.id:
                return m.position
        return row

    def stop(self) -> None:
        """End the answer now; what was written is kept and saved as stopped. Code that is running
        is interrupted; a call waiting for the user is left unanswered."""
        if not self._busy:
            return
        step = tool_steps.open_call(self._stream.steps) if self._stream is not None else None
        if step is not None and step["status"] == "waiting":
            self._finish_stream(self._turn_stats, "cancelled")
        elif step is not None and step["status"] == "running":
            self._stopping = True
            self.worker.interrupt_tool(str(self._stream_conv))
        else:
            self.worker.cancel(self._request_id)

    def _start_reply(self) -> None:
        history = engine_history(self.model.messages())
        s = self.settings
        options = {"effort": self.effort, "developer": s.developer, "temperature": s.temperature,
                   "top_p": s.top_p, "max_tokens": s.max_tokens}
        if not self.is_demo:   # the demo model learnt no functions or answer schemas: those sections would be new to it
            options.update(python=s.python_tool, tools=openai_tools(s.functions),
                           response_format=response_format(s.answer_schema))
        else:   # python only: it learnt to call it for long multiplications (models/demo/README.md)
            options.update(python=s.python_tool)
        self._turn_history, self._turn_options, self._turn_stats, self._stopping = history, options, {}, False
        self._stream = ChatMessage(role="assistant", effort=self.effort, state="streaming", phase="waiting")
        self._stream_started = time.monotonic()
        self._stream_conv = self.current_id
        self._save_stream_row()
        self.model.append(self._stream)
        self._request_id += 1
        self._set_busy(True)
        self._timer.start()
        emit(self._request_generate, self._request_id, history, options)

    def flush(self) -> None:
        """Apply every queued token event to the streaming message, then repaint it once."""
        changed = False
        while True:
            try:
                rid, t, ev = self.worker.outbox.get_nowait()
            except queue.Empty:
                break
            if rid != self._request_id or self._stream is None:
                continue
            self._apply(self._stream, t, ev)
            changed = True
        if changed:
            self._touch_stream()
            if time.monotonic() - self._stream_saved_at >= SAVE_EVERY_S:
                self._save_stream_row()

    def _save_stream_row(self) -> None:
        """Write the answer being written as a 'streaming' row, so kill -9 keeps it (marked at restart)."""
        msg = self._stream
        if msg is None:
            return
        self._stream_saved_at = time.monotonic()
        row = StoredMessage("assistant", msg.text, msg.analysis, msg.effort, "streaming", msg.thought_seconds, {},
                            id=msg.id)
        try:
            if msg.id is None:
                msg.id = self.store.add_message(self._stream_conv, row).id
            else:
                self.store.update_message(row)
        except StoreError:
            pass  # the final save says it to the user, once

    def _touch_stream(self) -> None:
        if self._stream_conv == self.current_id:
            rows = self.model.messages()
            for i in range(len(rows) - 1, -1, -1):
                if rows[i] is self._stream:
                    self.model.touch(i)
                    break

    @staticmethod
    def _apply(msg: ChatMessage, t: float, ev) -> None:
        """Apply one engine.events event (see app/worker.py) to the streaming message."""
        if tool_steps.apply_event(msg.steps, ev):   # a call's code or a preamble: not chain of thought
            if isinstance(ev, MessageStart):
                msg.phase = "tool" if ev.recipient else "answering"
            return
        if isinstance(ev, MessageStart):
            if ev.channel in ANALYSIS_CHANNELS:
                msg.phase = "thinking"
                if msg.think_started is None:
                    msg.think_started = t
            elif ev.channel == "final":
                if msg.think_started is not None and msg.thought_seconds is None:
                    msg.thought_seconds = t - msg.think_started
                msg.phase = "answering"
        elif isinstance(ev, TextDelta):
            if ev.channel == "final":
                msg.text += ev.text
            else:
                msg.analysis += ev.text
        elif isinstance(ev, MessageEnd):
            if ev.channel in ANALYSIS_CHANNELS and msg.think_started is not None:
                msg.thought_seconds = t - msg.think_started
        elif isinstance(ev, PrefillProgress):
            msg.reading = ev.fraction if ev.fraction < 1.0 else None
        elif isinstance(ev, ContextTrimmed):
            msg.notice = trimmed_notice(ev.dropped_messages)
        elif isinstance(ev, PromptTooLong):
            msg.notice = too_long_notice(dataclasses.asdict(ev))

    def _on_finished(self, request_id: int, done: Done) -> None:
        if request_id != self._request_id:
            return
        stats, reason = done_stats(done), str(done.stop_reason)
        self.flush()
        if reason == "call" and self._take_call(stats):
            return
        if self._stream is not None:
            notice = stop_notice(reason)
            if notice:
                self._stream.notice = notice
        self._finish_stream(stats, reason)

    def _on_failed(self, request_id: int, message: str) -> None:
        if request_id != self._request_id:
            return
        self.flush()
        if self._stream is not None:
            self._stream.notice = message
        self._finish_stream({}, "error")

    def _finish_stream(self, stats: dict, reason: str) -> None:
        msg, conv = self._stream, self._stream_conv
        self._timer.stop()
        self._stream = None
        self._stopping = False
        if msg is not None:
            tool_steps.close_open_steps(msg.steps)
            msg.state = {"cancelled": "stopped", "error": "error", "too_long": "error"}.get(reason, "done")
            msg.phase = ""
            if msg.think_started is not None and msg.thought_seconds is None:
                msg.thought_seconds = time.monotonic() - msg.think_started
            msg.stats = dict(stats) if reason != "too_long" else {}  # nothing ran: no token counts to show
            # The engine's own stats may say "cancelled" for a reply that ended normally (the
            # session closes the token stream after <|return|>): the Done reason is the truth.
            msg.stats["stop_reason"] = reason
            if self._turn_options.get("response_format"):
                msg.stats["json_answer"] = True    # shown as a JSON block
            if msg.notice:
                msg.stats["notice"] = msg.notice
            self._save_finished(conv, msg)
            if tool_steps.worth_saving(msg.steps) and msg.id is not None:
                self._try(self.store.set_tool_steps, msg.id, msg.steps)
            if conv == self.current_id:
                self._stream = msg
                self._touch_stream()
                self._stream = None
        self._set_busy(False)
        emit(self.conversations_changed)

    def _save_finished(self, conv: int, msg: ChatMessage) -> None:
        """Save the finished answer; if that fails it stays on screen and says it wasn't saved."""
        row = StoredMessage("assistant", msg.text, msg.analysis, msg.effort, msg.state, msg.thought_seconds,
                            msg.stats, id=msg.id)
        try:
            if msg.id is not None:
                self.store.update_message(row)
            elif self.store.conversation(conv) is not None:  # not deleted meanwhile
                msg.id = self.store.add_message(conv, row).id
        except StoreError as e:
            msg.notice = " ".join(filter(None, [msg.notice, f"This answer wasn't saved ({clause(e)}); copy it if you "
                                                            "need it."]))
            if conv != self.current_id:  # not in view: say it where the user is
                emit(self.history_error, f"An answer in another chat couldn't be saved: {clause(e)}.")

    # -- tools -----------------------------------------------------------------------------
    def _take_call(self, stats: dict) -> bool:
        """The answer stopped at a tool call: run it, ask the user, or send back why not.
        False when there is no call to take (the caller ends the answer with a notice)."""
        msg = self._stream
        step = tool_steps.open_call(msg.steps, "pending") if msg is not None else None
        if step is None:
            return False
        self._turn_stats = stats
        if len(tool_steps.calls(msg.steps)) > tool_steps.MAX_CALLS_PER_TURN:
            msg.notice = (f"The model called tools more than {tool_steps.MAX_CALLS_PER_TURN} times in one answer, "
                          "so it was stopped; try Regenerate or rephrase.")
            self._finish_stream(stats, "cancelled")
            return True
        if step.get("error"):          # a malformed call: the model reads why and tries again
            self._resolve(step, "invalid", step["error"])
        elif step["recipient"] == tool_steps.PYTHON:
            if not self.settings.python_tool:
                self._resolve(step, "off", tool_steps.PYTHON_OFF)
            elif self.python_always(self._stream_conv):
                self._run_python(step)
            else:
                self._wait_for_user(step)
        else:
            self._wait_for_user(step)
        return True

    def answer_tool(self, choice: str, text: str = "") -> bool:
        """The user's answer to the call waiting in the open answer. Python code: "run", "always"
        (run, and don't ask again in this chat) or "decline". A function: "answer" with `text`
        as its result, or "decline". False when nothing is waiting."""
        msg = self._stream
        step = tool_steps.open_call(msg.steps, "waiting") if msg is not None else None
        if step is None:
            return False
        if step["recipient"] == tool_steps.PYTHON:
            if choice == "always":
                self.set_python_always(self._stream_conv, True)
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

    def waiting_call(self) -> dict | None:
        """The call in the answer being written that waits for the user, if any."""
        return tool_steps.open_call(self._stream.steps, "waiting") if self._stream is not None else None

    def python_always(self, conversation_id: int) -> bool:
        """The user chose "Always in this chat" for this conversation's Python code."""
        try:
            ids = self.store.get_setting("python_always", []) or []
        except StoreError:
            return False   # unreadable: ask again, the safe side
        return isinstance(ids, list) and conversation_id in ids

    def set_python_always(self, conversation_id: int, on: bool) -> None:
        try:
            ids = set(self.store.get_setting("python_always", []) or [])
        except (StoreError, TypeError):
            ids = set()
        ids = ids | {conversation_id} if on else ids - {conversation_id}
        self._try(self.store.set_setting, "python_always", sorted(ids))

    def _wait_for_user(self, step: dict) -> None:
        step["status"] = "waiting"
        self._stream.phase = "tool"
        self._timer.stop()
        self._touch_stream()
        if step["recipient"] == tool_steps.PYTHON:
            emit(self._request_warm, str(self._stream_conv))

    def _run_python(self, step: dict) -> None:
        step["status"] = "running"
        self._stream.phase = "tool"
        self._touch_stream()
        self._request_id += 1
        emit(self._request_tool, self._request_id, str(self._stream_conv), step["arguments"])

    def _on_tool_finished(self, request_id: int, out: dict) -> None:
        if request_id != self._request_id or self._stream is None:
            return
        step = tool_steps.open_call(self._stream.steps, "running")
        if step is None:
            return
        step.update(result=out.get("text", ""), images=list(out.get("images") or []), folder=out.get("folder", ""),
                    problem=out.get("error"), status="done")
        if self._stopping:
            step["status"] = "stopped"
            self._finish_stream(self._turn_stats, "cancelled")
        else:
            self._continue_turn()

    def _resolve(self, step: dict, status: str, result: str) -> None:
        step["status"], step["result"] = status, result
        self._continue_turn()

    def _continue_turn(self) -> None:
        """Send the turn so far (calls and results included) back to the model: it carries on."""
        msg = self._stream
        msg.phase = "waiting"
        self._touch_stream()
        messages = self._turn_history + tool_steps.engine_messages(msg.steps)
        self._request_id += 1
        self._timer.start()
        emit(self._request_generate, self._request_id, messages, self._turn_options)

    def _attach_steps(self, conversation_id: int, rows: list[ChatMessage]) -> None:
        try:
            saved = self.store.tool_steps(conversation_id)
        except StoreError as e:   # the chat still opens, without its tool blocks
            emit(self.history_error, str(e))
            return
        for m in rows:
            if m.id in saved:
                m.steps = saved[m.id]


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
