"""The browser's calls and the library's indexing, off the model's thread and off the Qt thread.

BrowserWorker lives on the tools thread (app/tools_worker.py's): a call comes by queued signal to
`run` and its page goes out by `finished`, as a Python run's result does, so the turn carries on
the same way (the page is the tool message; the cache continues from the call). No consent is
asked: it only reads what the user added. LibraryIndexer runs engine.browser's IndexJob (its own
thread) and reports progress to the GUI by signal; cancel() stops it at the next file.
"""
from __future__ import annotations

import logging

from app.qt_compat import emit
from PySide6.QtCore import QObject, Signal, Slot

from app.library_sources import LibrarySources

log = logging.getLogger(__name__)


class BrowserWorker(QObject):
    finished = Signal(int, object)     # request id, {"text": the page the model reads}

    def __init__(self, sources: LibrarySources):
        super().__init__()
        self.sources = sources

    @Slot(int, str, str, str)
    def run(self, request_id: int, chat: str, recipient: str, arguments: str) -> None:
        try:
            text = self.sources.run(chat, recipient, arguments)
        except Exception as e:  # noqa: BLE001 - BrowserTool answers in sentences; never end the turn on a bug
            log.exception("browser call failed")
            text = f"The browser failed on this call ({type(e).__name__}); try another query or page."
        emit(self.finished, request_id, {"text": text})


class LibraryIndexer(QObject):
    """Brings the library's index up to date in the background; progress(done, total, name) then
    finished(one sentence) arrive on the GUI thread."""

    progress = Signal(int, int, str)
    finished = Signal(str)

    def __init__(self, sources: LibrarySources, parent=None):
        super().__init__(parent)
        self.sources = sources
        self.job = None

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.running

    def start(self) -> bool:
        """Start indexing (False: nothing to index, or already running)."""
        lib = self.sources.library()
        if lib is None or self.running:
            return False
        self.job = lib.update_in_background(lambda done, total, path: self._say(self.progress, done, total, path.name))
        self._watch(self.job)
        return True

    def _watch(self, job) -> None:
        import threading

        def wait():
            job.wait()
            self._say(self.finished, summary(job))
        threading.Thread(target=wait, name="browser-index-wait", daemon=True).start()

    @staticmethod
    def _say(signal, *args) -> None:
        try:
            emit(signal, *args)
        except RuntimeError:   # the window (and this object) closed while indexing went on
            pass

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()


def summary(job) -> str:
    """One sentence about an indexing run."""
    if job.error:
        return job.error + "; check the folder, then Index again."
    r = job.report
    if r is None:
        return ""
    changed = r.added + r.updated
    text = (f"Indexed {changed} new or changed file{'s' if changed != 1 else ''}"
            f" ({r.unchanged} unchanged, {r.removed} removed, {r.skipped} unreadable) in {r.seconds:.1f} s.")
    return ("Indexing stopped: what was done is kept. " if r.cancelled else "") + text
