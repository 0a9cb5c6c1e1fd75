"""The message list: renders the rows of a ConversationModel as bubbles and follows its signals.

User messages sit right in a tinted bubble; answers sit left, full width. While an answer streams
its text goes into one Markdown label (cheap to update every batch); when it finishes it is
rendered once more with code-block widgets (syntax colours, Copy). The chain of thought is
summarised as "Thinking… N s" / "Thought for N s"; its raw text is only put in a widget when the
developer setting is on, and then that line is the button that shows or hides it.
"""
from __future__ import annotations

import json
import sys
import time

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QPushButton, QScrollArea, QSizePolicy, QToolButton,
                               QVBoxLayout, QWidget)

from app.citation_links import link_citations
from app.conversation import ChatMessage, ConversationModel, MessageRole
from app.qt_compat import emit
from app.ui.alternatives import AlternativeSwitcher, EditButton, FittedLabel
from app.ui.markdown_view import MarkdownView, prose_label
from app.ui.tool_block import StepsView

RAW_CAPTION = "Raw chain of thought: unfiltered model output, not checked for accuracy or safety."
HIDDEN_TIP = ("The model's reasoning is hidden: it is unfiltered model output. A developer can show it with "
              "“Show raw chain of thought” in Settings.")
THIS_MACHINE = "this Mac" if sys.platform == "darwin" else "this computer"
USER_INDENT = 80        # a user bubble leaves this much room on its left


def thinking_text(msg: ChatMessage, now: float | None = None) -> str:
    """The line above an answer: live "Thinking… N s", then "Thought for N s" ('' when none)."""
    if msg.streaming and msg.phase == "thinking" and msg.think_started is not None:
        now = time.monotonic() if now is None else now
        return f"Thinking… {max(0, int(now - msg.think_started))} s"
    if msg.streaming and msg.phase == "queued":  # the model is answering another request (the local API)
        return "Waiting for the model…"
    if msg.streaming and msg.phase == "mcp":      # the chat's MCP servers start (first message only)
        return "Starting this chat's tool servers…"
    if msg.streaming and msg.phase == "waiting":
        if msg.reading is not None:  # only sent for prompts that take more than a second to read
            return f"Reading your message… {int(msg.reading * 100)}%"
        return "Thinking…"
    if msg.thought_seconds is not None:
        s = msg.thought_seconds
        return f"Thought for {max(s, 0.1):.1f} s" if s < 0.95 else f"Thought for {round(s)} s"
    return ""


def json_block(text: str) -> str:
    """A structured (JSON Schema) answer as a highlighted JSON code block, pretty-printed."""
    try:
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (json.JSONDecodeError, TypeError):
        pass
    return f"```json\n{text}\n```"


def stats_text(msg: ChatMessage) -> str:
    s = msg.stats or {}
    parts = []
    if msg.state == "stopped":
        parts.append("Stopped")
    if msg.effort:
        parts.append(f"{msg.effort.capitalize()} effort")
    if s.get("json_answer"):
        parts.append("Answer in your JSON format")
    if "generated_tokens" in s:
        n = s["generated_tokens"]
        parts.append(f"{n} token" if n == 1 else f"{n} tokens")
    if s.get("decode_tps"):
        parts.append(f"{s['decode_tps']:.1f} tokens/s")
    if s.get("ttft_s"):
        parts.append(f"{s['ttft_s']:.2f} s to first token")
    return " · ".join(parts)


