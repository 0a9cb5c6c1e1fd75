"""Starting the app: pick the model (or show setup), and run the setup page's actions.

Kept out of the widgets: this decides which folder to load, runs the folder checks and the
download, and hands a good folder to the controller.
"""
from __future__ import annotations

import os
import sys

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from app.api_server import LocalApiServer
from app.controller import ChatController
from app.download import bytes_downloaded, free_bytes
from app.download_worker import DownloadWorker
from app.model_manager import (check_folder, default_download_folder, enable_offline_mode, find_model,
                               has_partial_download)
from app.qt_compat import emit
from app.ui.main_window import MainWindow
from app.ui.setup_page import human_bytes
from models.registry import GPT_OSS_20B, GPT_OSS_120B, demo_folder

# The 120b offer speaks of "this Mac" and of Metal's fixed working set; elsewhere the budget is the
# RAM free at that moment (a figure that changed on every visit) and the app isn't the Mac one.
ON_MAC = sys.platform == "darwin"


class Launcher(QObject):
    _budget_known = Signal("qint64")   # bytes MLX may use on this machine

    def __init__(self, controller: ChatController, endpoint: str = "", parent=None):
        super().__init__(parent)
        self.c = controller
        self.endpoint = endpoint or os.environ.get("GPT_OSS_CHAT_ENDPOINT", "")
        self.download_dest = default_download_folder()
        self.window = MainWindow(controller, size_text=human_bytes(GPT_OSS_20B.approx_bytes),
                                 dest_text=str(self.download_dest))
        self.downloader = DownloadWorker(GPT_OSS_20B)
        self.api_server = LocalApiServer(controller, parent=self)
        self.window.set_api_server(self.api_server)
        setup = self.window.setup
        setup.set_demo_available(check_folder(demo_folder()) is None)
        setup.download_requested.connect(self.start_download)
        # A direct call, not a queued slot: the download thread is busy and would only see it at the end.
        setup.cancel_requested.connect(self.downloader.cancel, Qt.ConnectionType.DirectConnection)
        setup.folder_chosen.connect(self.use_folder)
        setup.demo_requested.connect(lambda: self.use_folder(str(demo_folder())))
        self.window.get_model_button.clicked.connect(self.show_setup_page)
        self.downloader.progress.connect(setup.show_progress)
        self.downloader.done.connect(self._downloaded)
        self.downloader.failed.connect(self._download_failed)
        self.downloader.cancelled.connect(self._download_cancelled)
        controller.model_ready.connect(lambda _n: self.window.show_chat())
        # The Mac's memory budget comes from MLX (Metal's working set): measured on the engine thread,
        # which imports MLX anyway, so the window shows without waiting for that import.
        self.big_offer_checked = False
        self._budget_known.connect(lambda budget: self._offer_big_model(setup, budget))
        controller.worker.post(self._measure_budget)

    def _measure_budget(self) -> None:
        """Engine thread: the bytes MLX may use here, sent back to the GUI thread."""
        from engine.memory import device_budget
        emit(self._budget_known, device_budget())

    def _offer_big_model(self, setup, budget_bytes: int) -> None:
        """Offer gpt-oss-120b on the setup page where its memory plan fits this Mac (issue 16)."""
        from app.paths import models_dir
        from models.registry import offer

        self.big_offer_checked = True
        if not ON_MAC:
            return
        found = offer(GPT_OSS_120B, budget_bytes, int(self.c.settings.context_length))
        if not found.fits:
            return
        self.big_dest = models_dir() / GPT_OSS_120B.key
        setup.show_big_offer(found.button, found.plan)
        setup.big_download_requested.connect(self.start_big_download)

    def _big_worker(self) -> DownloadWorker:
        """The 120b's download thread, made on first use: most launches never download it, and an
        idle thread that outlives the window aborts the interpreter at exit."""
        if getattr(self, "big_downloader", None) is None:
            setup = self.window.setup
            self.big_downloader = DownloadWorker(GPT_OSS_120B)
            setup.cancel_requested.connect(self.big_downloader.cancel, Qt.ConnectionType.DirectConnection)
            self.big_downloader.progress.connect(setup.show_progress)
            # Bound methods, not lambdas: Qt then runs them on the GUI thread, not the download thread.
            self.big_downloader.done.connect(self._big_downloaded)
            self.big_downloader.failed.connect(self._big_failed)
            self.big_downloader.cancelled.connect(self._big_cancelled)
        return self.big_downloader

    def start_big_download(self) -> None:
        self.window.setup.set_big_downloading(True)
        self._big_worker().start(str(self.big_dest), self.endpoint)

    def _big_downloaded(self, folder: str) -> None:
        self.window.setup.set_big_downloading(False)
        self.use_folder(folder)

    def _big_failed(self, message: str) -> None:
        self.window.setup.set_big_downloading(False)
        self.window.setup.show_message(message)

    def _big_cancelled(self) -> None:
        self.window.setup.set_big_downloading(False)
        self.window.setup.show_message(f"Download of {GPT_OSS_120B.label} paused. Press its button again to "
                                       "continue where it stopped.")

    def start(self) -> None:
        """Load the best model found; with none, show the setup page (saying why if a folder is broken)."""
        if self.c.settings.api_server:   # switched on last time: on again, once the model's load is queued
            QTimer.singleShot(0, self.api_server.start)
        chosen = self.c.settings.model_folder
        found = find_model(chosen)
        if found is not None and not (found.is_demo and chosen and chosen != str(found.folder)):
            enable_offline_mode()
            self._load(str(found.folder))
            self.window.show_chat()
            return
        # os.path.exists, not Path.exists: a folder this app may not read must not stop the launch.
        problem = check_folder(chosen or self.download_dest) if (chosen or os.path.exists(self.download_dest)) else None
        self.window.setup.set_downloading(False, resumable=has_partial_download(self.download_dest))
        self._show_disk_space()
        self.window.show_setup(problem or "")
        if found is not None:   # the demo is there; a broken chosen folder was reported above
            self.window.setup.set_demo_available(True)

    def show_setup_page(self) -> None:
        """From the chat (the demo model's "Download gpt-oss-20b…"): the setup page, up to date."""
        if not self.downloader.running:
            self.window.setup.set_downloading(False, resumable=bytes_downloaded(self.download_dest) > 0)
        self._show_disk_space()
        self.window.show_setup()

    def shutdown(self) -> None:
        """On quit: pause a running download (its .part files resume next time) and end its thread; stop
        the local API server."""
        self.downloader.stop()
        if getattr(self, "big_downloader", None) is not None:
            self.big_downloader.stop()
        self.api_server.stop(wait=3)

    def _show_disk_space(self) -> None:
        need = max(0, GPT_OSS_20B.approx_bytes - bytes_downloaded(self.download_dest))
        try:
            free = free_bytes(self.download_dest)
        except OSError:   # an unreadable disk: the download itself will say what is wrong
            return
        self.window.setup.set_disk_space(need, free)

    def _load(self, folder: str) -> None:
        self.c.load_model(folder)

    def use_folder(self, folder: str) -> None:
        problem = check_folder(folder)
        if problem:
            self.window.show_setup(problem)
            return
        if self.c.ready and not self.c.busy:   # a model is in use: it stays until the new one is in
            enable_offline_mode()
            why = self.window.model_picker.picker.switch_to(folder)
            if why:
                self.window.show_setup(why)
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
        # Nothing arrived (e.g. offline): the button still says Download and no empty bar is left.
        self.window.setup.set_downloading(False, resumable=bytes_downloaded(self.download_dest) > 0)
        self.window.setup.show_message(message)
        self._show_disk_space()

    def _download_cancelled(self) -> None:
        self.window.setup.set_downloading(False, resumable=bytes_downloaded(self.download_dest) > 0)
        self.window.setup.show_message("Download paused. Press Resume download to continue where it stopped.")
