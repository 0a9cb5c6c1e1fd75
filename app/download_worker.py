"""Runs a model download on its own QThread and reports progress by signal."""
from __future__ import annotations

import threading

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.download import DownloadCancelled, DownloadError, download_model
from app.qt_compat import emit
from models.registry import GPT_OSS_20B


class DownloadWorker(QObject):
    progress = Signal(object)      # app.download.Progress
    done = Signal(str)             # the verified folder
    failed = Signal(str)           # one sentence
    cancelled = Signal()
    _start = Signal(str, str)

    def __init__(self, model=GPT_OSS_20B, parent=None):
        super().__init__(parent)
        self.model = model
        self._cancel = threading.Event()
        self.running = False
        self.thread = QThread()
        self.thread.setObjectName("download")
        self.moveToThread(self.thread)
        self._start.connect(self._run)
        self.thread.start()

    def start(self, dest: str, endpoint: str = "") -> None:
        """Begin (or resume) downloading into `dest`; call from the GUI thread."""
        if self.running:
            return
        self.running = True
        self._cancel = threading.Event()
        emit(self._start, dest, endpoint)

    def cancel(self) -> None:
        self._cancel.set()

    def stop(self) -> None:
        self._cancel.set()
        self.thread.quit()
        self.thread.wait(5000)

    @Slot(str, str)
    def _run(self, dest: str, endpoint: str) -> None:
        try:
            folder = download_model(self.model, dest, progress=lambda p: emit(self.progress, p),
                                    cancel=self._cancel, endpoint=endpoint or None)
        except DownloadCancelled:
            self.running = False
            emit(self.cancelled)
            return
        except DownloadError as e:
            self.running = False
            emit(self.failed, str(e))
            return
        except OSError as e:   # disk full, permissions...
            self.running = False
            emit(self.failed, f"The download could not be written ({e.strerror or e}); free some space or choose "
                              "another folder, then press Download again.")
            return
        self.running = False
        emit(self.done, str(folder))
