"""`python -m app` / `gpt-oss-chat`: start the chat app."""
from __future__ import annotations

import logging
import os
import sys


def main(argv: list[str] | None = None) -> int:
    """Start the app; returns the exit code."""
    # Offline from the first line: nothing may reach the network unless the user asks to download.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from PySide6.QtWidgets import QApplication, QMessageBox

    from app.controller import ChatController
    from app.launcher import Launcher
    from app.paths import APP_NAME, history_path
    from app.store import ChatStore, StoreError

    app = QApplication(sys.argv if argv is None else argv)
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setOrganizationName("gpt-oss chat")
    if sys.platform != "darwin":
        app.setStyle("Fusion")   # the closest to the Mac look where the native macOS style is absent
    try:
        store = ChatStore(history_path())
    except StoreError as e:
        QMessageBox.critical(None, APP_NAME, str(e))
        return 1
    controller = ChatController(store)
    launcher = Launcher(controller)
    app.aboutToQuit.connect(launcher.shutdown)
    app.aboutToQuit.connect(controller.shutdown)
    launcher.window.show()
    launcher.start()
    code = app.exec()
    store.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
