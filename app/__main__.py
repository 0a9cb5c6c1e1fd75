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
    from app.history_notices import connect_history_notices
    from app.launcher import Launcher
    from app.paths import APP_NAME, history_path
    from app.single_instance import SingleInstance, bring_to_front
    from app.store import ChatStore, StoreError

    app = QApplication(sys.argv if argv is None else argv)
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setOrganizationName("gpt-oss chat")
    if sys.platform != "darwin":
        app.setStyle("Fusion")   # the closest to the Mac look where the native macOS style is absent
    instance = SingleInstance(history_path())
    if not instance.primary:
        if instance.ask_primary_to_show():
            return 0  # the window already open on this history came to the front
        # Two writers would misfile chats: never run beside an instance that doesn't answer.
        QMessageBox.information(None, APP_NAME, "gpt-oss chat is already running on this chat history but "
                                                "didn't come to the front; switch to it, or quit it and try again.")
        return 0
    try:
        store = ChatStore(history_path(), lock=instance.lock)
    except StoreError as e:
        QMessageBox.critical(None, APP_NAME, str(e))
        return 1
    controller = ChatController(store)
    launcher = Launcher(controller)
    instance.activated.connect(lambda: bring_to_front(launcher.window))
    app.aboutToQuit.connect(launcher.shutdown)
    app.aboutToQuit.connect(controller.shutdown)
    launcher.window.show()
    connect_history_notices(controller, launcher.window)
    launcher.start()
    code = app.exec()
    store.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
