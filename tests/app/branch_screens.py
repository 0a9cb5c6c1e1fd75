"""Save PNGs of a chat with alternatives and branches (issue 29) to docs/screenshots/, at the
window's default and minimum size: an edited first question (‹ 2/2 › under it) and a regenerated
answer flipped back to its second version (‹ 2/3 ›).

    xvfb-run -a -s "-screen 0 1400x900x24" env QT_QPA_PLATFORM=xcb python tests/app/branch_screens.py

The answers are scripted (the status bar says so); the history, the branches and the widgets are
the app's own.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]
os.environ["GPT_OSS_CHAT_HOME"] = tempfile.mkdtemp(prefix="gpt-oss-branch-screens-")

from PySide6.QtWidgets import QApplication  # noqa: E402

from scripted import ScriptedSession, answer_script  # noqa: E402
from screens import DEFAULT, MINIMUM, spin, take  # noqa: E402

ANSWERS = [
    "**Beacon** suits a cat who keeps watch from the lamp room.",
    "**Bosun**: a dog on a lighthouse is part of the crew, and a bosun looks after the deck and the ropes.",
    "Because a bosun keeps the ship in order, as a good dog keeps the keeper company on long nights.",
    "It is short, easy to call over the wind, and an old sailors' word: it fits a dog living by the sea.",
    "Dogs answer best to two-syllable names, and *Bosun* carries over the noise of the waves.",
]


def main(out: Path, size: tuple[int, int], prefix: str = "") -> Path:
    from app.controller import ChatController
    from app.store import ChatStore
    from app.ui.main_window import MainWindow
    from app.worker import EngineWorker

    session = ScriptedSession(answer_script(final=ANSWERS[-1], think_s=0),
                              queue=[answer_script(analysis="A name.", final=a, think_s=0) for a in ANSWERS[:-1]],
                              name="Scripted answers (screenshot script)")
    store = ChatStore(Path(tempfile.mkdtemp(dir=os.environ["GPT_OSS_CHAT_HOME"])) / "history.sqlite3")
    c = ChatController(store, EngineWorker(loader=lambda folder, ctx: session))
    w = MainWindow(c)
    w.resize(*size)
    w.show()
    c.load_model("/screens")
    spin(400)
    w.show_chat()

    def wait():
        while c.busy:
            spin(50)

    c.send("Suggest a name for a lighthouse keeper's cat.")
    wait()
    c.edit_at(0, "Suggest a name for a lighthouse keeper's dog.")
    wait()
    c.send("Why that name?")
    wait()
    for _ in range(2):
        c.regenerate()
        wait()
    c.switch_alternative(3, -1)
    spin(200)
    w.messages._stick = False          # the view follows the bottom: at the minimum size, 12 px up shows both switchers whole
    bar = w.messages.verticalScrollBar()
    bar.setValue(max(0, bar.maximum() - 12))
    saved: list[Path] = []
    take(w, out / f"{prefix}23-alternatives.png", saved)
    c.shutdown()
    w.close()
    return saved[0]


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    print(main(target, DEFAULT))
    print(main(target, MINIMUM, "min-"))
