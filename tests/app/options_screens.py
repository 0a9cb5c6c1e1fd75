"""Screenshots of a chat's own settings: the header's button naming the chat's preset, and the Chat
Settings dialog over the window (instructions, effort, sampling, presets), at the window's default
and minimum sizes. Run under a real X server (the dialog is a window of its own; the screen is grabbed):

    xvfb-run -a -s "-screen 0 1400x900x24" python tests/app/options_screens.py [folder]

The model's side is scripted (the status bar says so); the widgets, states and stored presets are the app's own.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]
os.environ["GPT_OSS_CHAT_HOME"] = tempfile.mkdtemp(prefix="gpt-oss-options-screens-")

from PySide6.QtGui import QColor, QPainter  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from screens import DEFAULT, MINIMUM, spin  # noqa: E402
from scripted import ScriptedSession, answer_script  # noqa: E402

INSTRUCTIONS = ("You review Python code. Answer in at most three short paragraphs, point at the line that "
                "matters, and show a fixed version.")
FINAL = ("The bug is on **line 3**: `items.remove(x)` changes the list while the loop walks it, so every "
         "second match is skipped.\n\nBuild a new list instead:\n\n```python\nitems = [x for x in items if x]\n```")


def grab(window, dialog, path: Path, saved: list) -> None:
    """The screen under the window and its dialog, as one PNG. Xvfb has no window manager to draw
    the dialog's frame, so a thin border and shadow show where it ends."""
    spin(300)
    area = window.frameGeometry().united(dialog.frameGeometry())
    shot = QApplication.primaryScreen().grabWindow(0, area.x(), area.y(), area.width(), area.height())
    p = QPainter(shot)
    box = dialog.frameGeometry().translated(-area.x(), -area.y())
    for i in range(1, 7):                       # a soft shadow, lightest outside
        p.setPen(QColor(0, 0, 0, 34 - 5 * i))
        p.drawRect(box.adjusted(-i, -i, i - 1, i - 1))
    p.setPen(QColor(0, 0, 0, 90))
    p.drawRect(box.adjusted(0, 0, -1, -1))
    p.end()
    shot.save(str(path))
    saved.append(path)


def options_states(out: Path, size: tuple[int, int], prefix: str = "") -> list[Path]:
    from app.chat_options import ChatOptions
    from app.controller import ChatController
    from app.store import ChatStore, StoredMessage
    from app.ui.main_window import MainWindow
    from app.worker import EngineWorker

    session = ScriptedSession(answer_script(analysis="Find the bug.", final=FINAL, think_s=0, pieces=30))
    session.name = "Scripted answers (screenshot script)"
    store = ChatStore(Path(tempfile.mkdtemp(dir=os.environ["GPT_OSS_CHAT_HOME"])) / "history.sqlite3")
    c = ChatController(store, EngineWorker(loader=lambda folder, ctx: session))
    c.chat_options.save_preset("Code review", ChatOptions(INSTRUCTIONS, 0.6, effort="high"))
    c.chat_options.save_preset("Brainstorm", ChatOptions("Offer many different ideas, one line each.", 1.3))
    c.chat_options.set_default_preset("Code review")
    w = MainWindow(c)
    w.resize(*size)
    w.move(0, 0)
    w.show()
    c.load_model("/screens")
    spin(400)
    w.show_chat()
    for title in ("Trip ideas for Lisbon", "Explain YaRN scaling"):   # written in: New chat won't reuse them
        store.add_message(store.create_conversation(title, "medium").id, StoredMessage("user", title))
    c.new_conversation()            # starts from the default preset: "Preset: Code review" in the header
    w.composer.input.setPlainText("Why does this loop skip items?\n\nfor x in items:\n    if not x:\n"
                                  "        items.remove(x)")
    w.composer.submit()
    while c.busy:
        spin(50)
    saved: list[Path] = []
    dialog = w.chat_options_button.make_dialog()
    dialog.show()
    spin(100)
    # Centred over the window, below its header, as a sheet would be.
    below = w.header.mapToGlobal(w.header.rect().bottomLeft()).y() + 12
    dialog.move(max(0, w.geometry().center().x() - dialog.width() // 2), below)
    grab(w, dialog, out / f"{prefix}21-chat-options.png", saved)
    dialog.close()
    c.shutdown()
    w.close()
    return saved


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    for p in options_states(target, DEFAULT) + options_states(target, MINIMUM, prefix="min-"):
        print(p)
