"""Issue 17 items 2-10: the app as a new user meets it (pytest-qt, offscreen, scripted answers).

The demo model's examples are checked against the real model in test_demo_examples.py; here the
window is driven with a scripted session that calls itself the demo model where that matters.
"""
import re
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QAbstractButton, QLabel, QLineEdit, QScrollArea, QWidget
from scripted import FakeClock, ScriptedSession, answer_script

from app.controller import ChatController
from app.ui.main_window import MainWindow
from app.worker import EngineWorker
from models.registry import DEMO

ROOT = Path(__file__).resolve().parents[2]


def loader_named(session, name):
    session.name = name
    return lambda folder, ctx: session


def open_window(qtbot, store, session, name="scripted model", clock=None, folder="/x", size=None):
    c = ChatController(store, EngineWorker(loader=loader_named(session, name), clock=clock or FakeClock()),
                       flush_ms=10)
    w = MainWindow(c)
    qtbot.addWidget(w)
    if size:
        w.resize(*size)
    w.show()
    with qtbot.waitSignal(c.model_ready):
        c.load_model(folder)
    w.show_chat()
    return c, w


def settled(qtbot, w, timeout=10000):
    """Wait until the window's layout stops changing: two looks in a row, with the event loop run
    between them (posted layout requests handled), see the same geometry for every widget."""
    last = []

    def unchanged():
        now = [(id(x), x.isVisible(), x.geometry().getRect()) for x in [w, *w.findChildren(QWidget)]]
        same = now == last
        last[:] = now
        return same
    qtbot.waitUntil(unchanged, timeout=timeout)


def send(qtbot, w, c, text):
    w.composer.input.setPlainText(text)
    qtbot.keyClick(w.composer.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not c.busy, timeout=20000)


# ------------------------------------------------------------------ item 2: the demo model's first minute


def test_demo_model_starts_at_high_effort_with_example_chips(qtbot, store, clock):
    from app.demo_examples import EXAMPLES
    session = ScriptedSession(clock=clock)
    c, w = open_window(qtbot, store, session, name=DEMO.label, clock=clock)
    assert w.effort.effort() == "high" and c.effort == "high"
    chips = w.messages.example_chips()
    assert [b.text() for b in chips] == [e.question for e in EXAMPLES]
    assert all(b.isVisibleTo(w) for b in chips)
    qtbot.mouseClick(chips[3], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not c.busy, timeout=5000)
    assert session.calls[-1]["messages"][-1]["content"] == EXAMPLES[3].question
    assert session.calls[-1]["effort"] == "high"
    assert not any(b.isVisibleTo(w) for b in w.messages.example_chips())   # the chat is no longer empty
    c.shutdown()


def test_gpt_oss_keeps_medium_and_shows_no_chips(qtbot, store, clock):
    c, w = open_window(qtbot, store, ScriptedSession(clock=clock), clock=clock)
    assert w.effort.effort() == "medium"
    assert not any(b.isVisibleTo(w) for b in w.messages.example_chips())
    c.shutdown()


def test_in_app_demo_text_agrees_with_both_readmes(qtbot, store, clock):
    """The accuracy the app quotes is the model card's measured figure for the shipped weights (the
    same at medium and high effort), as in README."""
    card = (ROOT / "models" / "demo" / "README.md").read_text()
    shipped = next(line for line in card.splitlines() if "**shipped**" in line and "held-out" in line)
    medium, high = (float(x) for x in re.findall(r"\*\*([\d.]+)% \(", shipped)[-2:])
    assert round(medium / 5) == round(high / 5)
    measured = high
    c, w = open_window(qtbot, store, ScriptedSession(clock=clock), name=DEMO.label, clock=clock)
    shown = w.messages.placeholder.text()
    readme = (ROOT / "README.md").read_text()
    for text in (shown, " ".join(readme.split())):
        m = re.search(r"about (\d+)% of them right at medium and high effort", text, re.I)
        assert m and int(m.group(1)) == round(measured / 5) * 5, text[:400]
    assert "not gpt-oss" in shown
    c.shutdown()


# ------------------------------------------------------------------ item 3: offline download


