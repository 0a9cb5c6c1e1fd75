"""The tools thread: runs the model's Python calls in the chats' sandboxed kernels.

Never on the engine thread: a cell may run for two minutes, and meanwhile other chats and the
local API must still get answers from the model. Requests come by queued signal to the slots
(`run_python`, `warm_python`); results go out by `finished`. The other methods only touch the
pool (engine.python_tool.PythonToolPool, thread-safe) and are safe from any thread.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from app.qt_compat import emit
from PySide6.QtCore import QObject, Signal, Slot

log = logging.getLogger(__name__)


class ToolsWorker(QObject):
    finished = Signal(int, object)     # request id, dict: text, images, error, restarted, folder

    def __init__(self, pool=None):
        super().__init__()
        self._pool = pool                  # made on first use, under the app-data folder
        self._enabled = True
        self._disk_quota: int | None = None   # bytes; None: engine.python_tool's default (Settings sets it)
        self._lock = threading.Lock()

    @property
    def pool(self):
        """The chats' Python kernels (engine/python_tool), folders under the app-data folder."""
        with self._lock:
            if self._pool is None:
                from app.paths import app_data_dir
                from engine.python_tool import PythonToolPool
                self._pool = PythonToolPool(app_data_dir() / "python", enabled=self._enabled)
                if self._disk_quota is not None:
                    self.set_disk_quota(self._disk_quota, pool=self._pool)
            return self._pool

    def python_offered(self) -> bool:
        """Whether to offer python to the model: switched on and able to run here (thread-safe)."""
        return self._enabled and self.pool.offered()

    def set_python_enabled(self, on: bool) -> None:
        """The settings switch; switching off ends every kernel (their folders stay)."""
        self._enabled = on
        if self._pool is not None:
            self._pool.enabled = on

    def set_disk_quota(self, quota: int, pool=None) -> None:
        """All one chat's folder may hold (Settings); kernels started from now on take it."""
        import dataclasses
        self._disk_quota = quota
        pool = pool or self._pool
        if pool is not None:
            pool.limits = dataclasses.replace(pool.limits, disk_quota=quota)

    @Slot(int, str, str)
    def run_python(self, request_id: int, chat: str, code: str) -> None:
        """Run a python call in chat `chat`'s sandboxed kernel; the result goes out by `finished`."""
        pool = self.pool
        tool = pool.tool(chat)
        folder = str(pool.folder(chat))
        if tool is None:
            out = {"text": "The python tool is switched off.", "images": [], "error": "The Python tool is switched off "
                   "in Settings.", "restarted": False, "folder": folder}
        else:
            try:
                result = tool.run(code)
                out = {"text": result.text, "images": [str(p) for p in result.images], "error": result.error,
                       "restarted": result.restarted, "folder": folder}
            except Exception as e:  # the tool promises sentences, but never let a bug end the turn badly
                log.exception("python tool failed")
                out = {"text": f"[The code could not be run: {type(e).__name__}]", "images": [], "restarted": False,
                       "error": f"The code could not be run ({type(e).__name__}: {e}).", "folder": folder}
        emit(self.finished, request_id, out)

    @Slot(str)
    def warm_python(self, chat: str) -> None:
        """Start chat `chat`'s kernel (a few seconds) while the user reads the code; runs nothing."""
        tool = self.pool.tool(chat)
        if tool is not None:
            tool.start()

    def interrupt(self, chat: str) -> None:
        """Stop the code running in `chat` (any thread)."""
        if self._pool is not None:
            self._pool.interrupt(chat)

    def forget(self, chat: str) -> None:
        """A deleted chat: end its kernel now, off the GUI thread (its folder stays for Undo)."""
        if self._pool is not None:
            threading.Thread(target=self._pool.close, args=(chat,), name="python-close", daemon=True).start()

    def sweep_python_folders(self, chat_ids, history_file) -> None:
        """Remove the Python folders of chats the history no longer holds (lock holder only). Only
        folders that live beside `history_file` belong to that history; others are left alone."""
        pool = self.pool
        if pool.root.parent.resolve() == Path(history_file).parent.resolve():
            pool.remove_folders_except(chat_ids)

    def close_all(self) -> None:
        if self._pool is not None:
            self._pool.close_all()
