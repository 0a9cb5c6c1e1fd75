"""Screenshots of the local API's settings and its request log, at the default size and at the minimum
size ("min-" files). Run under a real X server:

    xvfb-run -a -s "-screen 0 1400x900x24" python tests/app/server_screens.py [folder]

The real demo model answers through the app's own server (app.api_server), reached by the official
openai client and httpx over HTTP, with a key, on the network address; the widgets and the log are the
app's own. 25: Settings' Local API section; 26: the window with the request log opened from its status bar.
"""
from __future__ import annotations

import os
import sys
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]
os.environ["GPT_OSS_CHAT_HOME"] = tempfile.mkdtemp(prefix="gpt-oss-server-screens-")

from PySide6.QtWidgets import QApplication  # noqa: E402

from screens import DEFAULT, MINIMUM, spin, take  # noqa: E402


def clients(base: str, key: str) -> None:
    """What an editor and a script would send, a refused one and a wrong model among them."""
    import httpx
    import openai

    client = openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=120)
    client.models.list()
    ask = [{"role": "user", "content": "What is 486 + 357?"}]
    client.chat.completions.create(model="demo", messages=ask, max_tokens=48)
    for _ in client.chat.completions.create(model="demo", messages=ask, max_tokens=32, stream=True):
        pass
    client.responses.create(model="gpt-oss", input="Multiply 248 by 7.", max_output_tokens=40)
    httpx.get(base + "/models", timeout=30)                                      # no key: 401
    try:
        client.chat.completions.create(model="gpt-4o", messages=ask)           # not served here: 404
    except openai.NotFoundError:
        pass
    httpx.get(base.removesuffix("/v1") + "/health", timeout=30)


def server_states(out: Path) -> list[Path]:
    from app.api_access import new_api_key
    from app.api_server import LocalApiServer
    from app.controller import ChatController
    from app.store import ChatStore
    from app.ui.main_window import MainWindow
    from app.ui.settings_dialog import SettingsDialog
    from app.worker import EngineWorker
    from models.registry import demo_folder

    home = Path(os.environ["GPT_OSS_CHAT_HOME"])
    store = ChatStore(home / "history.sqlite3")
    c = ChatController(store, EngineWorker())
    c.settings.context_length = 2048
    w = MainWindow(c)
    api = LocalApiServer(c)
    w.set_api_server(api)
    w.resize(*DEFAULT)
    w.move(0, 0)
    w.show()
    c.load_model(str(demo_folder()))
    while not c.ready and not c.model_error:
        spin(100)
    w.show_chat()
    key = new_api_key()
    problem = api.apply(True, 8000, key, True)      # the default port, when this machine has it free
    if problem:
        from test_server_settings import free_port
        problem = api.apply(True, free_port(), key, True)
    if problem:
        sys.exit(problem)
    sent = threading.Thread(target=clients, args=(api.url, key))
    sent.start()
    while sent.is_alive():
        spin(100)
    spin(300)
    saved: list[Path] = []

    dialog = SettingsDialog(c.settings, w, greedy=c.greedy, api=api, demo=c.is_demo)
    dialog.show()
    section = dialog.api_section
    for size, prefix in ((None, ""), ("min", "min-")):
        if size:
            dialog.resize(dialog.minimumWidth(), dialog.minimumHeight())
        spin(200)
        dialog.scroll.verticalScrollBar().setValue(section.y() if not size else section.note.y())
        if size:   # the smallest dialog shows the section's lower half: the reach, the address, the log
            dialog.scroll.ensureWidgetVisible(section.served_row, 0, 8)
            dialog.scroll.horizontalScrollBar().setValue(0)   # as it opens: the labels' side
        take(dialog, out / f"{prefix}25-server-settings.png", saved)
    dialog.reject()
    dialog.deleteLater()

    for size, prefix in ((DEFAULT, ""), (MINIMUM, "min-")):
        w.resize(*size)
        w.status_api.clicked.emit()          # what a click on the status bar's "API on …" does
        view = w.request_log_view
        width, height = min(860, size[0] - 80), min(440, size[1] - 120)
        view.resize(width, height)
        view.move(w.x() + (size[0] - width) // 2, w.y() + 60)
        spin(400)
        screen = w.screen()
        screen.grabWindow(0, w.x(), w.y(), size[0], size[1]).save(str(out / f"{prefix}26-request-log.png"))
        saved.append(out / f"{prefix}26-request-log.png")
        view.hide()
    api.stop(wait=5)
    c.shutdown()
    w.close()
    return saved


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    for p in server_states(target):
        print(p)
