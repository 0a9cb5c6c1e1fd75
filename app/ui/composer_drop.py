"""Files dropped on the composer become the chat's own sources: "summarise this PDF" then works the
gpt-oss way (search, open and find over the file, with citations) instead of pasting 200 pages
into the context. The files are copied into the app's data folder and indexed off the Qt thread
(app/library_sources.py); the status bar says what was added."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject


class ComposerDrop(QObject):
    def __init__(self, window, parent=None):
        super().__init__(parent or window)
        self.w = window
        self.jobs = []   # the indexing of dropped files (engine.browser IndexJob), newest last
        edit = window.composer.input
        edit.setAcceptDrops(True)
        edit.viewport().setAcceptDrops(True)
        edit.viewport().installEventFilter(self)
        edit.installEventFilter(self)

    def eventFilter(self, obj, e) -> bool:
        if e.type() in (QEvent.Type.DragEnter, QEvent.Type.DragMove) and _files(e):
            e.acceptProposedAction()
            return True
        if e.type() == QEvent.Type.Drop and _files(e):
            e.acceptProposedAction()
            self.attach(_files(e))
            return True
        return False

    def attach(self, paths: list[str]) -> str:
        """Add `paths` to the open chat's sources; the sentence shown in the status bar."""
        c = self.w.c
        if c.current_id == -1:
            c.new_conversation()
        job, added, note = c.library.attach(str(c.current_id), paths)
        if job is not None:
            self.jobs.append(job)
            c.set_browser_on(c.current_id, True)
            self.w.sources_switch.refresh()
        text = " ".join(filter(None, [f"Added {added} file{'s' if added != 1 else ''} to this chat's sources; "
                                      "the model can search and cite them." if job is not None else "", note]))
        self.w.statusBar().showMessage(text, 8000)
        return text


def _files(e) -> list[str]:
    md = e.mimeData()
    return [u.toLocalFile() for u in md.urls() if u.isLocalFile()] if md is not None and md.hasUrls() else []
