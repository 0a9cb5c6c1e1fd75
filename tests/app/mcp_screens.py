"""Screenshots of MCP tool servers in the app: the Settings section, a call asking first, and the
call done (opened, with its result). Run under a real X server:

    xvfb-run -a -s "-screen 0 1400x900x24" python tests/app/mcp_screens.py [folder]

The model's side is scripted (the status bar says so); the MCP server is the real test server
(tests/mcp/mcp_test_server.py) over stdio, and the widgets, states and results are the app's own.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]
os.environ["GPT_OSS_CHAT_HOME"] = tempfile.mkdtemp(prefix="gpt-oss-mcp-screens-")

from PySide6.QtWidgets import QApplication  # noqa: E402

from screens import DEFAULT, spin, take  # noqa: E402
from scripted import ScriptedSession, answer_script, call_script  # noqa: E402

SERVER = ROOT / "tests" / "mcp" / "mcp_test_server.py"


def mcp_states(out: Path) -> list[Path]:
    from app.controller import ChatController
    from app.store import ChatStore
    from app.ui.main_window import MainWindow
    from app.ui.settings_dialog import SettingsDialog
    from app.worker import EngineWorker

    args = {"query": "dentist appointment", "limit": 3}
    session = ScriptedSession(delay=0.004, queue=[
        call_script(json.dumps(args), analysis="Search the user's notes for the appointment.",
                    recipient="functions.notes__search_notes", preamble="I'll look in your notes."),
        answer_script(analysis="Two notes found.", final="Your notes mention the dentist twice; the next "
                      "appointment is on **Tuesday at 9:30**.", think_s=0, pieces=20)])
    session.name = "Scripted answers (screenshot script)"
    home = Path(os.environ["GPT_OSS_CHAT_HOME"])
    store = ChatStore(home / "history.sqlite3")
    c = ChatController(store, EngineWorker(loader=lambda folder, ctx: session))
    c.mcp.add("notes", {"command": sys.executable, "args": [str(SERVER), "stdio"],
                        "env": {"NOTES_TOKEN": "secret-never-shown"}})
    c.mcp.add("issues", {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer sk-never"}})
    w = MainWindow(c)
    w.resize(*DEFAULT)
    w.show()
    c.load_model("/screens")
    spin(400)
    w.show_chat()
    chat = c.new_conversation()
    saved: list[Path] = []
    dialog = SettingsDialog(c.settings, w, api=None, mcp=c.mcp, conversation_id=chat)
    dialog.show()
    dialog.mcp_section.item("notes").setCheckState(dialog.mcp_section.item("notes").checkState().Checked)
    while not dialog.mcp_section.status.text().startswith("notes: "):
        spin(100)
    take(dialog, out / "15-mcp-settings.png", saved)
    dialog.close()
    w.composer.input.setPlainText("When is my next dentist appointment?")
    w.composer.submit()
    while c.waiting_call() is None:
        spin(50)
    take(w, out / "16-mcp-consent.png", saved)
    c.answer_tool("run")
    while c.busy:
        spin(100)
    block = w.messages.assistant_bubbles()[-1].steps.blocks()[0]
    block.header.click()
    spin(200)
    take(w, out / "17-mcp-call-done.png", saved)
    c.shutdown()
    w.close()
    return saved


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    for p in mcp_states(target):
        print(p)
