"""Reasoning effort as a three-stop slider: Low / Medium / High (default Medium)."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QLabel, QSlider, QWidget

from app.qt_compat import emit

EFFORTS = ("low", "medium", "high")


class EffortSlider(QWidget):
    effort_changed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setToolTip("How long gpt-oss reasons before answering. Takes effect from the next message.")
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(0)
        grid.addWidget(QLabel("Reasoning", objectName="Caption"), 0, 0, 2, 1)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 2)
        self.slider.setPageStep(1)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setTickInterval(1)
        self.slider.setFixedWidth(150)
        self.slider.setValue(1)
        self.slider.valueChanged.connect(self._moved)
        grid.addWidget(self.slider, 0, 1, 1, 3)
        for i, name in enumerate(("Low", "Medium", "High")):
            label = QLabel(name, objectName="Stats")
            align = (Qt.AlignmentFlag.AlignLeft, Qt.AlignmentFlag.AlignHCenter, Qt.AlignmentFlag.AlignRight)[i]
            grid.addWidget(label, 1, 1 + i, align)

    def effort(self) -> str:
        return EFFORTS[self.slider.value()]

    def set_effort(self, effort: str) -> None:
        """Show `effort` without announcing it as a user change."""
        self.slider.blockSignals(True)
        self.slider.setValue(EFFORTS.index(effort) if effort in EFFORTS else 1)
        self.slider.blockSignals(False)

    def _moved(self, value: int) -> None:
        emit(self.effort_changed, EFFORTS[value])
