"""Save PNGs of the app's main states to docs/screenshots/ (run under Xvfb, or offscreen).

    xvfb-run -a -s "-screen 0 1400x900x24" python tests/app/screens.py        # real X server
    QT_QPA_PLATFORM=offscreen python tests/app/screens.py                      # no X at all

The answers are a scripted harmony stream (the tiny test checkpoints speak gibberish), and the
status bar says so; the widgets, layout and states are the app's own.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]
os.environ["GPT_OSS_CHAT_HOME"] = tempfile.mkdtemp(prefix="gpt-oss-screens-")

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from scripted import ScriptedSession, answer_script  # noqa: E402

ANALYSIS = ("The user asks how to reverse a linked list in Python. Iterative approach: keep prev, walk the list, "
            "point each node back. O(n) time, O(1) space. Give a short example and mention recursion briefly.")
FINAL = ("Walk the list once and point each node back at the one before it:\n\n"
         "```python\ndef reverse(head):\n    prev = None\n    while head:\n        head.next, prev, head = prev, head, head.next\n"
         "    return prev\n```\n\nThis runs in **O(n)** time and **O(1)** extra space. A recursive version is shorter "
         "but uses one stack frame per node, so long lists can hit Python's recursion limit.")


def spin(ms: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def main(out: Path = ROOT / "docs" / "screenshots") -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv)
    app.setStyle("Fusion")
    from app.controller import ChatController
    from app.download import Progress
    from app.engine_bridge import LoadedEngine
    from app.store import ChatStore
    from app.ui.main_window import MainWindow
    from app.worker import EngineWorker

    session = ScriptedSession(answer_script(analysis=ANALYSIS, final=FINAL, think_s=0, pieces=60), delay=0.012)
    loader = lambda folder, ctx: LoadedEngine(session, "Scripted answers (screenshot script)",  # noqa: E731
                                              make_sampling=lambda t, p: None)
    store = ChatStore(Path(os.environ["GPT_OSS_CHAT_HOME"]) / "history.sqlite3")
    c = ChatController(store, EngineWorker(loader=loader))
    w = MainWindow(c, size_text="13.8 GB", dest_text="~/Library/Application Support/gpt-oss chat/models/gpt-oss-20b")
    w.resize(1200, 780)
    from app.model_manager import check_folder
    from models.registry import demo_folder
    w.setup.set_demo_available(check_folder(demo_folder()) is None)
    w.show()
    c.load_model("/screens")
    spin(400)
    w.show_chat()
    saved = []

    def shot(name: str) -> None:
        spin(250)
        path = out / f"{name}.png"
        w.grab().save(str(path))
        saved.append(path)

    shot("1-empty")
    for title in ("Trip ideas for Lisbon", "Explain YaRN scaling"):
        conv = store.create_conversation(title, "medium")
    c.conversations_changed.emit()
    w.composer.input.setPlainText("How do I reverse a linked list in Python?")
    w.composer.submit()
    while len(c.model.last().text) < 160:
        spin(50)
    shot("2-streaming")
    while c.busy:
        spin(100)
    shot("3-finished-reasoning-hidden")
    s = c.settings
    s.show_raw_cot = True
    c.save_settings(s)
    shot("4-raw-reasoning-shown")
    w.setup.set_downloading(True)
    w.setup.show_progress(Progress(5_120_000_000, 13_788_000_000, 38_400_000, 226.0, "model-00001-of-00002.safetensors"))
    w.show_setup()
    shot("5-setup-download")
    c.shutdown()
    return saved


if __name__ == "__main__":
    for p in main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"):
        print(p)
