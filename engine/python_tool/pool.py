"""The app's handle on every chat's Python: one PythonTool per chat, a switch that turns the tool
off everywhere (settings), and one call that ends every kernel (quit)."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from engine.python_tool.limits import Limits
from engine.python_tool.sandbox import sandbox_problem
from engine.python_tool.tool import PythonTool


class PythonToolPool:
    """Chat id -> PythonTool with its folder under root. Thread-safe."""

    def __init__(self, root: str | Path, limits: Limits | None = None, enabled: bool = True,
                 max_kernels: int = 3):
        self.root = Path(root)
        self.limits = limits or Limits()
        self.max_kernels = max_kernels  # kernels kept up at once; the least recently used go first
        self._enabled = enabled
        self._tools: dict[str, PythonTool] = {}  # in order of use, the most recent last
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._enabled

    @enabled.setter
    def enabled(self, on: bool) -> None:
        """Switching off ends every kernel now; chats keep their folders."""
        self._enabled = on
        if not on:
            self.close_all()

    def offered(self) -> bool:
        """Whether to declare the python tool to the model at all: on, and able to run here."""
        return self._enabled and sandbox_problem() is None

    def folder(self, chat_id: str) -> Path:
        return self.root / _safe(chat_id)

    def tool(self, chat_id: str) -> PythonTool | None:
        """This chat's tool (its kernel starts on the first run), or None when switched off."""
        if not self._enabled:
            return None
        with self._lock:
            tool = self._tools.pop(chat_id, None) or PythonTool(self.folder(chat_id), self.limits)
            self._tools[chat_id] = tool
            idle = [t for t in self._tools.values() if t is not tool and t.has_kernel and not t.running]
            up = sum(t.has_kernel for t in self._tools.values()) + (not tool.has_kernel)
        # Each kernel holds memory the model needs: end the least recently used idle ones.
        for old in idle[:max(0, up - self.max_kernels)]:
            old.restart(reason=f"more than {self.max_kernels} chats had their Python running at once "
                               "and this one had waited longest")
        return tool

    def interrupt(self, chat_id: str) -> None:
        """The app's Stop: ends this chat's running code, if any."""
        with self._lock:
            tool = self._tools.get(chat_id)
        if tool is not None:
            tool.interrupt()

    def close(self, chat_id: str) -> None:
        """End one chat's kernel (chat closed or deleted); its folder stays."""
        with self._lock:
            tool = self._tools.pop(chat_id, None)
        if tool is not None:
            tool.close()

    def remove_folders_except(self, chat_ids) -> list[str]:
        """Delete every chat folder under root that none of `chat_ids` owns (chats purged from the
        history): SQLite hands a purged chat's id out again, and the new chat must not find the old
        one's files. Returns the names removed."""
        keep = {self.folder(str(c)).name for c in chat_ids}
        try:
            stale = [p for p in self.root.iterdir() if p.is_dir() and not p.is_symlink() and p.name not in keep]
        except OSError:
            return []                     # no folder yet (or unreadable): nothing of ours to sweep
        for path in stale:
            self.close(path.name)
            shutil.rmtree(path, ignore_errors=True)
        return [p.name for p in stale]

    def close_all(self) -> None:
        with self._lock:
            tools, self._tools = list(self._tools.values()), {}
        for tool in tools:
            tool.close()


def _safe(chat_id: str) -> str:
    """A chat id as one folder name: nothing in it can climb out of the root."""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(chat_id)).strip(".")
    return name or "chat"