class UserBubble(QWidget):
    def __init__(self, msg: ChatMessage, parent=None):
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        row = QHBoxLayout()
        outer.addLayout(row)
        row.setContentsMargins(USER_INDENT, 4, 0, 4)
        row.addStretch(1)
        bubble = QWidget(objectName="UserBubble")
        lay = QVBoxLayout(bubble)
        lay.setContentsMargins(14, 9, 14, 9)
        self.label = prose_label(msg.text, markdown=False)
        self.label.setObjectName("UserText")
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)   # no Tab stop: no links
        self._text = msg.text
        self._row_width = 460 + USER_INDENT + 30
        self._fit(msg.text)
        lay.addWidget(self.label)
        bubble.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Preferred)
        row.addWidget(bubble)
        # Under the bubble, right-aligned: this message's branches (‹ 1/2 ›) and Edit.
        footer = QHBoxLayout()
        footer.setContentsMargins(USER_INDENT, 0, 0, 2)
        footer.addStretch(1)
        self._idle = True
        self.switcher = AlternativeSwitcher("version")
        self.edit_button = EditButton()
        footer.addWidget(self.switcher)
        footer.addWidget(self.edit_button)
        outer.addLayout(footer)
        self.switcher.set_state(msg.alternatives, True)

    def _fit(self, text: str) -> None:
        # A word-wrapped label in a shrinking bubble collapses to its narrowest; ask for the text's width,
        # but never more than the row has (a narrow window wraps the text instead of cutting it).
        fm = self.label.fontMetrics()
        widest = max((fm.horizontalAdvance(line) for line in text.splitlines() or [""]), default=0)
        room = self._row_width - USER_INDENT - 2 * 14 - 2
        self.label.setMinimumWidth(max(40, min(widest + 6, 460, room)))

    def set_row_width(self, width: int) -> None:
        """The width the message column gives this row (told by the view: the row can't know it
        itself, since its own width follows the label's minimum)."""
        if width != self._row_width:
            self._row_width = width
            self._fit(self._text)

    def update_from(self, msg: ChatMessage, show_raw: bool) -> None:
        self.label.setText(msg.text)
        self._text = msg.text
        self._fit(msg.text)
        self.switcher.set_state(msg.alternatives, self._idle)

    def set_idle(self, idle: bool, msg: ChatMessage) -> None:
        """While this chat answers, its branches and edits wait."""
        self._idle = idle
        self.switcher.set_state(msg.alternatives, idle)
        self.edit_button.setEnabled(idle)


