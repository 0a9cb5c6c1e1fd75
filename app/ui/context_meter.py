"""The context meter in the status bar: how much of its context the open chat uses, and which
message would be left out first once it is full (the engine drops whole old turns, oldest first)."""
from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget

from app.conversation import ChatMessage


def context_used(messages: list[ChatMessage]) -> int:
    """Tokens the chat filled at its last answer: that answer's prompt plus what it wrote (0: unknown)."""
    for m in reversed(messages):
        if m.role == "assistant" and m.stats.get("prompt_tokens"):
            return int(m.stats["prompt_tokens"]) + int(m.stats.get("generated_tokens", 0))
    return 0


def short(n: int) -> str:
    return f"{n / 1024:.1f}K".replace(".0K", "K") if n >= 1024 else str(n)


def first_out(messages: list[ChatMessage]) -> str:
    """The message the engine would leave out first: the oldest one (its first words)."""
    for m in messages:
        if m.text.strip():
            words = " ".join(m.text.split())
            who = "your message" if m.role == "user" else "the answer"
            return f"{who} “{words[:50]}{'…' if len(words) > 50 else ''}”"
    return ""


class ContextMeter(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        self.bar = QProgressBar(textVisible=False, maximum=1000)
        self.bar.setFixedSize(70, 6)
        self.label = QLabel(objectName="Caption")
        lay.addWidget(self.label)
        lay.addWidget(self.bar)

    def show_use(self, messages: list[ChatMessage], context_length: int) -> None:
        used = context_used(messages)
        self.setVisible(used > 0 and context_length > 0)
        if not used or not context_length:
            return
        share = min(1.0, used / context_length)
        self.bar.setValue(int(share * 1000))
        self.label.setText(f"Context {short(used)} / {short(context_length)}")
        tip = (f"This chat uses about {used:,} of its {context_length:,}-token context ({share:.0%}), "
               "counted at its last answer.")
        oldest = first_out(messages)
        if oldest:
            tip += f" When it is full, the oldest messages are left out first: next would be {oldest}."
        self.setToolTip(tip)