def test_offline_download_says_no_network_and_keeps_download(qtbot, store, app_home, tmp_path, monkeypatch):
    import app.launcher as launcher_mod
    from app.launcher import Launcher
    from test_app_download import MODEL
    monkeypatch.setattr(launcher_mod, "demo_folder", lambda: tmp_path / "no-demo")
    monkeypatch.setattr("app.model_manager.demo_folder", lambda: tmp_path / "no-demo")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    c = ChatController(store, EngineWorker(loader=loader_named(ScriptedSession(), "m")))
    lc = Launcher(c, endpoint="http://no-such-host.invalid")   # DNS fails as it does offline
    qtbot.addWidget(lc.window)
    lc.downloader.model = MODEL
    lc.start()
    setup = lc.window.setup
    first_text = setup.download_button.text()
    assert first_text.startswith("Download gpt-oss-20b")
    qtbot.mouseClick(setup.download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: setup.message.text() != "", timeout=30000)
    msg = setup.message.text()
    assert msg.startswith("Can't reach Hugging Face: no network?")
    assert "Error" not in msg and "Errno" not in msg and "(" not in msg
    assert setup.download_button.text() == first_text and setup.download_button.isEnabled()
    assert not setup.progress.isVisibleTo(lc.window) and not setup.progress_label.isVisibleTo(lc.window)
    lc.shutdown()
    c.shutdown()


def test_setup_page_shows_disk_space_needed_and_free(qtbot, store, app_home, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    import app.launcher as launcher_mod
    from app.launcher import Launcher
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(500 * 10**9, 400 * 10**9, 52_300_000_000))
    monkeypatch.setattr(launcher_mod, "demo_folder", lambda: tmp_path / "no-demo")
    monkeypatch.setattr("app.model_manager.demo_folder", lambda: tmp_path / "no-demo")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    c = ChatController(store, EngineWorker(loader=loader_named(ScriptedSession(), "m")))
    lc = Launcher(c)
    qtbot.addWidget(lc.window)
    lc.start()
    text = lc.window.setup.disk_label.text()
    assert "Needs 13.8 GB" in text and "52.3 GB free" in text
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(500 * 10**9, 499 * 10**9, 3 * 10**9))
    lc.start()
    assert "3.0 GB free" in lc.window.setup.disk_label.text()
    assert lc.window.setup.disk_label.objectName() == "Notice"    # too little: said in the warning colour
    lc.shutdown()
    c.shutdown()


def test_setup_page_says_this_computer_off_macos_and_the_readme_size(qtbot):
    from app.ui.setup_page import SetupPage, human_bytes
    from models.registry import GPT_OSS_20B
    size = human_bytes(GPT_OSS_20B.approx_bytes)
    page = SetupPage(size, "/tmp/x")
    qtbot.addWidget(page)
    intro = page.intro.text()
    assert ("this Mac" in intro) == (sys.platform == "darwin")
    assert ("this computer" in intro) == (sys.platform != "darwin")
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert f"download gpt-oss-20b ({size})" in readme and size in page.download_button.text()


# ------------------------------------------------------------------ item 4: the composer grows


def test_composer_grows_with_new_and_wrapped_lines_then_scrolls(qtbot, store, clock):
    c, w = open_window(qtbot, store, ScriptedSession(clock=clock), clock=clock)
    box = w.composer.input
    one = box.height()
    box.setPlainText("first\nsecond\nthird")
    qtbot.waitUntil(lambda: box.height() > one)
    settled(qtbot, w)
    assert box.verticalScrollBar().maximum() == 0                        # all three lines show
    box.setPlainText("word " * 120)                                       # one paragraph, wrapped
    qtbot.waitUntil(lambda: box.height() > one)
    settled(qtbot, w)
    assert box.verticalScrollBar().maximum() == 0
    box.setPlainText("\n".join(f"line {i}" for i in range(40)))
    qtbot.waitUntil(lambda: box.verticalScrollBar().maximum() > 0)
    settled(qtbot, w)
    tall = box.height()
    assert tall < 300 and box.verticalScrollBar().maximum() > 0          # capped, then it scrolls
    box.setPlainText("")
    qtbot.waitUntil(lambda: box.height() == one)
    c.shutdown()


