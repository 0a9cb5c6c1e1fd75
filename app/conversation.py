"""The open conversation as a Qt list model: one row per message.

Widgets never keep chat state of their own; the message view renders rows of this model and
re-renders a row when `dataChanged` says so. The streaming answer is simply the last row, updated
in place as token batches arrive.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from app.qt_compat import emit
from PySide6.QtCore import QAbstractListModel, QModelIndex, Qt

MessageRole = Qt.ItemDataRole.UserRole + 1


@dataclass
class ChatMessage:
    """One message as shown. Assistant text is split by harmony channel: `text` is the final
    answer, `analysis` the chain of thought (hidden unless the developer toggle is on)."""
    role: str                      # "user" | "assistant"
    text: str = ""
    analysis: str = ""
    effort: str | None = None
    state: str = "done"            # "streaming" | "done" | "stopped" | "error"
    phase: str = ""                # while streaming: "queued" | "waiting" | "thinking" | "answering" | "tool"
    think_started: float | None = None   # while thinking: now minus this is the model's thinking time so far
    thought_seconds: float | None = None
    reading: float | None = None   # while a long prompt is read: the share read so far (0..1)
    stats: dict = field(default_factory=dict)
    notice: str = ""               # one sentence shown under the bubble (context trimmed, error, ...)
    id: int | None = None          # row id in the store once saved
    steps: list = field(default_factory=list)   # app.tool_steps.TextStep / CallStep, in order
    alternatives: tuple = ()       # at a fork (app/branches.py): (the one shown, from 1; how many)

    @property
    def streaming(self) -> bool:
        return self.state == "streaming"


class ConversationModel(QAbstractListModel):
    """List model over ChatMessage rows. `MessageRole` returns the ChatMessage itself."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[ChatMessage] = []

    # Qt interface
    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        msg = self._rows[index.row()]
        if role == MessageRole:
            return msg
        if role == Qt.ItemDataRole.DisplayRole:
            return msg.text
        return None

    def roleNames(self):
        names = super().roleNames()
        names[MessageRole] = b"message"
        return names

    # Editing helpers used by the controller
    def messages(self) -> list[ChatMessage]:
        return list(self._rows)

    def message(self, row: int) -> ChatMessage:
        return self._rows[row]

    def last(self) -> ChatMessage | None:
        return self._rows[-1] if self._rows else None

    def set_messages(self, messages: list[ChatMessage]) -> None:
        self.beginResetModel()
        self._rows = list(messages)
        self.endResetModel()

    def append(self, message: ChatMessage) -> int:
        row = len(self._rows)
        self.beginInsertRows(QModelIndex(), row, row)
        self._rows.append(message)
        self.endInsertRows()
        return row

    def touch(self, row: int) -> None:
        """Tell views that the message at `row` changed in place."""
        idx = self.index(row)
        emit(self.dataChanged, idx, idx, [MessageRole])

    def remove_from(self, row: int) -> None:
        """Drop rows `row`..end (regenerate, edit and resend)."""
        if row >= len(self._rows):
            return
        self.beginRemoveRows(QModelIndex(), row, len(self._rows) - 1)
        del self._rows[row:]
        self.endRemoveRows()
