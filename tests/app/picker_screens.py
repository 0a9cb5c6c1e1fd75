"""Screenshots of the model picker: the Models sheet over the chat window, at the window's default and
minimum sizes. Run under a real X server:

    xvfb-run -a -s "-screen 0 1400x900x24" python tests/app/picker_screens.py [folder]

The shipped demo model is loaded through the real engine; the list also holds a tiny gpt-oss
checkpoint the user "added" (models/tiny.py) and an added folder that was since damaged, which shows
its one-sentence reason. The sheet is drawn where Qt puts it over the window (a window manager
would do the same on a Mac), so the PNG has the window's size.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]
os.environ["GPT_OSS_CHAT_HOME"] = tempfile.mkdtemp(prefix="gpt-oss-picker-screens-")
os.environ["HF_HUB_CACHE"] = tempfile.mkdtemp(prefix="empty-hf-cache-")   # no gpt-oss here: the demo and folders

from PySide6.QtGui import QColor, QPainter  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from screens import DEFAULT, MINIMUM, spin  # noqa: E402


def folders(home: Path) -> tuple[Path, Path]:
    """An added tiny gpt-oss checkpoint and an added folder whose config.json was since damaged."""
    from models.tiny import write_tiny_checkpoint
    from models.tokenizer_json import shared_o200k_harmony_folder

    tiny, broken = home / "My models" / "gpt-oss-tiny", home / "My models" / "gpt-oss-old-copy"
    tiny.mkdir(parents=True)
    write_tiny_checkpoint(tiny, layers=2, experts=4, hidden=64, seed=0, vocab=201088)
    shutil.copy(shared_o200k_harmony_folder() / "tokenizer.json", tiny / "tokenizer.json")
    shutil.copytree(tiny, broken)
    return tiny, broken


def sheet_over(w, dialog, path: Path, saved: list) -> None:
    """The window with the sheet drawn where it stands (centred under the header, as Qt places it)."""
    spin(300)
    shot = w.grab()
    painter = QPainter(shot)
    at = dialog.mapToGlobal(dialog.rect().topLeft()) - w.mapToGlobal(w.rect().topLeft())
    sheet = dialog.grab()
    painter.drawPixmap(at, sheet)
    painter.setPen(QColor("#b0b0b5"))   # the window edge a window manager would draw
    painter.drawRect(at.x(), at.y(), sheet.width() - 1, sheet.height() - 1)
    painter.end()
    shot.save(str(path))
    saved.append(path)


def picker_states(out: Path, size: tuple[int, int], prefix: str = "") -> list[Path]:
    from app.controller import ChatController
    from app.store import ChatStore
    from app.ui.main_window import MainWindow
    from app.worker import EngineWorker
    from models.registry import demo_folder

    home = Path(tempfile.mkdtemp(dir=os.environ["GPT_OSS_CHAT_HOME"]))
    tiny, broken = folders(home)
    store = ChatStore(home / "history.sqlite3")
    c = ChatController(store, EngineWorker())
    c.settings.context_length = 8192
    w = MainWindow(c, size_text="13.8 GB", dest_text="~/Library/Application Support/gpt-oss chat/models/gpt-oss-20b")
    w.resize(*size)
    w.show()
    c.load_model(str(demo_folder()))
    while not c.ready:
        spin(100)
    w.show_chat()
    c.new_conversation()
    picker = w.model_picker.picker
    for f in (tiny, broken):
        picker.add_folder(str(f))
    (broken / "config.json").write_text("{ damaged")
    dialog = w.model_picker.open()
    while picker.budget is None:   # the memory plan needs this machine's budget (measured on the engine thread)
        spin(50)
    dialog.refresh()
    dialog.list.setCurrentRow(1)
    dialog.move(w.mapToGlobal(w.rect().center()) - dialog.rect().center())
    saved: list[Path] = []
    sheet_over(w, dialog, out / f"{prefix}19-model-picker.png", saved)
    dialog.close()
    c.shutdown()
    w.close()
    return saved


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    for size, prefix in ((DEFAULT, ""), (MINIMUM, "min-")):
        for p in picker_states(target, size, prefix):
            print(p)
