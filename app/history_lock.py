"""One writer per chat history: an advisory lock on `<history>.lock`, held while the app runs.

flock() belongs to the open file, so the operating system drops it when the process ends in any
way (quit, crash, kill -9): a lock is never left stale. Whoever holds it may do the things only one
instance may do (purge deleted chats, mark interrupted answers); app.single_instance uses it to
send a second launch to the first window.
"""
from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, behave as the only instance
    fcntl = None


class HistoryLock:
    """Try to take the lock of `history_path` at once; `held` says whether we got it."""

    def __init__(self, history_path: str | Path):
        self.path = Path(str(history_path) + ".lock")
        self._fd: int | None = None
        self.held = False
        self.acquire()

    def acquire(self) -> bool:
        if self.held:
            return True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)  # the first run: no app-data folder yet
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            # An unwritable folder: nothing can be saved there anyway, so no one can lose data.
            self.held = True
            return True
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
        self._fd, self.held = fd, True
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
        self._fd, self.held = None, False