# ------------------------------------------------------------------ item 5: nothing clipped at any size


def scrolls_inside(widget, bubble) -> bool:
    """`widget` sits in a scroll area of its own within `bubble` (a code block's long lines)."""
    p = widget.parentWidget()
    while p is not None and p is not bubble:
        if isinstance(p, QScrollArea):
            return True
        p = p.parentWidget()
    return False


def clipped_widgets(w):
    """Labels and buttons whose text is wider than the room they have, and bubbles past the edge."""
    bad = []
    for lab in w.findChildren(QLabel):
        if not lab.isVisibleTo(w) or not lab.text() or lab.wordWrap() or lab.textFormat() == Qt.TextFormat.RichText:
            continue
        need = max(lab.fontMetrics().horizontalAdvance(line) for line in lab.text().splitlines())
        if need > lab.contentsRect().width():
            bad.append(f"label {lab.text()!r}: {need} > {lab.contentsRect().width()}")
    for b in w.findChildren(QAbstractButton):
        if not b.isVisibleTo(w) or not b.text():
            continue
        if b.minimumSizeHint().width() > b.width() + 1 or b.fontMetrics().horizontalAdvance(b.text()) > b.width():
            bad.append(f"button {b.text()!r}: {b.minimumSizeHint().width()} > {b.width()}")
    view = w.messages.viewport()
    for bubble in w.messages.bubbles:
        for child in [bubble] + bubble.findChildren(QLabel) + bubble.findChildren(QAbstractButton):
            if not child.isVisibleTo(w) or scrolls_inside(child, bubble):
                continue
            right = child.mapTo(view, QPoint(child.width(), 0)).x()
            if right > view.width() + 1:
                what = child.text()[:30] if isinstance(child, QLabel) else type(bubble).__name__
                bad.append(f"{what!r} ends at {right} past the view's {view.width()}")
    return bad


@pytest.mark.parametrize("size", [(760, 520), (960, 640), (1180, 780)])
def test_nothing_is_clipped_at_the_minimum_and_default_sizes(qtbot, store, clock, size):
    long_line = "Please explain, step by step, how a transformer's attention works on long inputs " * 2
    session = ScriptedSession(answer_script(analysis="The user wants a long answer; reason about it at length. " * 4,
                                            final="Here is an answer long enough to wrap in a narrow window. " * 6
                                            + "\n\n```python\nprint('a code block with a Copy button and one long line: " + "x" * 150 + "')\n```\n"),
                              clock=clock)
    c, w = open_window(qtbot, store, session, name=DEMO.label, clock=clock, size=size)
    assert (w.width(), w.height()) == size
    assert w.get_model_button.isVisibleTo(w)
    send(qtbot, w, c, "Hello! Who are you and what can you do for me today, in a long title?")
    send(qtbot, w, c, long_line)
    settled(qtbot, w)
    bad = clipped_widgets(w)
    assert bad == [], "\n".join(bad)
    s = c.settings
    s.show_raw_cot = True            # the raw reasoning and its caption wrap too
    c.save_settings(s)
    settled(qtbot, w)
    bad = clipped_widgets(w)
    assert bad == [], "\n".join(bad)
    labels = w.effort.labels
    for a, b in zip(labels, labels[1:]):      # Low / Medium / High never overlap
        assert a.geometry().right() < b.geometry().left()
    c.shutdown()


def test_a_long_title_keeps_the_sidebar_width(qtbot, store, clock):
    c, w = open_window(qtbot, store, ScriptedSession(clock=clock), clock=clock, size=(960, 640))
    settled(qtbot, w)
    before = w.sidebar.width()
    send(qtbot, w, c, "x" * 47)
    c.rename(c.current_id, "A very long title " * 10)
    qtbot.waitUntil(lambda: w.title.toolTip().startswith("A very long title"))
    settled(qtbot, w)
    assert w.sidebar.width() == before
    c.shutdown()


# ------------------------------------------------------------------ item 6: renaming


