"""A tool call in the transcript: a one-line header that opens a block with the code (or the
function's arguments), its output and the images it saved; and, while the call waits for the
user, the choice: Run / Always in this chat / Don't run for Python code, a result typed by hand
(or Decline) for the developer's own functions.

Images are read only through engine.python_tool.read_image: the code owns its folder and could
have swapped a file for a link to the user's own files since the run.
"""
from __future__ import annotations

import json

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase, QPixmap
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QScrollArea, QToolButton,
                               QVBoxLayout, QWidget)

from app.mcp import steps as mcp_steps
from app.qt_compat import emit
from app.tool_steps import CallStep, Step
from app.ui.markdown_view import highlight_html, prose_label
from app.ui.theme import current_colors

IMAGE_WIDTH = 480
CONSENT_TEXT = ("The model wants to run this Python code. It runs in a sandbox on this computer: no network, "
                "and it can only change files in this chat's own folder.")


def header_text(step: CallStep) -> str:
    """The block's one line, e.g. "Ran Python code" or "get_weather is waiting for your answer"."""
    status = step.status
    if step.recipient.startswith("browser."):
        from app.ui.browser_header import browser_header
        return browser_header(step)
    if step.mcp:
        return mcp_steps.header(step)
    if step.python:
        return {"writing": "Writing Python code…", "pending": "Python code", "waiting": "Run this Python code?",
                "running": "Running Python code…", "declined": "Python code not run (you declined)",
                "stopped": "Python code stopped", "off": "Python code not run (the tool is off in Settings)",
                "invalid": "Python call could not be read",
                }.get(status, "Ran Python code" + (" · error" if step.problem else ""))
    name = step.name
    return {"writing": f"Calling {name}…", "pending": f"Call to {name}", "waiting": f"{name} is waiting for your answer",
            "declined": f"Call to {name} declined", "stopped": f"Call to {name} stopped",
            "invalid": f"Call to {name} could not be used",
            }.get(status, f"Called {name}")


def mono_label(text: str) -> QLabel:
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setText(text)
    label.setWordWrap(True)
    label.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class Sideways(QScrollArea):
    """Long lines of code scroll sideways inside the block instead of widening the chat column (at
    the window's minimum size the block's edge and its Run row were cut off)."""

    def __init__(self, label: QLabel):
        super().__init__(objectName="CodeScroll")
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setWidgetResizable(True)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setWidget(label)
        self._fit_height()

    def _fit_height(self) -> None:
        # Room for the sideways scroll bar only when the code is wider than the block.
        bar = self.horizontalScrollBar().sizeHint().height()
        wide = self.widget().sizeHint().width() > self.viewport().width()
        self.setFixedHeight(self.widget().sizeHint().height() + (bar if wide else 0))

    def resizeEvent(self, e) -> None:
        super().resizeEvent(e)
        self._fit_height()


def load_image(path: str, folder: str, mcp: bool = False) -> QPixmap | None:
    """A PNG the code saved (or an image an MCP tool returned), read safely; None when it is gone,
    moved or not such an image any more."""
    from engine.python_tool.output import read_image   # no Qt, no MLX: safe in the UI
    data = (mcp_steps.read_image if mcp else read_image)(path, folder) if folder else None
    if data is None:
        return None
    pix = QPixmap()
    return pix if pix.loadFromData(data) else None


