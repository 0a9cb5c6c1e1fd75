"""Telling the user about the chat history: a repair at start, a chat that can't be opened, a
message that can't be saved. Shown as a window-modal box that doesn't block the event loop."""
from __future__ import annotations

from PySide6.QtWidgets import QMessageBox

from app.paths import APP_NAME


def show_history_notice(window, text: str) -> QMessageBox | None:
    """Open a warning box over `window` (kept on window.history_box so tests can read it)."""
    if not text:
        return None
    box = QMessageBox(QMessageBox.Icon.Warning, APP_NAME, text, QMessageBox.StandardButton.Ok, window)
    box.open()
    window.history_box = box
    return box


def connect_history_notices(controller, window) -> None:
    """Show the start-up notice (if any) now and every later history error as it happens."""
    controller.history_error.connect(lambda text: show_history_notice(window, text))
    show_history_notice(window, controller.history_notice)
