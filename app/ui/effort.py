"""Reasoning effort as a three-stop slider: Low / Medium / High. Clicking a label picks that stop."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QGridLayout, QLabel, QSlider, QWidget

from app.qt_compat import emit
from app.ui.theme import current_colors

EFFORTS = ("low", "medium", "high")


EFFORT_TIP = "How long gpt-oss reasons before answering. Takes effect from the next message."
# The demo with Python offered writes its whole working at every effort (models/demo/README.md).
DEMO_PYTHON_TIP = ("With Python on, the demo model writes out its full working at every effort; turn Python off "
                   "in Settings to see effort change its answers. gpt-oss follows effort either way.")

class _StopLabel(QLabel):
    """A label under the slider that moves the slider to its stop when clicked."""

    def __init__(self, text: str, on_click, parent=None):
        super().__init__(text, parent, objectName="Stats")
        self._on_click = on_click
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def mousePressEvent(self, e) -> None:
        if e.button() == Qt.MouseButton.LeftButton:
            self._on_click()
        super().mousePressEvent(e)


class _FocusSlider(QSlider):
    """A slider that shows keyboard focus (the Fusion style draws none): a ring in the accent colour."""

    def paintEvent(self, e) -> None:
        super().paintEvent(e)
        if self.hasFocus():
            p = QPainter(self)
            p.setPen(QPen(QColor(current_colors().accent), 1))
            p.drawRoundedRect(self.rect().adjusted(0, 0, -1, -1), 4, 4)
            p.end()


class EffortSlider(QWidget):
    effort_changed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setToolTip(EFFORT_TIP)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(0)
        self.caption = QLabel("Reasoning", objectName="Caption")
        grid.addWidget(self.caption, 0, 0, 2, 1)
        self.slider = _FocusSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 2)
        self.slider.setPageStep(1)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setTickInterval(1)
        self.slider.setValue(1)
        self.slider.valueChanged.connect(self._moved)
        grid.addWidget(self.slider, 0, 1, 1, 3)
        self.labels = []
        for i, name in enumerate(("Low", "Medium", "High")):
            label = _StopLabel(name, lambda i=i: self.slider.setValue(i))
            align = (Qt.AlignmentFlag.AlignLeft, Qt.AlignmentFlag.AlignHCenter, Qt.AlignmentFlag.AlignRight)[i]
            grid.addWidget(label, 1, 1 + i, align)
            self.labels.append(label)
        for col in (1, 2, 3):
            grid.setColumnStretch(col, 1)
        # Wide enough that the three labels never touch (they read as one word when they do).
        widest = max(lab.sizeHint().width() for lab in self.labels)
        self.slider.setFixedWidth(3 * widest + 2 * 12)

    def effort(self) -> str:
        return EFFORTS[self.slider.value()]

    def set_effort(self, effort: str) -> None:
        """Show `effort` without announcing it as a user change."""
        self.slider.blockSignals(True)
        self.slider.setValue(EFFORTS.index(effort) if effort in EFFORTS else 1)
        self.slider.blockSignals(False)

    def _moved(self, value: int) -> None:
        emit(self.effort_changed, EFFORTS[value])
