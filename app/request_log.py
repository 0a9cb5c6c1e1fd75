"""The last requests the app's local API answered, for Settings' request log and the status bar.

The server records each request (server.request_log.RequestRecord: time, client, method, path,
model, status, tokens, duration; never a body or the key) on its own thread; this keeps the newest
KEPT of them in memory only, and tells the UI through a queued signal.
"""
from __future__ import annotations

import threading
from collections import deque

from PySide6.QtCore import QObject, Signal

from app.qt_compat import emit

KEPT = 500   # enough for an afternoon of an editor's requests; a few hundred KB at most


class RequestLog(QObject):
    changed = Signal()   # a request was added, or the log was cleared

    def __init__(self, kept: int = KEPT, parent=None):
        super().__init__(parent)
        self._records: deque = deque(maxlen=kept)
        self._lock = threading.Lock()   # add() runs on the server's thread, the rest on the GUI's

    def add(self, record) -> None:
        """The server's on_request callback (any thread)."""
        with self._lock:
            self._records.append(record)
        emit(self.changed)

    def records(self) -> list:
        """Oldest first, by arrival (a long stream that ended last still shows when it began)."""
        with self._lock:
            return sorted(self._records, key=lambda r: r.at)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
        emit(self.changed)

    @property
    def failures(self) -> int:
        with self._lock:
            return sum(r.failed for r in self._records)

    def __len__(self) -> int:
        return len(self._records)
