"""Settings' "Cached conversations": the disk space they may take, and a button that clears them.

Long chats are kept ready on disk so reopening one skips reading it again (engine/prompt_store.py).
The space is part of Save/Cancel (`gigabytes()`); the button acts at once (`clear_requested`).
"""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


class PromptCacheSection(QWidget):
    clear_requested = Signal()

    def __init__(self, gigabytes: float, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("Cached conversations", objectName="Title"))
        row = QHBoxLayout()
        row.addWidget(QLabel("Disk space"))
        self.space = QDoubleSpinBox(decimals=1, minimum=0.0, maximum=1000.0, singleStep=0.5)
        self.space.setSuffix(" GB")
        self.space.setValue(gigabytes)
        self.space.setToolTip("0 keeps nothing on disk: a reopened chat is read again from its start.")
        row.addWidget(self.space)
        row.addStretch(1)
        self.clear_button = QPushButton("Clear cached conversations")
        self.clear_button.clicked.connect(self._clear)
        row.addWidget(self.clear_button)
        lay.addLayout(row)
        self.about = QLabel("Long chats are kept ready on this computer, so reopening one (or an API client "
                            "resending it) doesn't read it all again. Your chats themselves are not affected.",
                            objectName="Caption")
        self.about.setWordWrap(True)
        lay.addWidget(self.about)
        self.done = QLabel("", objectName="Caption")
        lay.addWidget(self.done)

    def gigabytes(self) -> float:
        return float(self.space.value())

    def _clear(self) -> None:
        self.clear_requested.emit()
        self.done.setText("Cleared.")
