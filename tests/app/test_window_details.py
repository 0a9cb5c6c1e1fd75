"""Issue 29 items 16 and 17: what a person sees and does around the chat: visible keyboard focus,
Esc and Delete in the sidebar, the window's place remembered, the sidebar's scroll bar, the status
bar's margins, "1 token", and About with its version."""
import re
import tomllib
from pathlib import Path

from PySide6.QtCore import QPoint, Qt
from scripted import ScriptedSession, answer_script

from app.conversation import ChatMessage
from app.ui.message_view import stats_text
from test_app_window import make_window, type_and_enter

ROOT = Path(__file__).resolve().parents[2]


def test_one_token_is_not_tokens():
    assert stats_text(ChatMessage(role="assistant", stats={"generated_tokens": 1})) == "1 token"
    assert stats_text(ChatMessage(role="assistant", stats={"generated_tokens": 2})) == "2 tokens"


def test_about_names_the_version_of_pyproject(qtbot, store, clock, scripted):
    c, w = make_window(qtbot, store, scripted, clock)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f"version {version}" in w.about_text()
    c.shutdown()


def test_status_bar_text_keeps_off_the_window_edges(qtbot, store, clock, scripted):
    c, w = make_window(qtbot, store, scripted, clock)
    w.status_memory.setText("Memory in use: 98.8 MB")
    qtbot.waitUntil(lambda: w.status_model.text() == "scripted model")
    bar = w.statusBar()
    left = w.status_model.mapTo(bar, QPoint(0, 0)).x() + w.status_model.contentsRect().left()
    right = w.status_memory.mapTo(bar, QPoint(0, 0)).x() + w.status_memory.contentsRect().right()
    assert left >= 8 and bar.width() - right >= 8
    c.shutdown()


def test_the_sidebar_scroll_bar_draws_no_black_block_at_the_minimum_size(qtbot, store, clock, scripted):
    """Its page area was transparent over nothing: black on X11. The bar's pixels are the sidebar's."""
    for i in range(40):
        store.create_conversation(f"chat {i}", "medium")
    c, w = make_window(qtbot, store, scripted, clock)
    w.resize(w.minimumSize())
    w.refresh_conversations()
    bar = w.sidebar.list.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.isVisible() and bar.maximum() > 0, timeout=3000)
    from PySide6.QtCore import QRect
    image = w.grab(QRect(bar.mapTo(w, QPoint(0, 0)), bar.size())).toImage()   # as the window draws it
    dark = sum(1 for x in range(image.width()) for y in range(image.height())
               if image.pixelColor(x, y).lightness() < 40)
    assert dark < image.width() * image.height() // 20, f"{dark} near-black pixels in the sidebar's scroll bar"
    c.shutdown()


def tab_stops(w) -> list:
    """The widgets Tab visits in the chat page, in order, from the message box round to it."""
    from PySide6.QtWidgets import QApplication
    w.composer.input.setFocus(Qt.FocusReason.TabFocusReason)
    stops = [w.composer.input]
    for _ in range(40):
        w.focusNextChild()
        f = QApplication.focusWidget()
        if f is None or f in stops:
            break
        stops.append(f)
    return stops


def test_keyboard_focus_is_visible_on_every_tab_stop(qtbot, store, clock):
    from PySide6.QtWidgets import QApplication
    c, w = make_window(qtbot, store, ScriptedSession(answer_script(final="See:\n\n```python\nx = 1\n```"),
                                                     clock=clock), clock)
    type_and_enter(qtbot, w, "hi")
    qtbot.waitUntil(lambda: not c.busy, timeout=5000)
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=3000)
    stops = tab_stops(w)
    assert len(stops) >= 6
    unmarked = []
    for f in stops:
        f.setFocus(Qt.FocusReason.TabFocusReason)
        QApplication.processEvents()
        focused = f.grab().toImage()
        w.setFocus()            # focus elsewhere, the widget otherwise unchanged (hover, state)
        QApplication.processEvents()
        if f.grab().toImage() == focused:
            unmarked.append(f"{type(f).__name__} {f.objectName() or getattr(f, 'text', lambda: '')()}")
    assert unmarked == [], "\n".join(unmarked)
    c.shutdown()


def test_escape_clears_the_search_and_delete_removes_the_selected_chat(qtbot, store, clock, scripted):
    c, w = make_window(qtbot, store, scripted, clock)
    for text in ("apples", "bananas"):
        w.new_action.trigger()
        type_and_enter(qtbot, w, text)
        qtbot.waitUntil(lambda: not c.busy, timeout=5000)
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=3000)
    w.find_action.trigger()
    qtbot.keyClicks(w.sidebar.search, "appl")
    assert w.sidebar.list.count() == 1
    qtbot.keyClick(w.sidebar.search, Qt.Key.Key_Escape)
    assert w.sidebar.search.text() == "" and w.sidebar.list.count() == 2
    qtbot.keyClick(w.sidebar.search, Qt.Key.Key_Escape)      # empty: Esc goes back to the message box
    assert w.composer.input.hasFocus()
    item = next(w.sidebar.list.item(i) for i in range(w.sidebar.list.count()) if w.sidebar.list.item(i).text() == "apples")
    w.sidebar.list.setCurrentItem(item)
    w.sidebar.list.setFocus()
    qtbot.keyClick(w.sidebar.list, Qt.Key.Key_Delete)
    assert [x.title for x in store.conversations()] == ["bananas"] and w.sidebar.undo_bar.isVisibleTo(w)
    qtbot.mouseClick(w.sidebar.undo_button, Qt.MouseButton.LeftButton)     # and Undo brings it back
    assert sorted(x.title for x in store.conversations()) == ["apples", "bananas"]
    c.shutdown()


