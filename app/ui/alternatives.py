"""‹ 2/3 ›: flip between a message's alternatives (regenerated answers, edited messages' branches).

Both arrows are Tab stops with names a screen reader says; Left and Right also flip while either
has focus. The switcher only asks (the `step` signal): the controller swaps the branch and the
view is rebuilt, then gives focus back to the same arrow so a keyboard user can keep flipping.
"""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget

from app.qt_compat import emit


class AlternativeSwitcher(QWidget):
    """‹ k/n ›; hidden when there is nothing to flip to."""

    step = Signal(int)     # -1: the alternative before, +1: the one after

    def __init__(self, noun: str, parent=None):
        super().__init__(parent)
        self.setObjectName("Alternatives")
        self.noun = noun          # "answer" or "version", for tooltips and screen readers
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        self.prev = QToolButton(text="‹", objectName="AltArrow")
        self.next = QToolButton(text="›", objectName="AltArrow")
        self.label = QLabel(objectName="Caption")
        for button, delta in ((self.prev, -1), (self.next, +1)):
            button.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.setAutoRaise(True)
            button.setMinimumSize(24, 22)     # a target a pointer can hit, not just the glyph
            button.clicked.connect(lambda _=False, d=delta: emit(self.step, d))
            button.installEventFilter(self)
        row.addWidget(self.prev)
        row.addWidget(self.label)
        row.addWidget(self.next)
        self.set_state((), True)

    def set_state(self, alternatives: tuple, enabled: bool) -> None:
        """`alternatives`: (the one shown, from 1; how many) or () for none; `enabled`: False while
        this chat answers (the branch can't change under the answer)."""
        k, n = alternatives if len(alternatives) == 2 else (0, 0)
        self.setVisible(n > 1)
        self.label.setText(f"{k}/{n}")
        self.label.setAccessibleName(f"{self.noun.capitalize()} {k} of {n}")
        self.prev.setEnabled(enabled and k > 1)
        self.next.setEnabled(enabled and k < n)
        self.prev.setToolTip(f"Previous {self.noun} ({k - 1} of {n})" if k > 1 else "")
        self.next.setToolTip(f"Next {self.noun} ({k + 1} of {n})" if k < n else "")
        self.prev.setAccessibleName(f"Previous {self.noun}")
        self.next.setAccessibleName(f"Next {self.noun}")

    def eventFilter(self, obj, e) -> bool:
        if e.type() == e.Type.KeyPress and e.key() in (Qt.Key.Key_Left, Qt.Key.Key_Right):
            button = self.prev if e.key() == Qt.Key.Key_Left else self.next
            if button.isEnabled():
                button.click()
            return True
        return super().eventFilter(obj, e)


class EditButton(QToolButton):
    """✎ under a user message: edit it and send it as a new branch (the old one is kept)."""

    def __init__(self, parent=None):
        super().__init__(parent, text="✎ Edit", objectName="EditMessage")
        self.setAutoRaise(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Edit this message and send it again; the conversation from here on is kept as "
                        "another branch")


class FittedLabel(QLabel):
    """One line when there is room, wrapped when there isn't (an answer's figures beside its arrows
    in a narrow window). A plain word-wrapped label would wrap even with room to spare."""

    def __init__(self, parent=None, objectName: str = ""):
        super().__init__(parent, objectName=objectName)
        self.setWordWrap(True)

    def sizeHint(self) -> QSize:
        m = self.contentsMargins()
        width = self.fontMetrics().horizontalAdvance(self.text()) + m.left() + m.right() + 2
        return QSize(width, self.heightForWidth(width))
