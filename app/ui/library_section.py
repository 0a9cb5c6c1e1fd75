"""Settings → Library: the folders of documents and the .zim archives the model may browse.

Adding or removing a source saves at once; indexing then runs in the background (engine/browser's
IndexJob on its own thread, progress by signal): the window never waits, Cancel stops at the next
file and keeps what was done. The index lives in the app's data folder.
"""
from __future__ import annotations

from app.ui.elided_label import ElidedLabel
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QListWidget, QProgressBar, QPushButton, QVBoxLayout,
                               QWidget)


class LibrarySection(QWidget):
    def __init__(self, library, indexer, parent=None):
        super().__init__(parent)
        self.library, self.indexer = library, indexer
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("Library", objectName="Title"))
        # One line each (no word wrap): a dialog sized before indexing reports must not squeeze them.
        note = QLabel("Documents and .zim archives the model may search and cite; nothing else is read.",
                      objectName="Caption")
        note.setToolTip("Folders of text, Markdown, HTML, PDF, Word and code files, and offline encyclopedias "
                        "(Kiwix .zim). Only what you add here is ever read.")
        lay.addWidget(note)
        self.list = QListWidget(objectName="LibraryList")
        self.list.setFixedHeight(56)   # the dialog is already tall: about two sources in view, then it scrolls
        lay.addWidget(self.list)
        row = QHBoxLayout()
        self.add_folder_button = QPushButton("Add folder…")
        self.add_zim_button = QPushButton("Add .zim…")
        self.remove_button = QPushButton("Remove")
        self.index_button = QPushButton("Index now")
        self.cancel_button = QPushButton("Cancel indexing")
        for b in (self.add_folder_button, self.add_zim_button, self.remove_button, self.index_button,
                  self.cancel_button):
            row.addWidget(b)
        row.addStretch(1)
        lay.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        lay.addWidget(self.progress)
        self.status = ElidedLabel(objectName="Caption")
        lay.addWidget(self.status)
        # Room kept for the progress bar: a dialog does not grow when it shows.
        for w in (self.progress, self.cancel_button):
            policy = w.sizePolicy()
            policy.setRetainSizeWhenHidden(True)
            w.setSizePolicy(policy)
        self.add_folder_button.clicked.connect(self._pick_folder)
        self.add_zim_button.clicked.connect(self._pick_zim)
        self.remove_button.clicked.connect(self._remove)
        self.index_button.clicked.connect(self.start_indexing)
        self.cancel_button.clicked.connect(indexer.cancel)
        indexer.progress.connect(self._on_progress)
        indexer.finished.connect(self._on_finished)
        self._refresh()

    def _refresh(self) -> None:
        self.list.clear()
        self.list.addItems(self.library.folders + self.library.zims)
        running = self.indexer.running
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        self.index_button.setEnabled(bool(self.library.folders) and not running)
        self.remove_button.setEnabled(bool(self.library.folders or self.library.zims))

    def add(self, path: str) -> str:
        """Add a folder or .zim and start indexing; the sentence shown when it can't be added ('' if added)."""
        problem = self.library.add(path)
        self.status.set_full_text(problem)
        if not problem:
            self.start_indexing()
        self._refresh()
        return problem

    def _pick_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Add a folder of documents")
        if path:
            self.add(path)

    def _pick_zim(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Add an offline encyclopedia", "", "ZIM archives (*.zim)")
        if path:
            self.add(path)

    def _remove(self) -> None:
        item = self.list.currentItem() or (self.list.item(0) if self.list.count() == 1 else None)
        if item is None:
            self.status.set_full_text("Select the folder or archive to remove.")
            return
        self.indexer.cancel()
        self.library.remove(item.text())
        self._refresh()

    def start_indexing(self) -> None:
        if self.indexer.start():
            self.progress.setRange(0, 0)   # busy until the first file's count arrives
            self.status.set_full_text("Indexing…")
        self._refresh()

    def _on_progress(self, done: int, total: int, name: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"{done} / {total} files")
        self.status.set_full_text(f"Indexing {name}")
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)

    def _on_finished(self, text: str) -> None:
        self.status.set_full_text(text)
        self._refresh()