class AssistantBubble(QWidget):
    def __init__(self, msg: ChatMessage, show_raw: bool, parent=None):
        super().__init__(parent)
        self._rendered_for: str | None = None
        self._raw_open = True
        self._has_raw = False
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 6, 60, 10)
        lay.setSpacing(6)
        top = QHBoxLayout()
        # "Thought for N s" is itself the button that shows the reasoning (when Settings allow it).
        self.thinking = QToolButton(objectName="Thinking")
        self.thinking.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.thinking.clicked.connect(self._toggle_raw)
        self.raw_toggle = self.thinking
        top.addWidget(self.thinking)
        top.addStretch(1)
        lay.addLayout(top)
        self.raw_panel = QWidget(objectName="RawThought")
        raw_lay = QVBoxLayout(self.raw_panel)
        raw_lay.setContentsMargins(8, 2, 0, 2)
        caption = QLabel(RAW_CAPTION, objectName="Caption")
        caption.setWordWrap(True)     # one long line would widen the whole column in a narrow window
        raw_lay.addWidget(caption)
        self.raw_text = prose_label("", markdown=False)
        self.raw_text.setObjectName("RawText")
        raw_lay.addWidget(self.raw_text)
        lay.addWidget(self.raw_panel)
        self.steps = StepsView()          # preambles and tool calls, in the order the model made them
        lay.addWidget(self.steps)
        self.body_box = QVBoxLayout()
        self.body_box.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(self.body_box)
        # While streaming, one Markdown label (cheap to re-set per batch); code blocks with highlighting
        # and Copy buttons are built once the answer is finished.
        self.plain = prose_label("", markdown=True, streaming=True)
        self.plain.setObjectName("AnswerStreaming")
        self.body_box.addWidget(self.plain)
        self.rendered: MarkdownView | None = None
        self.stats = FittedLabel(objectName="Stats")   # beside ‹ k/n ›, wraps in a narrow window
        self.notice = QLabel(objectName="Notice")
        self.notice.setWordWrap(True)
        footer = QHBoxLayout()
        footer.setSpacing(6)
        # The whole answer as the model wrote it (Markdown), for pasting elsewhere.
        self.copy_button = QToolButton(text="Copy", objectName="CopyMessage")
        self.copy_button.setToolTip("Copy this answer as Markdown")
        self.copy_button.clicked.connect(self.copy_markdown)
        self.copy_button.hide()
        self.switcher = AlternativeSwitcher("answer")   # ‹ 2/3 ›: regenerated answers
        self._idle = True
        footer.addWidget(self.switcher)
        footer.addWidget(self.stats)
        footer.addWidget(self.copy_button)
        footer.addStretch(1)
        lay.addLayout(footer)
        self._markdown = ""
        lay.addWidget(self.notice)
        self.update_from(msg, show_raw)

    def copy_markdown(self) -> None:
        from PySide6.QtGui import QGuiApplication
        QGuiApplication.clipboard().setText(self._markdown)
        self.copy_button.setText("Copied")
        QTimer.singleShot(1500, self.copy_button, lambda: self.copy_button.setText("Copy"))

    def _toggle_raw(self) -> None:
        if not self._has_raw:
            return   # hidden by the developer setting: the tooltip says so
        self._raw_open = not self._raw_open
        self.raw_panel.setVisible(self._raw_open and bool(self.raw_text.text()))
        self._show_line()
        self._label_toggle()

    def _show_line(self) -> None:
        """'Thought for N s', with the arrow saying whether the reasoning is shown (▾) or folded (▸)."""
        line = self._line
        if line and self._has_raw and not self._streaming:
            line += "  ▾" if self._raw_open else "  ▸"
        self.thinking.setText(line)
        self.thinking.setVisible(bool(line))

    def _label_toggle(self) -> None:
        if self._has_raw:
            self.thinking.setToolTip("Hide the reasoning" if self._raw_open else "Show the reasoning")
            self.thinking.setCursor(Qt.CursorShape.PointingHandCursor)
        else:
            self.thinking.setToolTip(HIDDEN_TIP)
            self.thinking.unsetCursor()

    def update_from(self, msg: ChatMessage, show_raw: bool) -> None:
        has_raw = show_raw and bool(msg.analysis)
        self._has_raw = has_raw
        self._line, self._streaming = thinking_text(msg), msg.streaming
        self._show_line()
        self._label_toggle()
        if has_raw:
            self.raw_text.setText(msg.analysis)
        else:
            self.raw_text.setText("")    # hidden means not even in the widget tree's text
        self.raw_panel.setVisible(has_raw and self._raw_open)
        self.steps.update_steps(msg.steps)
        if msg.streaming or not msg.text:
            self.plain.setText(msg.text if msg.text or msg.streaming else
                               ("(stopped before the answer began)" if msg.state == "stopped" else ""))
            self.plain.setVisible(bool(self.plain.text()))
        elif self._rendered_for != msg.text:
            if self.rendered is not None:
                self.rendered.deleteLater()
            self.rendered = MarkdownView(json_block(msg.text) if msg.stats.get("json_answer")
                                         else link_citations(msg.text, msg.steps))   # 【6†L9】 -> a link
            self.rendered.setObjectName("AnswerBody")
            self.body_box.addWidget(self.rendered)
            self.plain.hide()
            self._rendered_for = msg.text
        stats = "" if msg.streaming else stats_text(msg)
        self.stats.setText(stats)
        self.stats.setVisible(bool(stats))
        self._markdown = msg.text
        self.copy_button.setVisible(not msg.streaming and bool(msg.text))
        self.notice.setText(msg.notice)
        self.notice.setVisible(bool(msg.notice))
        self.switcher.set_state(msg.alternatives, self._idle and not msg.streaming)

    def set_idle(self, idle: bool, msg: ChatMessage) -> None:
        """While this chat answers, its alternatives wait."""
        self._idle = idle
        self.switcher.set_state(msg.alternatives, idle and not msg.streaming)


