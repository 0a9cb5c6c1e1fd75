"""The local API's request log: the last requests answered, newest first, failures (4xx/5xx) in red,
an "Errors only" filter and Clear. Opened from Settings' Local API section and from the status bar.

`log` is app.request_log.RequestLog (records(), failures, clear(), changed). What a client sent is
never here (the server records no bodies or keys); the path and model it named are shown as plain text.
"""
from __future__ import annotations

import time
from http import HTTPStatus

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QDialog, QHBoxLayout, QHeaderView, QLabel, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout)

from app.ui.theme import current_colors

COLUMNS = ("Time", "Client", "Request", "Model", "Status", "Tokens in → out", "Duration")
EMPTY = "No requests yet: they appear here as programs use the local API."


def duration_text(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def status_tip(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return "The client went away before an answer started." if status == 499 else str(status)


def summary_text(n: int, failed: int) -> str:
    if not n:
        return EMPTY
    from app.ui.api_server_section import errors_text

    text = "1 request" if n == 1 else f"{n} requests"
    return text + f" · {errors_text(failed) if failed else 'no errors'}"


class RequestLogView(QDialog):
    def __init__(self, log, parent=None):
        super().__init__(parent)
        self.log = log
        self.setWindowTitle("Local API Requests")
        self.setMinimumSize(560, 300)
        self.resize(860, 440)
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        self.summary = QLabel(objectName="Caption")
        self.failures_only = QCheckBox("Errors only")
        self.failures_only.toggled.connect(self.refresh)
        top.addWidget(self.summary, 1)
        top.addWidget(self.failures_only)
        lay.addLayout(top)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)   # the path takes what is left
        lay.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        note = QLabel("Kept in memory only, without what was sent or the key.", objectName="Caption")
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(log.clear)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        buttons.addWidget(note, 1)
        buttons.addWidget(self.clear_button)
        buttons.addWidget(close)
        lay.addLayout(buttons)
        log.changed.connect(self.refresh)   # a bound method: dropped when this dialog is deleted
        self.refresh()

    def refresh(self, *_) -> None:
        records = self.log.records()
        failed = sum(r.failed for r in records)
        self.summary.setText(summary_text(len(records), failed))
        self.summary.setObjectName("Notice" if failed else "Caption")
        self.summary.style().unpolish(self.summary)
        self.summary.style().polish(self.summary)
        shown = [r for r in reversed(records) if r.failed or not self.failures_only.isChecked()]
        self.table.setRowCount(len(shown))
        red = QBrush(QColor(current_colors().danger))
        bold = QFont(self.table.font())
        bold.setBold(True)
        for row, r in enumerate(shown):
            tokens = "" if r.tokens_in is None else f"{r.tokens_in:,} → {r.tokens_out:,}"
            cells = (time.strftime("%H:%M:%S", time.localtime(r.at)), r.client, f"{r.method} {r.path}", r.model,
                     str(r.status), tokens, duration_text(r.duration_s))
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)   # plain text: the path and model are the client's words
                if col in (4, 5, 6):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if r.failed:
                    item.setForeground(red)
                if col == 4:
                    item.setToolTip(status_tip(r.status))
                    if r.failed:
                        item.setFont(bold)
                self.table.setItem(row, col, item)
        self.clear_button.setEnabled(bool(records))


class StatusLink(QLabel):
    """The status bar's "API on …" text: a click opens the request log."""

    clicked = Signal()

    def __init__(self, parent=None):
        super().__init__("", parent, objectName="Caption")
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
        super().mouseReleaseEvent(event)


def status_text(api, answering: bool = False) -> str:
    """'API on 127.0.0.1:8000 · 3 requests served · 1 error' ("" when off)."""
    from app.ui.api_server_section import errors_text, served_text

    if not api.running:
        return ""
    doing = "answering a request" if answering else served_text(api.served)
    failed = api.requests.failures
    return (f"API on {api.url.removeprefix('http://').removesuffix('/v1')} · {doing}"
            + (f" · {errors_text(failed)}" if failed else ""))
