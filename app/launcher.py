"""Starting the app: pick the model (or show setup), and run the setup page's actions.

Kept out of the widgets: this decides which folder to load, runs the folder checks and the
download, and hands a good folder to the controller.
"""
from __future__ import annotations

import os

from PySide6.QtCore import QObject, Qt

from app.controller import ChatController
from app.download_worker import DownloadWorker
from app.model_manager import (check_folder, default_download_folder, enable_offline_mode, find_model,
                               has_partial_download)
from app.ui.main_window import MainWindow
from app.ui.setup_page import human_bytes
from models.registry import GPT_OSS_20B, demo_folder


class Launcher(QObject):
    def __init__(self, controller: ChatController, endpoint: str = "", parent=None):
        super().__init__(parent)
        self.c = controller
        self.endpoint = endpoint or os.environ.get("GPT_OSS_CHAT_ENDPOINT", "")
        self.download_dest = default_download_folder()
        self.window = MainWindow(controller, size_text=human_bytes(GPT_OSS_20B.approx_bytes),
                                 dest_text=str(self.download_dest))
        self.downloader = DownloadWorker(GPT_OSS_20B)
        setup = self.window.setup
        setup.set_demo_available(check_folder(demo_folder()) is None)
        setup.download_requested.connect(self.start_download)
        # A direct call, not a queued slot: the download thread is busy and would only see it at the end.
        setup.cancel_requested.connect(self.downloader.cancel, Qt.ConnectionType.DirectConnection)
        setup.folder_chosen.connect(self.use_folder)
        setup.demo_requested.connect(lambda: self.use_folder(str(demo_folder())))
        self.window.get_model_button.clicked.connect(lambda: self.window.show_setup())
        self.downloader.progress.connect(setup.show_progress)
        self.downloader.done.connect(self._downloaded)
        self.downloader.failed.connect(self._download_failed)
        self.downloader.cancelled.connect(self._download_cancelled)
        controller.model_ready.connect(lambda _n: self.window.show_chat())

    def start(self) -> None:
        """Load the best model found; with none, show the setup page (saying why if a folder is broken)."""
        chosen = self.c.settings.model_folder
        found = find_model(chosen)
        if found is not None and not (found.is_demo and chosen and chosen != str(found.folder)):
            enable_offline_mode()
            self._load(str(found.folder))
            self.window.show_chat()
            return
        # os.path.exists, not Path.exists: a folder this app may not read must not stop the launch.
        problem = check_folder(chosen or self.download_dest) if (chosen or os.path.exists(self.download_dest)) else None
        resumable = has_partial_download(self.download_dest)
        self.window.setup.set_downloading(False, resumable=resumable)
        self.window.show_setup(problem or "")
        if found is not None:   # the demo is there; a broken chosen folder was reported above
            self.window.setup.set_demo_available(True)

    def shutdown(self) -> None:
        """On quit: pause a running download (its .part files resume next time) and end its thread."""
        self.downloader.stop()

    def _load(self, folder: str) -> None:
        self.c.load_model(folder)

    def use_folder(self, folder: str) -> None:
        problem = check_folder(folder)
        if problem:
            self.window.show_setup(problem)
            return
        s = self.c.settings
        s.model_folder = folder
        s.save(self.c.store)
        enable_offline_mode()
        self._load(folder)

    def start_download(self) -> None:
        self.window.setup.set_downloading(True)
        self.downloader.start(str(self.download_dest), self.endpoint)

    def _downloaded(self, folder: str) -> None:
        self.window.setup.set_downloading(False)
        self.use_folder(folder)

    def _download_failed(self, message: str) -> None:
        self.window.setup.set_downloading(False, resumable=True)
        self.window.setup.show_message(message)

    def _download_cancelled(self) -> None:
        self.window.setup.set_downloading(False, resumable=True)
        self.window.setup.show_message("Download paused. Press Resume download to continue where it stopped.")