class MessageView(QScrollArea):
    """Scrollable bubbles bound to a ConversationModel; sticks to the bottom while you are there.
    An empty chat shows a placeholder and, when set, example questions as buttons."""
    example_chosen = Signal(str)
    tool_decision = Signal(str, str)     # the user's answer to a waiting tool call (see ToolBlock)
    alternative_step = Signal(int, int)  # row, -1/+1: show that message's previous/next alternative
    edit_requested = Signal(int)         # row of a user message to edit (a new branch from there)

    def __init__(self, model: ConversationModel, parent=None):
        super().__init__(parent)
        self.model = model
        self.show_raw = False
        self.setObjectName("Messages")
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        canvas = QWidget(objectName="MessageCanvas")
        outer = QHBoxLayout(canvas)
        outer.setContentsMargins(0, 0, 0, 0)
        column = QWidget()
        column.setMaximumWidth(820)
        self.column = QVBoxLayout(column)
        self.column.setContentsMargins(24, 18, 24, 18)
        self.column.setSpacing(4)
        self.empty_state = QWidget()
        empty = QVBoxLayout(self.empty_state)
        empty.setContentsMargins(0, 12, 0, 0)
        empty.setSpacing(8)
        self.placeholder = QLabel("", objectName="Muted", alignment=Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        empty.addStretch(1)
        empty.addWidget(self.placeholder)
        self.examples_caption = QLabel("Try one:", objectName="Caption", alignment=Qt.AlignmentFlag.AlignCenter)
        empty.addSpacing(6)
        empty.addWidget(self.examples_caption)
        self.chips_box = QVBoxLayout()
        self.chips_box.setSpacing(6)
        empty.addLayout(self.chips_box)
        empty.addStretch(2)
        self._chips: list[QPushButton] = []
        # column: [empty state, bubbles..., stretch]: messages start at the top
        self.column.addWidget(self.empty_state)
        self.column.addStretch(1)
        outer.addWidget(column)
        self.setWidget(canvas)
        self.bubbles: list[QWidget] = []
        self._stick = True
        self._idle = True
        self._refocus: tuple[int, int] | None = None   # (row, step) of an alternative being flipped
        self._keep: int | None = None   # the row just flipped: kept in view while the rebuilt chat lays out
        bar = self.verticalScrollBar()
        bar.valueChanged.connect(lambda v: setattr(self, "_stick", v >= bar.maximum() - 40))
        bar.rangeChanged.connect(self._range_changed)
        model.modelReset.connect(self.rebuild)
        model.rowsInserted.connect(lambda parent, first, last: self._insert(first, last))
        model.rowsRemoved.connect(lambda parent, first, last: self._remove(first, last))
        model.dataChanged.connect(lambda a, b, roles=(): self._changed(a.row(), b.row()))
        self._ticker = QTimer(self)       # keeps "Thinking… N s" counting between token batches
        self._ticker.setInterval(500)
        self._ticker.timeout.connect(self._tick)
        self._ticker.start()
        self.set_placeholder(f"Ask anything. Answers are written on {THIS_MACHINE}, offline.")
        self.rebuild()

    def set_placeholder(self, text: str) -> None:
        self.placeholder.setText(text)

    def _row_width(self) -> int:
        margins = self.column.contentsMargins()
        return min(self.viewport().width(), self.column.parentWidget().maximumWidth()) - margins.left() - margins.right()

    def viewportEvent(self, e) -> bool:
        if e.type() == QEvent.Type.Resize:   # the window, or a scroll bar coming or going
            self._fit_rows()
        return super().viewportEvent(e)

    def _fit_rows(self) -> None:
        width = self._row_width()
        for b in self.bubbles:
            if isinstance(b, UserBubble):
                b.set_row_width(width)

    def set_examples(self, questions: list[str]) -> None:
        """Show `questions` as buttons in an empty chat; clicking one emits example_chosen."""
        for chip in self._chips:
            chip.deleteLater()
        self._chips = []
        for q in questions:
            chip = QPushButton(q, objectName="Chip")
            chip.setCursor(Qt.CursorShape.PointingHandCursor)
            chip.setToolTip("Ask this")
            chip.clicked.connect(lambda _=False, q=q: emit(self.example_chosen, q))
            self.chips_box.addWidget(chip, 0, Qt.AlignmentFlag.AlignHCenter)
            self._chips.append(chip)
        self.examples_caption.setVisible(bool(questions))

    def example_chips(self) -> list[QPushButton]:
        return list(self._chips)

    def set_show_raw(self, show: bool) -> None:
        self.show_raw = show
        self._changed(0, self.model.rowCount() - 1)

    def _make(self, msg: ChatMessage) -> QWidget:
        if msg.role == "user":
            bubble = UserBubble(msg)
            bubble.edit_button.clicked.connect(lambda: self._ask(bubble, self.edit_requested))
        else:
            bubble = AssistantBubble(msg, self.show_raw)
            bubble.steps.decision.connect(self.tool_decision)
        bubble.set_idle(self._idle, msg)
        bubble.switcher.step.connect(lambda d: self._flip(bubble, d))
        return bubble

    def _ask(self, bubble: QWidget, signal, *args) -> None:
        if bubble in self.bubbles:
            emit(signal, self.bubbles.index(bubble), *args)

    def _flip(self, bubble: QWidget, step: int) -> None:
        """Ask for another alternative; the rebuilt row's same arrow gets the focus back."""
        if bubble not in self.bubbles:
            return
        row = self.bubbles.index(bubble)
        self._refocus = (row, step)
        emit(self.alternative_step, row, step)
        self._refocus = None

    def set_idle(self, idle: bool) -> None:
        """False while the open chat answers: its user messages can't be edited or flipped meanwhile."""
        self._idle = idle
        for row, b in enumerate(self.bubbles):
            b.set_idle(idle, self.model.data(self.model.index(row), MessageRole))

    def rebuild(self) -> None:
        for b in self.bubbles:
            b.hide()          # now: a nested event loop (a menu) would show it until deleteLater runs
            b.deleteLater()
        self.bubbles = []
        self._insert(0, self.model.rowCount() - 1)
        self._stick = True
        if self._refocus is not None and self._refocus[0] < len(self.bubbles):
            self._back_to_flipped(*self._refocus)

    def _range_changed(self, lo: int, hi: int) -> None:
        # The rebuilt bubbles get their heights over several layout passes: a flipped message is
        # brought back into view after each, or the chat's end (where the view had stuck) wins.
        if self._keep is not None and self._keep < len(self.bubbles):
            self.ensureWidgetVisible(self.bubbles[self._keep])
        elif self._stick:
            self.verticalScrollBar().setValue(hi)

    def _back_to_flipped(self, row: int, step: int) -> None:
        """After a flip the view is rebuilt: stay at that message (not the chat's end) and give its
        arrow the focus again (the other one at the last alternative) so ← / → can go on."""
        self._stick, self._keep = False, row
        switcher = self.bubbles[row].switcher
        arrow, other = (switcher.next, switcher.prev) if step > 0 else (switcher.prev, switcher.next)
        (arrow if arrow.isEnabled() else other).setFocus()
        QTimer.singleShot(0, self, lambda: row < len(self.bubbles) and self.ensureWidgetVisible(self.bubbles[row]))

    def _insert(self, first: int, last: int) -> None:
        for row in range(first, last + 1):
            bubble = self._make(self.model.data(self.model.index(row), MessageRole))
            if isinstance(bubble, UserBubble):
                bubble.set_row_width(self._row_width())
            self.column.insertWidget(1 + row, bubble)
            self.bubbles.insert(row, bubble)
        self.empty_state.setVisible(not self.bubbles)
        self._stick, self._keep = True, None

    def _remove(self, first: int, last: int) -> None:
        for bubble in self.bubbles[first:last + 1]:
            bubble.hide()
            bubble.deleteLater()
        del self.bubbles[first:last + 1]
        self.empty_state.setVisible(not self.bubbles)

    def _changed(self, first: int, last: int) -> None:
        for row in range(max(first, 0), min(last, len(self.bubbles) - 1) + 1):
            self.bubbles[row].update_from(self.model.data(self.model.index(row), MessageRole), self.show_raw)

    def _tick(self) -> None:
        last = self.model.last()
        if last is not None and last.streaming and last.phase in ("thinking", "waiting", "queued") and self.bubbles:
            self.bubbles[-1].update_from(last, self.show_raw)

    def assistant_bubbles(self) -> list[AssistantBubble]:
        return [b for b in self.bubbles if isinstance(b, AssistantBubble)]
