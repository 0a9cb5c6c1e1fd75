"""The composer: Enter sends, Shift+Enter adds a line; the Send button turns into Stop while an
answer is written; Regenerate and Edit act on the last turn."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontMetrics, QKeyEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QToolButton, QVBoxLayout, QWidget

from app.qt_compat import emit


class PromptEdit(QPlainTextEdit):
    """Multi-line input that submits on Enter and grows with its text up to eight lines."""
    submitted = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setPlaceholderText("Message gpt-oss")
        self.setTabChangesFocus(True)
        self.textChanged.connect(self._fit)
        self._fit()

    def keyPressEvent(self, e: QKeyEvent) -> None:
        if e.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (e.modifiers() & Qt.KeyboardModifier.ShiftModifier):
            emit(self.submitted)
            return
        super().keyPressEvent(e)

    def _fit(self) -> None:
        line = QFontMetrics(self.font()).lineSpacing()
        lines = min(max(self.document().blockCount(), 1), 8)
        self.setFixedHeight(lines * line + 18)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded if lines >= 8
                                        else Qt.ScrollBarPolicy.ScrollBarAlwaysOff)


class Composer(QWidget):
    send_requested = Signal(str)
    edit_requested = Signal(str)       # resend the edited last user message
    stop_requested = Signal()
    regenerate_requested = Signal()
    begin_edit_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._busy = False
        self._ready = False
        self.editing = False
        outer = QVBoxLayout(self)
        outer.setContentsMargins(24, 6, 24, 12)
        outer.setSpacing(4)
        tools = QHBoxLayout()
        self.edit_banner = QLabel("Editing your last message: Enter resends it, Esc cancels.", objectName="Caption")
        self.edit_banner.hide()
        self.regenerate_button = QToolButton(text="↻ Regenerate")
        self.regenerate_button.setToolTip("Write the last answer again")
        self.regenerate_button.clicked.connect(lambda: emit(self.regenerate_requested))
        self.edit_button = QToolButton(text="✎ Edit last message")
        self.edit_button.setToolTip("Change your last message and send it again")
        self.edit_button.clicked.connect(lambda: emit(self.begin_edit_requested))
        tools.addWidget(self.edit_banner)
        tools.addStretch(1)
        tools.addWidget(self.edit_button)
        tools.addWidget(self.regenerate_button)
        outer.addLayout(tools)
        box = QWidget(objectName="ComposerBox")
        row = QHBoxLayout(box)
        row.setContentsMargins(10, 6, 6, 6)
        self.input = PromptEdit()
        self.input.submitted.connect(self.submit)
        self.send_button = QPushButton("Send", objectName="Primary")
        self.send_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.send_button.clicked.connect(self._send_or_stop)
        row.addWidget(self.input, 1)
        row.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)
        outer.addWidget(box)
        self.hint = QLabel("Enter to send · Shift+Enter for a new line · Esc stops", objectName="Caption")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        outer.addWidget(self.hint)
        self.set_state(ready=False, busy=False, has_answer=False, has_user=False)

    def set_state(self, ready: bool, busy: bool, has_answer: bool, has_user: bool) -> None:
        self._ready, self._busy = ready, busy
        self.send_button.setText("Stop" if busy else ("Resend" if self.editing else "Send"))
        self.send_button.setObjectName("Danger" if busy else "Primary")
        self.send_button.style().unpolish(self.send_button)
        self.send_button.style().polish(self.send_button)
        self.send_button.setEnabled(busy or ready)
        self.regenerate_button.setEnabled(ready and not busy and has_answer)
        self.edit_button.setEnabled(ready and not busy and has_user)

    def _send_or_stop(self) -> None:
        if self._busy:
            emit(self.stop_requested)
        else:
            self.submit()

    def submit(self) -> None:
        text = self.input.toPlainText().strip()
        if not text or self._busy or not self._ready:
            return  # the text stays in the box: nothing typed is ever lost
        if self.editing:
            emit(self.edit_requested, text)
        else:
            emit(self.send_requested, text)

    def accepted(self) -> None:
        """The controller took the message: clear the box."""
        self.input.clear()
        self.end_edit()

    def begin_edit(self, text: str) -> None:
        self.editing = True
        self.edit_banner.show()
        self.input.setPlainText(text)
        self.input.setFocus()
        self.send_button.setText("Resend")

    def end_edit(self) -> None:
        if self.editing:
            self.editing = False
            self.edit_banner.hide()
            self.send_button.setText("Stop" if self._busy else "Send")