class ToolBlock(QFrame):
    """One call step (see app/tool_steps.py). `decision(choice, text)` carries the user's answer."""

    decision = Signal(str, str)

    def __init__(self, step: CallStep, parent=None):
        super().__init__(parent)
        self.setObjectName("ToolBlock")
        self._open: bool | None = None      # None: follow the status (open while it needs the user)
        self._shown_for = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        self.header = QToolButton(objectName="ToolHeader")
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.header.setCursor(Qt.CursorShape.PointingHandCursor)
        self.header.clicked.connect(self.toggle)
        lay.addWidget(self.header)
        self.body = QWidget(objectName="ToolBody")
        self.body_lay = QVBoxLayout(self.body)
        self.body_lay.setContentsMargins(12, 6, 12, 10)
        self.body_lay.setSpacing(6)
        lay.addWidget(self.body)
        self.update_step(step)

    @property
    def is_open(self) -> bool:
        return self._open if self._open is not None else self._step.status in ("waiting", "running", "writing")

    def toggle(self) -> None:
        self._open = not self.is_open
        self._refresh_header()
        self.body.setVisible(self.is_open)

    def _refresh_header(self) -> None:
        self.header.setText(("▾ " if self.is_open else "▸ ") + header_text(self._step))

    def update_step(self, step: CallStep) -> None:
        self._step = step
        self._refresh_header()
        key = (step.status, len(step.arguments), step.result, tuple(step.images))
        if key != self._shown_for:
            self._shown_for = key
            self._fill(step)
        self.body.setVisible(self.is_open)

    # -- body ------------------------------------------------------------------------------
    def _clear(self) -> None:
        while self.body_lay.count():
            item = self.body_lay.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
            elif item.layout() is not None:
                _drop_layout(item.layout())

    def _fill(self, step: CallStep) -> None:
        self._clear()
        python, mcp = step.python, bool(step.mcp)
        status = step.status
        self.code_text = step.arguments
        if (python or mcp) and status == "waiting":
            note = QLabel(mcp_steps.consent_text(step) if mcp else CONSENT_TEXT, objectName="Caption")
            note.setWordWrap(True)
            self.body_lay.addWidget(note)
        if python:
            self.code = QLabel(objectName="ToolCode")
            self.code.setTextFormat(Qt.TextFormat.RichText)
            self.code.setText(highlight_html(step.arguments, "python", current_colors().dark))
            self.code.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
            self.code.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.body_lay.addWidget(Sideways(self.code))
        else:
            self.body_lay.addWidget(QLabel("Arguments", objectName="Caption"))
            self.code = mono_label(pretty_json(step.arguments))
            self.code.setObjectName("ToolCode")
            self.body_lay.addWidget(self.code)
        if step.error:
            self.body_lay.addWidget(_caption(f"The call could not be used: {step.error}"))
        if status == "waiting":
            self._choices(python, mcp)
        self.output = None
        result = step.result
        if result is not None and status not in ("invalid",):
            caption = "Output" if python else "Page the model saw" if step.recipient.startswith("browser.") else "Result"
            self.body_lay.addWidget(QLabel(caption, objectName="Caption"))
            self.output = mono_label(result if result.strip() else "(no output)")
            self.output.setObjectName("ToolOutput")
            if python:   # printed lines keep their shape and scroll sideways, like the code
                self.output.setWordWrap(False)
                self.body_lay.addWidget(Sideways(self.output))
            else:        # a page or a JSON result reads better wrapped
                self.body_lay.addWidget(self.output)
        if step.problem:
            self.body_lay.addWidget(_caption(step.problem))
        self.images: list[QLabel] = []
        for path in step.images:
            pix = load_image(path, step.folder, mcp)
            label = QLabel(objectName="ToolImage")
            if pix is None:
                label.setText("(an image the tool returned is no longer in this chat's folder)" if mcp else
                              "(an image the code saved is no longer in this chat's folder)")
                label.setObjectName("Caption")
            else:
                if pix.width() > IMAGE_WIDTH:
                    pix = pix.scaledToWidth(IMAGE_WIDTH, Qt.TransformationMode.SmoothTransformation)
                label.setPixmap(pix)
                self.images.append(label)
            self.body_lay.addWidget(label)

    def _choices(self, python: bool, mcp: bool = False) -> None:
        row = QHBoxLayout()
        row.setSpacing(8)
        if python or mcp:
            self.run_button = QPushButton("Run", objectName="Primary")
            self.always_button = QPushButton("Always for this tool in this chat" if mcp else "Always in this chat")
            self.decline_button = QPushButton("Don't run")
            self.always_button.setToolTip("Run this tool now and whenever this chat calls it again, without asking"
                                          if mcp else "Run this code and any later code in this chat without asking")
            self.run_button.clicked.connect(lambda: emit(self.decision, "run", ""))
            self.always_button.clicked.connect(lambda: emit(self.decision, "always", ""))
            self.decline_button.clicked.connect(lambda: emit(self.decision, "decline", ""))
            for b in (self.run_button, self.always_button, self.decline_button):
                row.addWidget(b)
        else:
            self.answer_box = QPlainTextEdit(objectName="ToolAnswer")
            self.answer_box.setPlaceholderText("Type the function's result (text or JSON), then Send result")
            self.answer_box.setFixedHeight(72)
            self.body_lay.addWidget(self.answer_box)
            self.send_button = QPushButton("Send result", objectName="Primary")
            self.decline_button = QPushButton("Decline")
            self.send_button.clicked.connect(lambda: emit(self.decision, "answer", self.answer_box.toPlainText()))
            self.decline_button.clicked.connect(lambda: emit(self.decision, "decline", ""))
            row.addWidget(self.send_button)
            row.addWidget(self.decline_button)
        row.addStretch(1)
        self.body_lay.addLayout(row)


def _caption(text: str) -> QLabel:
    label = QLabel(text, objectName="Notice")
    label.setWordWrap(True)
    return label


def _drop_layout(layout) -> None:
    while layout.count():
        item = layout.takeAt(0)
        if item.widget() is not None:
            item.widget().deleteLater()
    layout.deleteLater()


def pretty_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (json.JSONDecodeError, TypeError):
        return text


class StepsView(QWidget):
    """The steps of one answer in order: preambles as normal text, calls as ToolBlocks; chain of
    thought is not shown here (it stays behind the "Thought for N s" line)."""

    decision = Signal(str, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.lay = QVBoxLayout(self)
        self.lay.setContentsMargins(0, 0, 0, 0)
        self.lay.setSpacing(6)
        self.widgets: list[QWidget] = []
        self._kinds: list[str] = []

    def blocks(self) -> list[ToolBlock]:
        return [w for w in self.widgets if isinstance(w, ToolBlock)]

    def update_steps(self, steps: list[Step]) -> None:
        shown = [s for s in steps if s.type == "call" or (s.type == "preamble" and s.text)]
        kinds = [s.type for s in shown]
        if kinds[:len(self._kinds)] != self._kinds:   # a different answer (regenerate): start over
            for w in self.widgets:
                w.deleteLater()
            self.widgets, self._kinds = [], []
        for i, step in enumerate(shown):
            if i < len(self.widgets):
                w = self.widgets[i]
                if isinstance(w, ToolBlock):
                    w.update_step(step)
                else:
                    w.setText(step.text)
                continue
            if step.type == "call":
                w = ToolBlock(step)
                w.decision.connect(self.decision)
            else:
                w = prose_label(step.text, markdown=True)
                w.setObjectName("Preamble")
            self.lay.addWidget(w)
            self.widgets.append(w)
            self._kinds.append(step.type)
        self.setVisible(bool(self.widgets))


__all__ = ["StepsView", "ToolBlock", "header_text"]
