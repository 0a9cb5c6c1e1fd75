"""A turn's tool calls, started off the model's thread and reported back to the Qt thread.

The turns (app/turn.py) start calls here; each call gets a request id from the host's counter
(shared with the engine's requests, so a result finds its turn) and its result comes back by one
signal, `finished(request id, out)`, with `out` a dict like the tools thread's (text, images,
error, folder). Python code and the browser run on the tools thread (app/tools_worker.py,
app/browser_worker.py): a long cell never holds the model (or the local API) up. MCP tools are
spoken to on the MCP client's thread (app/mcp/service.py).
"""
from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal

from app import tool_steps
from app.mcp import steps as mcp_steps
from app.mcp.service import McpService
from app.qt_compat import emit
from app.store import StoreError
from app.tools_worker import ToolsWorker
from app.worker import WorkerThread


class ToolCalls(QObject):
    finished = Signal(int, object)      # request id, dict: text, images, error, folder
    _request_tool = Signal(int, str, str)               # request id, chat, python code
    _request_warm = Signal(str)                         # chat: start its kernel while the user decides
    _request_browse = Signal(int, str, str, str)        # request id, chat, browser.<fn>, arguments
    _mcp_listed = Signal(object, object)                # Turn, Listing (from the MCP client's thread)
    _mcp_finished = Signal(int, object)                 # request id, dict like the tools thread's (ditto)

    def __init__(self, store, settings, next_id, tools: ToolsWorker | None = None, mcp: McpService | None = None,
                 library=None, parent=None):
        """settings(): the app's Settings now; next_id(): a new request id (the host's counter)."""
        super().__init__(parent)
        self.store, self._settings, self._next_id = store, settings, next_id
        self.tools = tools or ToolsWorker()
        self.tools_thread = WorkerThread(self.tools, "tools", self.tools.close_all)  # a running cell is ended first
        self._request_tool.connect(self.tools.run_python)
        self._request_warm.connect(self.tools.warm_python)
        self.tools.finished.connect(self.finished)
        if self.store.exclusive:   # purged chats' Python folders go with them
            try:
                self.tools.sweep_python_folders(self.store.conversation_ids(), self.store.path)
            except StoreError:
                pass
        self.apply_settings(settings())
        self._setup_browser(library)
        # The user's MCP tool servers (mcp.json beside the history): started when a chat needs them,
        # spoken to on their own thread; never offered to the local API's clients.
        self.mcp = mcp or McpService(store, context_length=settings().context_length)
        # Queued even when emitted on this thread: a Future that is already done runs its callback at
        # once, and the result must not reach the turn before run_mcp has returned its request id.
        self._mcp_listed.connect(self._on_mcp_listed, Qt.ConnectionType.QueuedConnection)
        self._mcp_finished.connect(self._on_mcp_finished, Qt.ConnectionType.QueuedConnection)
        self._mcp_calls: dict[int, object] = {}     # request id -> the call's Future (Stop cancels it)

    def _setup_browser(self, library) -> None:
        """The browser over the user's library: its calls on the tools thread (app/browser_worker.py)."""
        from app.browser_worker import BrowserWorker, LibraryIndexer
        from app.library_sources import LibrarySources
        if library is None:
            from app.paths import app_data_dir
            library = LibrarySources(self.store, app_data_dir() / "browser")
        self.library = library
        self.indexer = LibraryIndexer(library, self)
        self.browser = BrowserWorker(library)
        self.browser.moveToThread(self.tools_thread.thread)
        self._request_browse.connect(self.browser.run)
        self.browser.finished.connect(self.finished)

    def apply_settings(self, settings) -> None:
        """The Python switch and the disk space of a chat's Python folder (Settings)."""
        self.tools.set_python_enabled(settings.python_tool)
        self.tools.set_disk_quota(settings.python_disk_quota_mb << 20)

    def forget(self, chat: str) -> None:
        """A deleted chat: end its kernel, drop its sources from the browser (its folders stay for Undo)."""
        self.tools.forget(chat)
        self.library.forget(chat)

    def shutdown(self) -> None:
        """The app quits (after the engine thread): end the kernels and indexing, the tools thread, the MCP servers."""
        self.tools.close_all()
        self.indexer.cancel()
        self.tools_thread.stop()
        self.mcp.shutdown()

    # -- Python and the browser (the tools thread) -----------------------------------------------
    def run_python(self, chat: str, code: str) -> int:
        rid = self._next_id()
        emit(self._request_tool, rid, chat, code)
        return rid

    def run_browser(self, chat: str, recipient: str, arguments: str) -> int:
        rid = self._next_id()
        emit(self._request_browse, rid, chat, recipient, arguments)
        return rid

    def warm_python(self, chat: str) -> None:
        emit(self._request_warm, chat)

    def interrupt_python(self, chat: str) -> None:
        self.tools.interrupt(chat)
        self.library.cancel_indexing(chat)   # a browser call waiting for dropped files to be indexed

    # -- MCP tools -----------------------------------------------------------------------------
    def start_with_mcp_tools(self, turn) -> None:
        """The chat's MCP tools first (their servers may have to start): the window goes on meanwhile,
        and the turn starts once they are listed (Turn.on_mcp_tools)."""
        turn.message.phase = "mcp"
        taken = {t.name for t in turn.options.get("tools") or []}
        self.mcp.tools_for(turn.conv, taken).add_done_callback(lambda f: self._mcp_listed_elsewhere(turn, f))

    def _mcp_listed_elsewhere(self, turn, future) -> None:
        try:
            emit(self._mcp_listed, turn, future.result())
        except RuntimeError:     # the app is closing
            pass

    def _on_mcp_listed(self, turn, listing) -> None:
        notes = listing.problems + [self.mcp.context_note(listing, self._settings().context_length)]
        turn.on_mcp_tools([t.engine_tool() for t in listing.tools], notes)

    def mcp_route(self, conversation_id: int, function: str) -> tuple[str, str, str] | None:
        """(decision, server, tool) for a call to one of the MCP tools ("ask", "always" or "off"),
        None when `function` is not an MCP tool (the user's own function)."""
        if not self.mcp.owns(function) or function in {f.get("name") for f in self._settings().functions}:
            return None          # the user's own function (it keeps its name; an MCP tool gives way)
        tool = self.mcp.manager.tool_of(function)
        server, name = (tool.server, tool.tool) if tool else (function.split("__", 1)[0], function)
        return self.mcp.decide(conversation_id, function), server, name

    def run_mcp(self, conversation_id: int, function: str, arguments) -> int:
        rid = self._next_id()
        future = self._mcp_calls[rid] = self.mcp.call(conversation_id, function, arguments)
        future.add_done_callback(lambda f: self._mcp_done_elsewhere(rid, conversation_id, f))
        return rid

    def _mcp_done_elsewhere(self, rid: int, conversation_id: int, future) -> None:
        """On the MCP client's thread: save the images, then hand the result to the Qt thread."""
        from app.mcp.results import McpOutput
        output = McpOutput.failed(tool_steps.STOPPED) if future.cancelled() else future.result()
        images = self.mcp.save_images(conversation_id, output) if output.images else []
        folder = str(self.mcp.images_folder(conversation_id))
        try:
            emit(self._mcp_finished, rid, mcp_steps.tool_output(output, images, folder))
        except RuntimeError:     # the app is closing
            pass

    def _on_mcp_finished(self, request_id: int, out: dict) -> None:
        self._mcp_calls.pop(request_id, None)
        emit(self.finished, request_id, out)

    def mcp_allow_always(self, conversation_id: int, function: str) -> None:
        self.mcp.allow_always(conversation_id, function)

    def cancel_mcp(self, request_id: int) -> None:
        future = self._mcp_calls.get(request_id)
        if future is not None:
            future.cancel()
