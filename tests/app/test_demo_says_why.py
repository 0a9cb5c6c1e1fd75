"""Issue 29 item 4: with the demo model loaded, the settings it ignores say so plainly. The demo is
not offered the developer's functions, MCP servers or (until its weights fill one, issue 27) the answer
format, and
with Python on it writes its full working at every effort: the dialog and the effort slider say why,
so nothing looks dead. With a gpt-oss model loaded, no such notice shows."""
from scripted import ScriptedSession, scripted_loader

from app.controller import ChatController
from app.ui.main_window import MainWindow
from app.ui.settings_dialog import SettingsDialog
from app.worker import EngineWorker
from models.registry import DEMO


def window(qtbot, store, name):
    c = ChatController(store, EngineWorker(loader=scripted_loader(ScriptedSession(name=name))), flush_ms=10)
    w = MainWindow(c)
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(c.model_ready):
        c.load_model("/x")
    return c, w


def dialog_for(qtbot, w) -> SettingsDialog:
    d = SettingsDialog(w.c.settings, w, greedy=w.c.greedy, demo=w.c.is_demo)
    qtbot.addWidget(d)
    d.show()
    return d


def test_the_demo_says_which_settings_it_ignores_and_why(qtbot, store):
    c, w = window(qtbot, store, DEMO.label)
    assert c.is_demo
    d = dialog_for(qtbot, w)
    assert d.demo_note.isVisible()
    text = d.demo_note.text()
    assert "demo" in text and "functions" in text and "MCP" in text
    from app.turn_request import DEMO_FILLS_ANSWER_FORMATS
    assert ("answer format" in text) != DEMO_FILLS_ANSWER_FORMATS   # named among what it ignores until it fills formats
    assert "developer instructions" in text     # ignored by the demo too (the chat's own say so as well)
    c.settings.python_tool = True
    w.effort_hint()   # the window refreshes it when a model loads and when Settings are saved
    assert "Python" in w.effort.toolTip() and "demo" in w.effort.toolTip()
    c.settings.python_tool = False
    w.effort_hint()
    assert "demo" not in w.effort.toolTip()


def test_a_gpt_oss_model_shows_no_demo_notice(qtbot, store):
    c, w = window(qtbot, store, "gpt-oss-20b")
    assert not c.is_demo
    d = dialog_for(qtbot, w)
    assert not d.demo_note.isVisible()
    c.settings.python_tool = True
    w.effort_hint()
    assert "demo" not in w.effort.toolTip()