def test_rename_editor_is_readable_and_the_header_follows(qtbot, store, clock):
    c, w = open_window(qtbot, store, ScriptedSession(clock=clock), clock=clock)
    send(qtbot, w, c, "apples")
    item = w.sidebar.list.item(0)
    w.sidebar.list.editItem(item)
    editor = w.sidebar.list.viewport().findChild(QLineEdit)
    qtbot.waitUntil(editor.isVisible)
    # The height the line edit needs for its text, frame and style-sheet padding, not a sliver of it.
    assert editor.height() >= editor.sizeHint().height(), (editor.height(), editor.sizeHint().height())
    editor.selectAll()
    qtbot.keyClicks(editor, "Fruit")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: store.conversation(c.current_id).title == "Fruit", timeout=2000)
    assert w.title.toolTip() == "Fruit" and w.title.text() == "Fruit"
    c.shutdown()


# ------------------------------------------------------------------ item 7: settings


def spin_arrow_pixels(spin):
    """How many pixels in the up-button area differ from its background (an arrow is drawn)."""
    from PySide6.QtWidgets import QStyle, QStyleOptionSpinBox
    opt = QStyleOptionSpinBox()
    spin.initStyleOption(opt)
    rect = spin.style().subControlRect(QStyle.ComplexControl.CC_SpinBox, opt, QStyle.SubControl.SC_SpinBoxUp, spin)
    image = spin.grab().toImage()
    if rect.width() < 6 or rect.height() < 4:
        return 0
    colors = [image.pixel(x, y) for x in range(rect.left() + 1, rect.right() - 1)
              for y in range(rect.top() + 1, rect.bottom() - 1)]
    background = max(set(colors), key=colors.count)
    return sum(col != background for col in colors)


def test_number_boxes_show_arrows_and_greedy_models_grey_out_sampling(qtbot, store):
    from app.settings import Settings
    from app.ui.settings_dialog import SettingsDialog
    from app.ui.theme import current_colors, style_sheet
    from PySide6.QtWidgets import QApplication
    QApplication.instance().setStyleSheet(style_sheet(current_colors()))
    d = SettingsDialog(Settings(), greedy=False)
    qtbot.addWidget(d)
    d.show()
    for spin in (d.temperature, d.top_p, d.max_tokens):
        assert spin_arrow_pixels(spin) > 4, spin
    assert d.temperature.isEnabled() and d.top_p.isEnabled() and not d.greedy_note.isVisibleTo(d)
    g = SettingsDialog(Settings(), greedy=True)
    qtbot.addWidget(g)
    g.show()
    assert not g.temperature.isEnabled() and not g.top_p.isEnabled()
    assert g.greedy_note.isVisibleTo(g) and "greedily" in g.greedy_note.text()
    assert g.result_settings().temperature == 1.0    # the user's own value is kept for other models
    QApplication.instance().setStyleSheet("")


def test_the_window_knows_the_demo_decodes_greedily(qtbot, store, clock):
    from models.registry import demo_folder
    c, w = open_window(qtbot, store, ScriptedSession(clock=clock, greedy=True), name=DEMO.label, clock=clock,
                       folder=str(demo_folder()))
    assert c.greedy  # the session's own verdict (engine.open_chat reads the folder's generation_config)
    c.shutdown()


# ------------------------------------------------------------------ item 8: "Thought for 0.4 s"


def test_thought_for_under_a_second_and_the_line_is_the_toggle(qtbot, store, clock):
    from app.conversation import ChatMessage
    from app.ui.message_view import thinking_text
    assert thinking_text(ChatMessage("assistant", thought_seconds=0.4)) == "Thought for 0.4 s"
    assert thinking_text(ChatMessage("assistant", thought_seconds=2.6)) == "Thought for 3 s"
    c, w = open_window(qtbot, store, ScriptedSession(answer_script(think_s=0.4), clock=clock), clock=clock)
    send(qtbot, w, c, "think briefly")
    bubble = w.messages.assistant_bubbles()[-1]
    assert bubble.thinking.text().startswith("Thought for 0.4 s")
    assert "Settings" in bubble.thinking.toolTip()          # hidden: the tooltip says where to turn it on
    qtbot.mouseClick(bubble.thinking, Qt.MouseButton.LeftButton)
    assert not bubble.raw_panel.isVisibleTo(w)
    s = c.settings
    s.show_raw_cot = True
    c.save_settings(s)
    assert bubble.raw_panel.isVisibleTo(w)
    qtbot.mouseClick(bubble.thinking, Qt.MouseButton.LeftButton)
    assert not bubble.raw_panel.isVisibleTo(w) and "Show" in bubble.thinking.toolTip()
    qtbot.mouseClick(bubble.thinking, Qt.MouseButton.LeftButton)
    assert bubble.raw_panel.isVisibleTo(w)
    c.shutdown()


