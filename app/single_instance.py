"""One app instance per chat history: a second launch brings the first window to the front.

Two instances writing one history misfile chats (regenerate in one deletes the other's newer
messages; a start purges chats the other still offers to Undo). The first instance holds the
history's lock (app.history_lock) and listens on a local socket named after the history's path;
a later launch fails to take the lock, says "show" on that socket and exits.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from app.history_lock import HistoryLock
from app.qt_compat import emit

_SHOW = b"show\n"


def server_name(history_path: str | Path) -> str:
    """A socket name unique to this history (short: Unix socket paths are limited to ~100 bytes)."""
    digest = hashlib.sha256(str(Path(history_path).resolve()).encode()).hexdigest()[:16]
    return f"gpt-oss-chat-{digest}"


class SingleInstance(QObject):
    """`primary` is True for the instance that owns the history; `activated` fires on a relaunch."""

    activated = Signal()

    def __init__(self, history_path: str | Path, parent=None):
        super().__init__(parent)
        self.name = server_name(history_path)
        self.lock = HistoryLock(history_path)
        self.primary = self.lock.held
        self.server: QLocalServer | None = None
        self._sockets: list[QLocalSocket] = []
        if self.primary:
            self._listen()

    def _listen(self) -> None:
        QLocalServer.removeServer(self.name)  # a socket left by a crashed run (we hold the lock: it's stale)
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if self.server.listen(self.name):
            self.server.newConnection.connect(self._on_connection)

    def _on_connection(self) -> None:
        while self.server.hasPendingConnections():
            sock = self.server.nextPendingConnection()
            self._sockets.append(sock)
            sock.readyRead.connect(self._on_ready_read)
            sock.disconnected.connect(self._on_disconnected)
            self._read(sock)

    def _on_ready_read(self) -> None:
        self._read(self.sender())

    def _on_disconnected(self) -> None:
        sock = self.sender()
        self._read(sock)  # the message may arrive together with the goodbye
        if sock in self._sockets:
            self._sockets.remove(sock)
            sock.deleteLater()

    def _read(self, sock) -> None:
        if sock is not None and sock.bytesAvailable() and bytes(sock.readAll().data()).startswith(_SHOW.strip()):
            emit(self.activated)

    def ask_primary_to_show(self, timeout_ms: int = 2000) -> bool:
        """From a second instance: ask the first to come to the front. False if it didn't answer."""
        sock = QLocalSocket()
        sock.connectToServer(self.name)
        if not sock.waitForConnected(timeout_ms):
            return False
        sock.write(_SHOW)
        ok = sock.waitForBytesWritten(timeout_ms)
        sock.disconnectFromServer()
        return ok

    def close(self) -> None:
        for sock in self._sockets:
            sock.abort()
        self._sockets.clear()
        if self.server is not None:
            self.server.close()
        self.lock.release()


def bring_to_front(window) -> None:
    """Show, un-minimize and activate `window` (what a relaunch of a running Mac app does)."""
    window.show()
    window.setWindowState(window.windowState() & ~Qt.WindowState.WindowMinimized)
    window.raise_()
    window.activateWindow()
