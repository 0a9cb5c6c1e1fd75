"""The chat logic between widgets, history and the engine thread. No widgets here.

The controller owns the ChatStore, the ConversationModel of the open chat, the settings and the
model's lifecycle (EngineWorker) and the turns' tool calls (app.tool_calls.ToolCalls: the tools
thread, the browser, MCP). The answer being written is an app.turn.Turn: the controller starts it
(its request built by app/turn_request.py) and repaints its row; its TurnRouter
(app/turn_router.py) hands it the workers' results, the token events in small batches every
`flush_ms`. Widgets call the controller's methods (send, stop, regenerate, edit_last, ...) and
listen to its signals.
"""
from __future__ import annotations

from app.qt_compat import emit
from PySide6.QtCore import QObject, Signal

from app import branch_actions, tool_steps, turn_request
from app.branches import Branches
from app.chat_options import ChatOptionsStore
from app.conversation import ChatMessage, ConversationModel
from app.mcp.service import McpService
from app.demo_examples import EFFORT as DEMO_EFFORT
from app.paths import prompt_cache_dir
from app.settings import Settings
from app.store import ChatStore, StoredMessage, StoreError
from app.tool_calls import ToolCalls
from app.tool_steps import CallStep
from app.tools_worker import ToolsWorker
from app.turn import Turn, clause
from app.turn_router import TurnRouter
from app.worker import EngineThread, EngineWorker
from models.registry import DEMO


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
    message_refused = Signal(str, str)   # a message taken back out of the chat (too long): text, why
    _request_load = Signal(str, int)
    _request_generate = Signal(int, object, object)  # object: PySide6 6.12 mis-counts None inside dict/list signals

    def __init__(self, store: ChatStore, worker: EngineWorker | None = None, flush_ms: int = 30, parent=None,
                 tools: ToolsWorker | None = None, mcp: McpService | None = None, library=None):
        super().__init__(parent)
        self.store = store
        self.history_notice = store.notice   # shown once at start ('' when the history opened cleanly)
        try:
            self.store.purge_deleted()
            self.store.purge_empty()        # New chats never written in don't pile up across restarts
            self.store.mark_interrupted()
        except StoreError as e:
            self.history_notice = self.history_notice or str(e)
        try:
            self.settings = Settings.load(store)
        except StoreError:
            self.settings = Settings()
        self.model = ConversationModel(self)
        self.chat_options = ChatOptionsStore(store)   # each chat's own instructions and sampling, presets
        self.branches = Branches(store)             # regenerated answers and edited messages (app/branch_actions.py)
        self.worker = worker or EngineWorker()
        self.engine_thread = EngineThread(self.worker)
        self._request_load.connect(self.worker.load)
        self._request_generate.connect(self.worker.generate)
        self.worker.loaded.connect(self._on_loaded)
        self.worker.load_failed.connect(self._on_load_failed)
        self.worker.memory.connect(self.memory_changed)
        # The tools' calls, off the model's thread: Python and the browser on the tools thread, the
        # user's MCP tool servers on their client's (app/tool_calls.py).
        self.calls = ToolCalls(store, lambda: self.settings, self._next_request_id, tools, mcp, library, self)
        self.worker.python_offered = self.calls.tools.python_offered
        # Their workers and services, for the window, Settings and shutdown:
        self.tools, self.mcp = self.calls.tools, self.calls.mcp
        self.library, self.indexer = self.calls.library, self.calls.indexer
        self.worker.keep_prompt_cache(str(prompt_cache_dir()), int(self.settings.prompt_cache_gb * 1e9))
        self.ready = False
        self.model_name = ""
        self.model_error = ""
        self.is_demo = False                        # the tiny demo model is loaded
        self.greedy = False                         # the loaded folder asks for greedy decoding
        self.context_lengths: tuple = ()            # the context lengths the loaded model allows (): any
        self._folder = ""
        self.current_id = -1
        self.effort = "medium"
        self._request_id = 0
        self.turns: dict[int, Turn] = {}            # the answers being written, by conversation id
        # The workers' results (token events, started/finished/failed, the tools' results), to their turn:
        self.router = TurnRouter(self.turns, self.worker, self.show_turn,
                                 lambda: emit(self.busy_changed, self.busy), flush_ms, self)
        self.calls.finished.connect(self.router.on_tool_finished)
        self._last_deleted: int | None = None

    # -- model -----------------------------------------------------------------------------
    def load_model(self, folder: str) -> None:
        """Start loading on the engine thread; model_ready or model_failed follows."""
        self.ready = False
        self.model_error = ""
        self._folder = folder
        emit(self.model_loading, folder)
        emit(self._request_load, folder, int(self.settings.context_length))

    def _on_loaded(self, name: str, greedy: bool) -> None:
        self.ready, self.model_name, self.greedy = True, name, greedy
        self._folder = self.worker.folder or self._folder   # the model picker's switches load without load_model
        enc = getattr(self.worker.engine, "enc", None)   # the browser's pages are sized in the model's tokens
        if enc is not None:   # the tokenizer only (pure, no MLX): holding the session would keep old models alive
            self.library.count_tokens = lambda text: len(enc.encode_ordinary(text)) if text else 0
        self.is_demo = name == DEMO.label
        used, self.context_lengths = self.worker.context_info()
        if self.context_lengths and used and used != self.settings.context_length:
            self.settings.context_length = used     # the setting was more than this model or memory take
            self._try(self.settings.save, self.store)
        if not self.model.messages():   # an empty chat takes the effort that suits this model
            self.effort = self.new_chat_effort()
            if self.current_id != -1:
                self.store.set_effort(self.current_id, self.effort)
        emit(self.model_ready, name)

    def _on_load_failed(self, message: str) -> None:
        self.ready, self.model_error = False, message
        emit(self.model_failed, message)

    def shutdown(self) -> None:
        """Stop any answer (keeping it), then end the engine and tools threads. Safe to call twice."""
        if not self.engine_thread.thread.isRunning() and not self.turns:
            self.mcp.shutdown()      # (idempotent) the servers never outlive the app
            return
        for turn in self.turns.values():
            self.worker.cancel(turn.request_id)
            self.tools.interrupt(str(turn.conv))
        self.engine_thread.stop()
        self.calls.shutdown()
        self.router.flush()
        for turn in list(self.turns.values()):  # the worker never reported back: save what we have
            turn.finish({}, "cancelled")

    def clear_prompt_cache(self) -> None:
        """Forget every cached conversation (memory and disk), on the engine thread."""
        self.worker.clear_prompt_cache_soon()

    @property
    def busy(self) -> bool:
        """An answer is being written in some chat."""
        return bool(self.turns)

    @property
    def turn(self) -> Turn | None:
        """The answer being written in the open chat, if any."""
        return self.turns.get(self.current_id)

    @property
    def answering_elsewhere(self) -> bool:
        """Another chat's answer holds the model (one answer is written at a time; a chat whose
        answer waits for the user or runs code does not hold it)."""
        return any(t.on_model for conv, t in self.turns.items() if conv != self.current_id)

    @property
    def folder(self) -> str:
        """The model folder loaded, or being loaded, last ('' before any)."""
        return self._folder

    @property
    def answering_here(self) -> bool:
        """An answer is being written in the open chat (not in another one)."""
        return self.turn is not None

    def new_chat_effort(self) -> str:
        """The effort last chosen; before any choice, high for the demo model (it is only right
        there, see models/demo/README.md) and medium for gpt-oss."""
        return (self.chat_options.default_effort() or self.settings.effort
                or (DEMO_EFFORT if self.is_demo else "medium"))


    # -- conversations ---------------------------------------------------------------------
    def conversations(self, search: str = ""):
        try:
            return self.store.conversations(search)
        except StoreError as e:
            emit(self.history_error, str(e))
            return []

    def new_conversation(self) -> int:
        """Open an empty chat: the one on screen or another one never written in, else a new one
        (pressing New chat again doesn't pile up empty chats)."""
        try:
            empty = self.store.empty_conversation_ids()
        except StoreError:
            empty = []
        if empty:
            reuse = self.current_id if self.current_id in empty else empty[0]
            if reuse != self.current_id:   # it starts like a new chat: with the effort a new one gets
                self._try(self.store.set_effort, reuse, self.effort if self.current_id == -1
                          else self.new_chat_effort())
                self._try(self.chat_options.start_new_chat, reuse)
                self.open_conversation(reuse)
            return reuse
        conv = self.store.create_conversation("New chat", self.effort if self.current_id == -1 else self.new_chat_effort())
        self._try(self.chat_options.start_new_chat, conv.id)
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
        streaming = self.turns[conv.id].message if conv.id in self.turns else None
        rows = [to_chat(m) for m in stored if streaming is None or m.id != streaming.id]
        self._attach_steps(conv.id, rows)
        branch_actions.mark(self, conv.id, stored, rows)
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
        if conversation_id in self.turns:
            self.turns[conversation_id].stop()
        self.store.delete(conversation_id)
        self._last_deleted = conversation_id
        self.calls.forget(str(conversation_id))
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
        if self.ready and self.context_lengths and self.settings.context_length not in self.context_lengths:
            self.settings.context_length = old_context   # refused: never unload a working model for it
        self._try(self.settings.save, self.store)  # kept for this session even if it can't be saved
        self.calls.apply_settings(self.settings)
        self.worker.set_prompt_cache_bytes_soon(int(self.settings.prompt_cache_gb * 1e9))
        emit(self.settings_changed)
        folder = self._folder or self.settings.model_folder
        # After a failed load too: the setting that failed may be what the user just fixed.
        if (self.ready or self.model_error) and old_context != self.settings.context_length and folder:
            self.load_model(folder)

    # -- chatting --------------------------------------------------------------------------
    def can_send(self) -> bool:
        return self.ready and self.turn is None and not self.answering_elsewhere

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
        """Write the last answer again; the old one stays as an alternative (‹ 1/2 ›)."""
        return branch_actions.regenerate(self)

    def edit_at(self, row: int, text: str) -> bool:
        """Send `text` in place of the user message at `row`, forking the chat there."""
        return branch_actions.edit_at(self, row, text)

    def switch_alternative(self, row: int, step: int) -> bool:
        """Show the previous (-1) or next (+1) alternative of the message at `row`."""
        return branch_actions.switch(self, row, step)

    def last_user_text(self) -> str:
        for m in reversed(self.model.messages()):
            if m.role == "user":
                return m.text
        return ""

    def edit_last(self, text: str) -> bool:
        """Send `text` in place of the last user message (the old branch is kept)."""
        users = [i for i, m in enumerate(self.model.messages()) if m.role == "user"]
        return bool(users) and self.edit_at(users[-1], text)

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
        """End the answer now; what was written is kept and saved as stopped (see Turn.stop)."""
        if self.turn is not None:
            self.turn.stop()

    def _start_reply(self) -> None:
        request = turn_request.build(self.current_id, self.effort, self.model.messages(), self.settings,
                                     self.chat_options, self.library, self.mcp, self.is_demo)
        turn = self.turns[self.current_id] = Turn(self, self.current_id, request.history, request.options, self.effort)
        self.model.append(turn.message)
        emit(self.busy_changed, True)
        self.router.start()
        if request.with_mcp:
            self.calls.start_with_mcp_tools(turn)   # their servers may have to start: the window goes on
        else:
            turn.start()

    # -- what a Turn asks of its host (app/turn.py) -----------------------------------------
    def _next_request_id(self) -> int:
        self._request_id += 1
        return self._request_id

    def generate(self, messages: list[dict], options: dict) -> int:
        rid = self._next_request_id()
        self.router.start()
        emit(self._request_generate, rid, messages, options)
        return rid

    def browser_on(self, conversation_id: int) -> bool:
        """The chat's sources are on: the model is offered the browser over the library."""
        return self.library.on_for(conversation_id)

    def set_browser_on(self, conversation_id: int, on: bool) -> None:
        self.library.set_on_for(conversation_id, on)

    def cancel(self, request_id: int) -> None:
        self.worker.cancel(request_id)

    def show_turn(self, turn: Turn) -> None:
        """Repaint the turn's row, if its chat is the one open."""
        if turn.conv != self.current_id:
            return
        rows = self.model.messages()
        for i in range(len(rows) - 1, -1, -1):
            if rows[i] is turn.message:
                self.model.touch(i)
                break

    def turn_ended(self, turn: Turn) -> None:
        self.show_turn(turn)
        if self.turns.get(turn.conv) is turn:
            del self.turns[turn.conv]
            if not self.turns:
                self.router.stop()
            emit(self.busy_changed, bool(self.turns))
        emit(self.conversations_changed)

    def longer_context_offered(self) -> bool:
        """Settings offers a longer context than the one in use (the model and the memory allow it)."""
        return not self.context_lengths or max(self.context_lengths) > self.settings.context_length

    def take_back(self, turn: Turn) -> bool:
        """A message refused before anything ran (itself too long for the context) leaves the chat and
        the history, and the chat's title is as before; message_refused hands its text back (whole)
        to the message box with the sentence. False when it isn't the open chat's (then it stays)."""
        users = [i for i, m in enumerate(self.model.messages()) if m.role == "user"]
        if turn.conv != self.current_id or not users:
            return False
        text = self.model.message(users[-1]).text
        if not self._delete_rows_from(users[-1]):
            return False
        conv_row = self.store.conversation(turn.conv)
        if conv_row is not None and conv_row.title == " ".join(text.split())[:48].strip():
            self._try(self.store.rename, turn.conv, "New chat")
        self.turn_ended(turn)
        branch_actions.heal(self, turn.conv)   # a refused edit: the branch it came from is shown again
        emit(self.message_refused, text, turn.message.notice)
        return True

    def saving_failed(self, turn: Turn, message: str) -> None:
        if turn.conv != self.current_id:  # not in view: say it where the user is
            emit(self.history_error, message)

    # -- tools -----------------------------------------------------------------------------
    def answer_tool(self, choice: str, text: str = "") -> bool:
        """The user's answer to the call waiting in the open answer. Python code: "run", "always"
        (run, and don't ask again in this chat) or "decline". A function: "answer" with `text`
        as its result, or "decline". False when nothing is waiting."""
        return self.turn is not None and self.turn.answer_tool(choice, text)

    def waiting_call(self) -> CallStep | None:
        """The call in the answer being written that waits for the user, if any."""
        return self.turn.waiting_call() if self.turn is not None else None

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

    def _attach_steps(self, conversation_id: int, rows: list[ChatMessage]) -> None:
        try:
            saved = self.store.tool_steps(conversation_id)
        except StoreError as e:   # the chat still opens, without its tool blocks
            emit(self.history_error, str(e))
            return
        for m in rows:
            if m.id in saved:
                m.steps = tool_steps.from_json(saved[m.id])