def test_the_window_opens_where_and_as_large_as_it_was_left(qtbot, store, clock, scripted):
    from app.ui.main_window import MainWindow
    c, w = make_window(qtbot, store, scripted, clock)
    w.resize(770, 540)   # within the offscreen screen (800x600): Qt keeps a window on its screen
    qtbot.waitUntil(lambda: w.size().toTuple() == (770, 540), timeout=3000)
    w.close()
    w2 = MainWindow(c)
    qtbot.addWidget(w2)
    assert w2.size().toTuple() == (770, 540)
    c.shutdown()


def test_the_context_meter_shows_the_chats_use_and_what_goes_first(qtbot, store, clock):
    """Issue 29, a context meter: the last answer's prompt plus what it wrote, of the context."""
    session = ScriptedSession(answer_script(final="abcdefgh", pieces=8), clock=clock)
    c, w = make_window(qtbot, store, session, clock)
    assert not w.context_meter.isVisibleTo(w)           # an empty chat uses nothing yet
    type_and_enter(qtbot, w, "The first question, about pears")
    qtbot.waitUntil(lambda: not c.busy, timeout=5000)
    stats = c.model.last().stats
    used = stats["prompt_tokens"] + stats["generated_tokens"]     # the scripted session's own counts
    assert used > 0 and w.context_meter.isVisibleTo(w)
    assert w.context_meter.label.text() == f"Context {used} / 8K"
    assert w.context_meter.bar.value() == int(used / 8192 * 1000)
    assert f"about {used:,} of its 8,192-token context" in w.context_meter.toolTip()
    assert "next would be your message “The first question, about pears”" in w.context_meter.toolTip()
    w.new_action.trigger()
    assert not w.context_meter.isVisibleTo(w)
    c.shutdown()


def test_the_chat_title_keeps_room_beside_a_long_model_name_at_the_minimum_size(qtbot, store, clock):
    """At 760x520 the model button took the header and left the title "Ex…": the chat's name
    matters more there (the status bar names the model too)."""
    from app.store import StoredMessage
    conv = store.create_conversation("Explain YaRN scaling", "medium")
    store.add_message(conv.id, StoredMessage("user", "Explain YaRN scaling"))
    session = ScriptedSession(clock=clock, name="Scripted answers (screenshot script)")
    c, w = make_window(qtbot, store, session, clock)
    c.open_conversation(conv.id)
    w.resize(w.minimumSize())
    qtbot.waitUntil(lambda: w.model_badge.full_text() == session.name)
    assert w.title.full_text() == "Explain YaRN scaling"
    qtbot.waitUntil(lambda: w.width() == w.minimumWidth() and w.title.width() >= w.model_badge.width(), timeout=3000)
    assert len(w.title.text().rstrip("…")) >= 10, w.title.text()
    assert w.model_badge.width() >= w.model_badge.minimumSizeHint().width()
    c.shutdown()


def test_a_disabled_tool_button_looks_disabled(qtbot, store, clock):
    """While an answer was written, Regenerate and Edit were disabled but drawn exactly like enabled
    ones (both in the muted grey): they must look unavailable."""
    from app.ui.theme import current_colors, style_sheet
    from PySide6.QtWidgets import QApplication
    c, w = make_window(qtbot, store, ScriptedSession(answer_script(final="Done."), clock=clock), clock)
    QApplication.instance().setStyleSheet(style_sheet(current_colors()))
    type_and_enter(qtbot, w, "hi")
    qtbot.waitUntil(lambda: not c.busy and w.composer.regenerate_button.isEnabled(), timeout=5000)
    button = w.composer.regenerate_button

    def darkest() -> int:
        image = button.grab().toImage()
        return min(image.pixelColor(x, y).lightness() for x in range(image.width()) for y in range(image.height()))
    enabled = darkest()
    button.setEnabled(False)
    disabled = darkest()
    QApplication.instance().setStyleSheet("")
    assert disabled >= enabled + 40, (enabled, disabled)
    c.shutdown()


def test_a_python_call_with_long_lines_fits_a_narrow_chat_column(qtbot):
    """At 760x520 the call's code made its block wider than the chat (border and Run row cut off by
    the edge): long lines scroll sideways inside the block, as in an answer's code block."""
    from app.tool_steps import CallStep
    from app.ui.tool_block import ToolBlock
    code = "print('a long line of code that goes on and on', " + ", ".join(str(i) for i in range(60)) + ")"
    for status, result in (("waiting", None), ("done", "x" * 300)):
        block = ToolBlock(CallStep(recipient="python", channel="analysis", arguments=code, status=status, result=result))
        block._open = True
        block.update_step(block._step)
        qtbot.addWidget(block)
        assert block.minimumSizeHint().width() <= 420, (status, block.minimumSizeHint().width())
        block.resize(400, block.sizeHint().height())
        block.show()
        qtbot.waitUntil(lambda: block.isVisible())
        assert block.code.parentWidget().parentWidget().width() <= 400   # the code's viewport, inside the block


def test_a_model_name_is_shown_whole_when_the_header_has_room(qtbot, store, clock):
    """The model button's width was measured 4 px short of what its elision needs: in a wide, nearly
    empty header the name was cut ("Scripted answers (screenshot scri… ▾") though it fitted."""
    session = ScriptedSession(clock=clock, name="Scripted answers (screenshot script)")
    c, w = make_window(qtbot, store, session, clock)
    w.resize(1400, 780)
    qtbot.waitUntil(lambda: w.model_badge.full_text() == session.name)
    qtbot.waitUntil(lambda: w.width() == 1400 and w.title.text() == "New chat", timeout=3000)
    qtbot.waitUntil(lambda: "…" not in w.model_badge.text(), timeout=3000)
    c.shutdown()
