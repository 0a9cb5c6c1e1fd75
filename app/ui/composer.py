"""The composer: Enter sends, Shift+Enter adds a line; the Send button turns into Stop while an
answer is written; Regenerate and Edit act on the last turn."""
from __future__ import annotations

from PySide6.QtCore import QRect, Qt, Signal
from PySide6.QtGui import QFontMetrics, QKeyEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QToolButton, QVBoxLayout, QWidget

from app.qt_compat import emit


MAX_LINES = 8


class PromptEdit(QPlainTextEdit):
    """Multi-line input that submits on Enter and grows with its text, new and wrapped lines alike,
    up to MAX_LINES; past that it scrolls."""
    submitted = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setPlaceholderText("Message gpt-oss")
        self.setTabChangesFocus(True)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.textChanged.connect(self._fit)
        self._fit()

    def keyPressEvent(self, e: QKeyEvent) -> None:
        if e.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (e.modifiers() & Qt.KeyboardModifier.ShiftModifier):
            emit(self.submitted)
            return
        super().keyPressEvent(e)

    def showEvent(self, e) -> None:
        super().showEvent(e)
        self._fit()     # the style sheet's padding is known only now

    def resizeEvent(self, e) -> None:
        super().resizeEvent(e)
        if e.size().width() != e.oldSize().width():   # a new width wraps the text differently
            self._fit()

    def visual_lines(self) -> int:
        """Lines the text takes at the current width: each paragraph's wrapped lines added up."""
        fm = QFontMetrics(self.font())
        width = max(self.viewport().width() - 2 * int(self.document().documentMargin()), 20)
        total = 0
        block = self.document().firstBlock()
        while block.isValid():
            text = block.text()
            if text:
                rect = fm.boundingRect(QRect(0, 0, width, 10**6), int(Qt.TextFlag.TextWordWrap | Qt.TextFlag.TextWrapAnywhere), text)
                total += max(1, round(rect.height() / fm.lineSpacing()))
            else:
                total += 1
            block = block.next()
        return max(total, 1)

    def _fit(self) -> None:
        fm = QFontMetrics(self.font())
        lines = min(self.visual_lines(), MAX_LINES)
        # The frame, the style sheet's padding and the document margin all take room: ask for the
        # widget height that leaves exactly `lines` lines of text visible.
        chrome = self.height() - self.viewport().height()
        if not 0 <= chrome <= 60:     # not laid out yet
            chrome = 2 * self.frameWidth() + 12
        self.setFixedHeight(lines * fm.lineSpacing() + chrome + 2 * int(self.document().documentMargin()) + 2)
        overflow = self.visual_lines() > MAX_LINES
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded if overflow
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
        tools = self.tools = QHBoxLayout()   # the window adds the chat's settings button at its left
        self.edit_banner = QLabel("Editing your last message: Enter resends it, Esc cancels.", objectName="Caption")
        self.edit_banner.setWordWrap(True)    # a narrow window wraps it rather than widening the window
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
        self.notice = QLabel("", objectName="Notice")     # why the message in the box was not sent
        self.notice.setWordWrap(True)
        self.notice.hide()
        outer.addWidget(self.notice)
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

    def set_state(self, ready: bool, busy: bool, has_answer: bool, has_user: bool, elsewhere: bool = False) -> None:
        """`busy`: this chat's answer is being written (Send becomes Stop); `elsewhere`: another chat's is."""
        self._ready, self._busy = ready and not elsewhere, busy
        self.send_button.setText("Stop" if busy else ("Resend" if self.editing else "Send"))
        self.send_button.setObjectName("Danger" if busy else "Primary")
        self.send_button.style().unpolish(self.send_button)
        self.send_button.style().polish(self.send_button)
        self.send_button.setEnabled(busy or self._ready)
        self.send_button.setToolTip("Another chat is answering; wait for it or stop it there." if elsewhere else "")
        idle = self._ready and not busy
        self.regenerate_button.setEnabled(idle and has_answer)
        self.edit_button.setEnabled(idle and has_user)
        # Nothing to regenerate or edit in an empty chat: the buttons appear with the first message.
        self.regenerate_button.setVisible(has_answer)
        self._has_user = has_user
        self.edit_button.setVisible(has_user and not self.editing)

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
        self.show_notice("")

    def show_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.setVisible(bool(text))

    def take_back(self, text: str, notice: str) -> None:
        """A refused message comes back into the box (before anything typed since), with why."""
        typed = self.input.toPlainText()
        self.input.setPlainText(text + ("\n\n" + typed if typed.strip() else ""))
        self.show_notice(notice)
        self.input.setFocus()

    def begin_edit(self, text: str, what: str = "your last message") -> None:
        """Edit mode: Enter sends `text` (changed) in place of `what`; the old branch is kept. What
        was typed in the box meanwhile comes back when the edit ends."""
        if not self.editing:
            self._draft = self.input.toPlainText()
        self.editing = True
        self.edit_banner.setText(f"Editing {what}: Enter sends it as a new branch, Esc cancels.")
        self.edit_banner.setToolTip("The conversation from this message on is kept as it is; ‹ › under the "
                                    "message flips between the branches.")
        self.edit_banner.show()
        self.edit_button.hide()       # (it is the edit in progress)
        self.input.setPlainText(text)
        self.input.setFocus()
        self.send_button.setText("Resend")

    def end_edit(self) -> None:
        if self.editing:
            draft, self._draft = getattr(self, "_draft", ""), ""
            typed = self.input.toPlainText()
            if draft.strip() and typed != draft:   # never lose either text: the draft follows the edit
                self.input.setPlainText(f"{typed}\n\n{draft}" if typed.strip() else draft)
            self.editing = False
            self.edit_banner.hide()
            self.edit_button.setVisible(self._has_user)
            self.send_button.setText("Stop" if self._busy else "Send")
