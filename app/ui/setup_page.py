"""First run: download gpt-oss-20b (progress, speed, time left, cancel, resume), pick a folder
that already holds it, or try the tiny demo model."""
from __future__ import annotations

import sys

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget)

from app.qt_compat import emit


def human_bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


def human_duration(s: float) -> str:
    s = int(s)
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60} min"
    if s >= 60:
        return f"{s // 60} min"
    return f"{s} s"


def progress_text(p) -> str:
    """'1.2 GB of 13.8 GB · 35.0 MB/s · about 6 min left' (or the verifying stage)."""
    if p.stage == "verifying":
        return f"Verifying {p.file}…"
    parts = [f"{human_bytes(p.done)} of {human_bytes(p.total)}"]
    if p.speed > 0:
        parts.append(f"{human_bytes(p.speed)}/s")
    if p.eta_s is not None:
        parts.append(f"about {human_duration(p.eta_s)} left")
    return " · ".join(parts)


class SetupPage(QWidget):
    download_requested = Signal()
    cancel_requested = Signal()
    folder_chosen = Signal(str)
    demo_requested = Signal()
    back_requested = Signal()
    big_download_requested = Signal()  # the 120b, offered only where its memory plan fits

    def __init__(self, size_text: str, dest_text: str, parent=None):
        super().__init__(parent)
        self.setObjectName("SetupPage")
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        col = QWidget()
        col.setFixedWidth(580)
        lay = QVBoxLayout(col)
        lay.setSpacing(12)
        top = QHBoxLayout()
        top.addWidget(QLabel("Set up gpt-oss", objectName="Headline"))
        top.addStretch(1)
        # Shown when a model (the demo) is already loaded: the chat is one click away.
        self.back_button = QPushButton("Back to chat")
        self.back_button.clicked.connect(lambda: emit(self.back_requested))
        self.back_button.hide()
        top.addWidget(self.back_button, 0, Qt.AlignmentFlag.AlignVCenter)
        lay.addLayout(top)
        machine = "this Mac" if sys.platform == "darwin" else "this computer"
        self.intro = QLabel(f"gpt-oss-20b is OpenAI's open-weight reasoning model. It runs entirely on {machine}: "
                            f"after a one-time download of {size_text}, the app never uses the network.")
        self.intro.setWordWrap(True)
        lay.addWidget(self.intro)
        card = QWidget(objectName="SetupCard")
        c = QVBoxLayout(card)
        c.setContentsMargins(18, 16, 18, 16)
        row = QHBoxLayout()
        self._download_text = f"Download gpt-oss-20b ({size_text})"
        self.download_button = QPushButton(self._download_text, objectName="Primary")
        self.download_button.clicked.connect(lambda: emit(self.download_requested))
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(lambda: emit(self.cancel_requested))
        self.cancel_button.hide()
        row.addWidget(self.download_button)
        row.addWidget(self.cancel_button)
        row.addStretch(1)
        c.addLayout(row)
        dest = QLabel(f"Saved to {dest_text}. An interrupted download resumes where it stopped.", objectName="Caption")
        dest.setWordWrap(True)
        c.addWidget(dest)
        self.disk_label = QLabel(objectName="Caption")
        self.disk_label.setWordWrap(True)
        self.disk_label.hide()
        c.addWidget(self.disk_label)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.progress_label = QLabel(objectName="Muted")
        self.progress_label.hide()
        c.addWidget(self.progress)
        c.addWidget(self.progress_label)
        lay.addWidget(card)
        lay.addWidget(self._big_offer_card())
        other = QHBoxLayout()
        self.folder_button = QPushButton("Choose a folder that has it…")
        self.folder_button.clicked.connect(self._choose)
        self.demo_button = QPushButton("Try the tiny demo model")
        self.demo_button.setToolTip("A small model made for trying the app. It is not gpt-oss.")
        self.demo_button.clicked.connect(lambda: emit(self.demo_requested))
        other.addWidget(self.folder_button)
        other.addWidget(self.demo_button)
        other.addStretch(1)
        lay.addLayout(other)
        self.message = QLabel(objectName="Notice")
        self.message.setWordWrap(True)
        self.message.hide()
        lay.addWidget(self.message)
        h = QHBoxLayout()
        h.addStretch(1)
        h.addWidget(col)
        h.addStretch(1)
        outer.addLayout(h)
        outer.addStretch(2)

    def _big_offer_card(self) -> QWidget:
        """A second card for gpt-oss-120b: its plan on this Mac and its download size, hidden until offered."""
        self.big_card = QWidget(objectName="SetupCard")
        c = QVBoxLayout(self.big_card)
        c.setContentsMargins(18, 16, 18, 16)
        self.big_plan = QLabel(objectName="Caption")
        self.big_plan.setWordWrap(True)
        self.big_button = QPushButton()
        self.big_button.clicked.connect(lambda: emit(self.big_download_requested))
        row = QHBoxLayout()
        row.addWidget(self.big_button)
        row.addStretch(1)
        c.addWidget(self.big_plan)
        c.addLayout(row)
        self.big_card.hide()
        return self.big_card

    def show_big_offer(self, button_text: str, plan_text: str) -> None:
        """Offer the big model: the button names it and its download size; the text says how it would run."""
        self.big_button.setText(button_text)
        self.big_button.setProperty("offer_text", button_text)
        self.big_plan.setText(plan_text)
        self.big_card.show()

    def set_big_downloading(self, on: bool) -> None:
        """The 120b is downloading: progress and Cancel show, the other ways to get a model wait."""
        self.big_button.setEnabled(not on)
        self.big_button.setText("Downloading…" if on else self.big_button.property("offer_text") or "")
        self.download_button.setEnabled(not on)
        self.folder_button.setEnabled(not on)
        self.cancel_button.setVisible(on)
        self.progress.setVisible(on)
        self.progress_label.setVisible(on)
        if on:
            self.show_message("")

    def set_demo_available(self, available: bool) -> None:
        self.demo_button.setVisible(available)

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def set_disk_space(self, need: int, free: int) -> None:
        """'Needs 13.8 GB of disk space · 52.3 GB free there', in the warning colour when it won't fit."""
        self.disk_label.setText(f"Needs {human_bytes(need)} of disk space · {human_bytes(free)} free there"
                                + ("" if free >= need else ": free some space first."))
        self.disk_label.setObjectName("Caption" if free >= need else "Notice")
        self.disk_label.style().unpolish(self.disk_label)
        self.disk_label.style().polish(self.disk_label)
        self.disk_label.show()

    def set_downloading(self, on: bool, resumable: bool = False) -> None:
        """`resumable`: part of the model is already on disk (else the button keeps saying Download)."""
        self.download_button.setEnabled(not on)
        self.download_button.setText("Downloading…" if on else ("Resume download" if resumable else
                                                                 self._download_text))
        self.cancel_button.setVisible(on)
        self.folder_button.setEnabled(not on)
        self.progress.setVisible(on or resumable)
        self.progress_label.setVisible(on or resumable)
        if on:
            self.show_message("")

    def show_progress(self, p) -> None:
        self.progress.setValue(int(1000 * p.done / p.total) if p.total else 0)
        self.progress_label.setText(progress_text(p))

    def _choose(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose the gpt-oss-20b folder")
        if folder:
            emit(self.folder_chosen, folder)
