"""Settings' "Local API server" switch: on/off, the URL to copy, the requests served, and who can reach it.

The switch acts at once, so the URL can be copied before Save; Cancel puts the server back as it was
when the dialog opened (revert()).
`api` is app.api_server.LocalApiServer (running, url, served, note, set_enabled, changed, served_changed).
"""
from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from app.ui.message_view import THIS_MACHINE


def served_text(n: int) -> str:
    return f"{n} request served" if n == 1 else f"{n} requests served"


class ApiServerSection(QWidget):
    def __init__(self, api, parent=None):
        super().__init__(parent)
        self.api = api
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("Local API", objectName="Title"))
        self.switch = QCheckBox("Local API server")
        self.switch.setChecked(api.running)
        self._was_running = api.running
        self.switch.toggled.connect(self._toggled)
        lay.addWidget(self.switch)
        self.about = QLabel("Editors, scripts and agents can use the loaded model through the OpenAI API. They "
                            "share it with this window: their requests and your chats take turns.", objectName="Caption")
        self.about.setWordWrap(True)
        lay.addWidget(self.about)
        row = QHBoxLayout()
        self.url = QLineEdit(readOnly=True)
        self.url.setToolTip("The base URL for OpenAI clients (base_url); any API key is accepted.")
        self.copy_button = QPushButton("Copy")
        self.copy_button.clicked.connect(self.copy_url)
        row.addWidget(self.url, 1)
        row.addWidget(self.copy_button)
        self.url_row = QWidget()
        self.url_row.setLayout(row)
        row.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.url_row)
        self.served = QLabel(objectName="Caption")
        lay.addWidget(self.served)
        self.reach = QLabel(f"Only programs on {THIS_MACHINE} can reach it: it listens on 127.0.0.1, not on "
                            "the network.", objectName="Caption")
        self.reach.setWordWrap(True)
        lay.addWidget(self.reach)
        self.note = QLabel(objectName="Notice")
        self.note.setWordWrap(True)
        lay.addWidget(self.note)
        # Bound methods, not lambdas: Qt drops them when this widget is deleted with its dialog.
        api.changed.connect(self.refresh)
        api.served_changed.connect(self._show_served)
        self.refresh()

    def _show_served(self, n: int) -> None:
        self.served.setText(served_text(int(n)))

    def revert(self) -> None:
        """Cancel: the server on or off as it was when Settings opened."""
        if self.api.running != self._was_running:
            self.api.set_enabled(self._was_running)

    def refresh(self) -> None:
        on = self.api.running
        if self.switch.isChecked() != on:
            self.switch.blockSignals(True)
            self.switch.setChecked(on)
            self.switch.blockSignals(False)
        self.url.setText(self.api.url if on else "")
        self.url_row.setVisible(on)
        self.served.setVisible(on)
        self.served.setText(served_text(self.api.served))
        self.note.setText(self.api.note)
        self.note.setVisible(bool(self.api.note))
        # A port taken is information; a server that could not start is a problem.
        self.note.setObjectName("Notice" if self.api.note and not on else "Caption")
        self.note.style().unpolish(self.note)
        self.note.style().polish(self.note)

    def copy_url(self) -> None:
        QGuiApplication.clipboard().setText(self.url.text())
        self.copy_button.setText("Copied")
        QTimer.singleShot(1500, self.copy_button, lambda: self.copy_button.setText("Copy"))

    def _toggled(self, on: bool) -> None:
        self.api.set_enabled(on)
        self.refresh()
