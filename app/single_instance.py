"""One app instance per chat history: a second launch brings the first window to the front.

Two instances writing one history misfile chats (regenerate in one deletes the other's newer
messages; a start purges chats the other still offers to Undo). The first instance holds the
history's lock (app.history_lock) and listens on a Unix socket named after the history's path;
a later launch fails to take the lock, says "show" on that socket and exits.

Plain `socket` plus a QSocketNotifier rather than QtNetwork: the app bundle leaves QtNetwork out.
"""
from __future__ import annotations

import hashlib
import os
import socket
import tempfile
from pathlib import Path

from PySide6.QtCore import QObject, QSocketNotifier, Qt, Signal

from app.history_lock import HistoryLock
from app.qt_compat import emit

_SHOW = b"show\n"


def socket_path(history_path: str | Path) -> Path:
    """A socket path unique to this history and short enough for AF_UNIX (~100 bytes)."""
    digest = hashlib.sha256(str(Path(history_path).resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"gpt-oss-chat-{digest}.sock"


class SingleInstance(QObject):
    """`primary` is True for the instance that owns the history; `activated` fires on a relaunch."""

    activated = Signal()

    def __init__(self, history_path: str | Path, parent=None):
        super().__init__(parent)
        self.path = socket_path(history_path)
        self.lock = HistoryLock(history_path)
        self.primary = self.lock.held
        self._server: socket.socket | None = None
        self._notifier: QSocketNotifier | None = None
        if self.primary:
            self._listen()

    def _listen(self) -> None:
        try:
            self.path.unlink(missing_ok=True)  # left by a crashed run: we hold the lock, so it is stale
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind(str(self.path))
            os.chmod(self.path, 0o600)
            server.listen(4)
            server.setblocking(False)
        except OSError:
            return  # no socket: a second launch then says the app is already running and exits
        self._server = server
        self._notifier = QSocketNotifier(server.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._on_connection)

    def _on_connection(self, *_args) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except (BlockingIOError, OSError):
                return
            with conn:
                conn.settimeout(0.5)  # the client writes at once: never hang the window on a stray peer
                try:
                    message = conn.recv(16)
                except OSError:
                    message = b""
            if message.startswith(_SHOW.strip()):
                emit(self.activated)

    def ask_primary_to_show(self, timeout_s: float = 2.0) -> bool:
        """From a second instance: ask the first to come to the front. False if it didn't answer."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout_s)
                sock.connect(str(self.path))
                sock.sendall(_SHOW)
            return True
        except OSError:
            return False

    def close(self) -> None:
        if self._notifier is not None:
            self._notifier.setEnabled(False)
        if self._server is not None:
            self._server.close()
            self.path.unlink(missing_ok=True)
            self._server = None
        self.lock.release()


def bring_to_front(window) -> None:
    """Show, un-minimize and activate `window` (what a relaunch of a running Mac app does)."""
    window.show()
    window.setWindowState(window.windowState() & ~Qt.WindowState.WindowMinimized)
    window.raise_()
    window.activateWindow()
