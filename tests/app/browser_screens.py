"""Save a PNG of a cited answer from the browser tool (issue 26) to docs/screenshots/.

    xvfb-run -a -s "-screen 0 1400x900x24" env QT_QPA_PLATFORM=xcb python tests/app/browser_screens.py

The model's side is scripted (tests/browser/scripted.py: the real harmony renderer and parser); the
library folder, its index, the browser's pages, the blocks and the citation link are the app's own.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]
os.environ["GPT_OSS_CHAT_HOME"] = tempfile.mkdtemp(prefix="gpt-oss-browser-screens-")

from PySide6.QtWidgets import QApplication  # noqa: E402

from screens import DEFAULT, spin, take  # noqa: E402

SEARCH = ('<|channel|>analysis<|message|>The user asks about their own tide notes: search the library.<|end|>'
          '<|start|>assistant<|channel|>analysis to=browser.search code<|message|>{"query": "spring tide Brest"}<|call|>')
OPEN = '<|channel|>analysis to=browser.open code<|message|>{"id": 0, "cursor": 0}<|call|>'
FINAL = ('<|channel|>final<|message|>According to your tide tables, the spring tide at Brest peaks at **7.9 metres** '
         '【1†L2】, while neap tides stay near 4.6 metres 【1†L3】.<|return|>')


def main(out: Path) -> Path:
    from app.controller import ChatController
    from app.library_sources import LibrarySources
    from app.store import ChatStore
    from app.ui.main_window import MainWindow
    from app.worker import EngineWorker
    from engine.tokenizer import load_tokenizer
    from models.tokenizer_json import shared_o200k_harmony_folder

    spec = importlib.util.spec_from_file_location("browser_scripted", ROOT / "tests" / "browser" / "scripted_browsing.py")
    scripted = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scripted)
    home = Path(os.environ["GPT_OSS_CHAT_HOME"])
    notes = home / "Notes"
    notes.mkdir()
    (notes / "tides.md").write_text("# Tide tables\n\nThe spring tide at Brest peaks at 7.9 metres.\n"
                                    "Neap tides at Brest stay near 4.6 metres.\n"
                                    + "\n".join(f"Harbour note {i}: moorings checked." for i in range(40)))
    (notes / "groceries.txt").write_text("Groceries\n\nBuy saffron, quince and sorrel for Sunday.\n")
    store = ChatStore(home / "history.sqlite3")
    library = LibrarySources(store, home / "browser")
    library.add(str(notes))
    library.library().update()
    session = scripted.ScriptedSession(load_tokenizer(shared_o200k_harmony_folder()), [SEARCH, OPEN, FINAL],
                                       name="Scripted answers (screenshot script)")
    c = ChatController(store, EngineWorker(loader=lambda folder, ctx: session), library=library)
    w = MainWindow(c)
    w.resize(*DEFAULT)
    w.show()
    c.load_model("/screens")
    spin(400)
    w.show_chat()
    w.composer.input.setPlainText("How high do the tides get at Brest, according to my notes?")
    w.composer.submit()
    while c.busy:
        spin(100)
    saved: list[Path] = []
    take(w, out / "18-browser-cited-answer.png", saved)
    c.shutdown()
    w.close()
    return saved[0]


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    print(main(target))