# ------------------------------------------------------------------ item 9: effort


def test_new_chats_remember_the_last_effort_and_labels_are_clickable(qtbot, store, clock):
    session = ScriptedSession(clock=clock)
    c, w = open_window(qtbot, store, session, clock=clock)
    low, medium, high = w.effort.labels
    qtbot.mouseClick(high, Qt.MouseButton.LeftButton)
    assert w.effort.effort() == "high" and c.effort == "high"
    send(qtbot, w, c, "one")
    assert "High effort" in w.messages.assistant_bubbles()[-1].stats.text()
    w.new_action.trigger()
    assert w.effort.effort() == "high"
    qtbot.mouseClick(low, Qt.MouseButton.LeftButton)
    send(qtbot, w, c, "two")
    assert session.calls[-1]["effort"] == "low"
    assert w.messages.assistant_bubbles()[-1].stats.text().startswith("Low effort")
    c.shutdown()
    # ...and across a restart
    c2, w2 = open_window(qtbot, store, ScriptedSession(clock=clock), clock=clock)
    w2.new_action.trigger()
    assert w2.effort.effort() == "low"
    c2.shutdown()


# ------------------------------------------------------------------ item 10: small things


def test_quit_and_about_and_the_new_chat_shortcut_in_words(qtbot, store, clock):
    c, w = open_window(qtbot, store, ScriptedSession(clock=clock), clock=clock)
    assert w.quit_action.shortcut().toString() == "Ctrl+Q"      # Cmd+Q on macOS
    assert w.about_action.menuRole() == w.about_action.MenuRole.AboutRole
    tip = w.sidebar.new_button.toolTip()
    if sys.platform != "darwin":
        assert "Ctrl+N" in tip and "⌘" not in tip
    w.quit_action.trigger()
    assert not w.isVisible()
    c.shutdown()


def test_stop_shows_only_in_the_chat_that_is_answering(qtbot, store):
    session = ScriptedSession(answer_script(analysis="x", final="word " * 300, pieces=300), delay=0.01)
    c, w = open_window(qtbot, store, session)
    send(qtbot, w, c, "first chat")
    first = c.current_id
    w.new_action.trigger()
    w.composer.input.setPlainText("second chat")
    qtbot.keyClick(w.composer.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: c.busy, timeout=2000)
    assert w.composer.send_button.text() == "Stop"
    c.open_conversation(first)
    assert w.composer.send_button.text() == "Send" and not w.composer.send_button.isEnabled()
    assert "answering" in w.composer.send_button.toolTip()
    w._escape()                       # Esc here does not stop the other chat's answer
    assert c.busy
    c.stop()
    qtbot.waitUntil(lambda: not c.busy, timeout=20000)
    assert w.composer.send_button.isEnabled()
    c.shutdown()


def test_a_search_with_no_match_says_so(qtbot, store, clock):
    c, w = open_window(qtbot, store, ScriptedSession(clock=clock), clock=clock)
    send(qtbot, w, c, "apples")
    qtbot.keyClicks(w.sidebar.search, "zebra")
    assert w.sidebar.list.count() == 0
    assert w.sidebar.empty.isVisibleTo(w) and "zebra" in w.sidebar.empty.text()
    c.shutdown()


def test_memory_in_use_never_reads_zero_gb(qtbot, store, clock):
    c, w = open_window(qtbot, store, ScriptedSession(clock=clock), clock=clock)
    c.memory_changed.emit(3_400_000)
    assert w.status_memory.text() == "Memory in use: 3.4 MB"
    c.memory_changed.emit(11_460_000_000)
    assert w.status_memory.text() == "Memory in use: 11.46 GB"
    c.memory_changed.emit(0)
    assert not w.status_memory.text()
    c.shutdown()
