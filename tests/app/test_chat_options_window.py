"""Issue 29, per-chat settings in the real window: the header's "Chat settings" button opens the
dialog, what is saved there reaches the model for that chat only, the button says when a chat has
its own values, presets are made and applied from the dialog, bad input gets one sentence and the
dialog stays open with what was typed, and the demo model's dialog says plainly what it ignores."""
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox
from scripted import ScriptedSession
from test_app_window import make_window, type_and_enter

from app.chat_options import ChatOptions
from app.ui.chat_options import DEMO_NOTE, GREEDY_NOTE, ChatOptionsDialog
from models.registry import DEMO


def dialog_of(qtbot, w) -> ChatOptionsDialog:
    d = w.chat_options_button.make_dialog()
    qtbot.addWidget(d)
    d.show()
    return d


def test_saved_chat_settings_reach_the_model_and_the_button_says_so(qtbot, store, clock):
    session = ScriptedSession(clock=clock)
    c, w = make_window(qtbot, store, session, clock)
    c.settings.developer = "App-wide instructions."
    assert w.chat_options_button.text() == "⚙ Chat settings" and w.chat_options_button.isVisible()
    # The real Save path: the modal dialog from the header button, its Save button clicked.
    def click_save():
        dialog = QApplication.activeModalWidget()
        dialog.developer.setPlainText("Answer like a pirate.")
        dialog.temperature.setText("0.4")
        dialog.effort.setCurrentIndex(dialog.effort.findData("low"))
        dialog.buttons.button(QDialogButtonBox.StandardButton.Save).click()
    QTimer.singleShot(0, click_save)
    qtbot.mouseClick(w.chat_options_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.chat_options_button.text() == "⚙ This chat's own settings")
    assert "temperature 0.4" in w.chat_options_button.toolTip()
    assert w.effort.effort() == "low" and c.effort == "low"
    type_and_enter(qtbot, w, "Hello")
    qtbot.waitUntil(lambda: not c.busy)
    call = session.calls[-1]
    assert call["developer"] == "Answer like a pirate." and call["effort"] == "low"
    assert call["sampling"].temperature == 0.4
    w.new_chat()
    assert w.chat_options_button.text() == "⚙ Chat settings"   # another chat follows Settings


def test_bad_input_gets_one_sentence_and_the_dialog_keeps_what_was_typed(qtbot, store, clock):
    c, w = make_window(qtbot, store, ScriptedSession(clock=clock), clock)
    d = dialog_of(qtbot, w)
    d.developer.setPlainText("Keep me.")
    d.temperature.setText("7")
    d.accept()
    assert d.isVisible() and d.problem.isVisible()
    assert d.problem.text().startswith("Temperature must be a number from 0 to 2")
    assert d.developer.toPlainText() == "Keep me."
    d.temperature.setText("")
    assert d.save_preset("   ") == "A preset needs a name; type one, e.g. “Concise answers”."
    assert d.save_preset("Mine") == ""
    assert d.save_preset("mine").startswith("A preset named “Mine” already exists")
    assert d.problem.isVisible()
    d.temperature.setText("0.5")      # the same name, confirmed: that preset takes the new values
    assert d.save_preset("mine", replace_existing=True) == "" and not d.problem.isVisible()
    assert c.chat_options.presets() == ["Mine"] and c.chat_options.preset("Mine").temperature == 0.5


def test_presets_from_the_dialog_apply_to_a_chat_and_start_new_chats(qtbot, store, clock):
    session = ScriptedSession(clock=clock)
    c, w = make_window(qtbot, store, session, clock)
    d = dialog_of(qtbot, w)
    d.developer.setPlainText("Be terse.")
    d.top_p.setText("0.8")
    d.effort.setCurrentIndex(d.effort.findData("high"))
    assert d.save_preset("Terse") == ""
    assert d.preset_box.currentText() == "Terse" and d.rename_button.isEnabled()
    d.default_box.setChecked(True)
    assert c.chat_options.default_preset() == "Terse"
    assert d.rename_preset("Short") == "" and d.preset_box.currentText() == "Short"
    d.close()
    conv = c.new_conversation()
    assert w.chat_options_button.text() == "⚙ Preset: Short" and c.effort == "high"
    d = dialog_of(qtbot, w)      # a fresh chat, filled from the default preset
    assert d.developer.toPlainText() == "Be terse." and d.top_p.text() == "0.8"
    d.clear()
    assert w.chat_options_button.save(d)
    assert not c.chat_options.get(conv).own and w.chat_options_button.text() == "⚙ Chat settings"
    d = dialog_of(qtbot, w)
    d.choose_preset("Short")
    assert d.developer.toPlainText() == "Be terse."
    assert w.chat_options_button.save(d)
    assert c.chat_options.get(conv) == ChatOptions("Be terse.", None, 0.8, preset="Short")
    d = dialog_of(qtbot, w)
    d.developer.setPlainText("Be terse, in French.")    # changed: the chat's own, no longer the preset
    assert w.chat_options_button.save(d)
    assert w.chat_options_button.text() == "⚙ This chat's own settings"
    d = dialog_of(qtbot, w)
    d.choose_preset("Short")
    d.delete_preset()
    assert c.chat_options.presets() == [] and d.preset_box.currentText() == "No preset"
    assert not d.default_box.isEnabled()


def test_the_demo_model_says_it_ignores_instructions_and_temperature(qtbot, store, clock):
    c, w = make_window(qtbot, store, ScriptedSession(clock=clock, name=DEMO.label), clock)
    assert c.is_demo
    d = dialog_of(qtbot, w)
    assert d.model_note.isVisible() and d.model_note.text() == DEMO_NOTE
    assert "developer instructions" in DEMO_NOTE and "temperature" in DEMO_NOTE


def test_a_greedy_model_says_temperature_does_not_apply_and_gpt_oss_says_nothing(qtbot, store, clock):
    c, w = make_window(qtbot, store, ScriptedSession(clock=clock, greedy=True), clock)
    d = dialog_of(qtbot, w)
    assert d.model_note.isVisible() and d.model_note.text() == GREEDY_NOTE
    c2, w2 = make_window(qtbot, store, ScriptedSession(clock=clock, name="gpt-oss-20b"), clock)
    assert not dialog_of(qtbot, w2).model_note.isVisible()


def test_the_chat_settings_screenshots_render_under_xvfb(tmp_path):
    """tests/app/options_screens.py under a real X server: the window and its dialog, at the default
    and minimum sizes, to non-blank PNGs at least as large as the window."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import pytest
    from PySide6.QtGui import QImage
    if shutil.which("xvfb-run") is None:
        pytest.skip("needs Xvfb (apt-get install xvfb libxcb-cursor0)")
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}   # a real X server, not offscreen
    script = Path(__file__).with_name("options_screens.py")
    run = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1400x900x24", sys.executable, str(script), str(tmp_path)],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    for name, size in (("21-chat-options", (1180, 780)), ("min-21-chat-options", (760, 520))):
        image = QImage(str(tmp_path / f"{name}.png"))
        assert not image.isNull(), name
        assert image.width() >= size[0] and image.height() >= size[1], (name, image.size())
        small = image.scaled(80, 50)
        assert len({small.pixel(x, y) for x in range(80) for y in range(50)}) > 20, f"{name}.png looks blank"


def test_the_chat_menu_applies_a_preset_and_goes_back_to_settings(qtbot, store, clock):
    session = ScriptedSession(clock=clock)
    c, w = make_window(qtbot, store, session, clock)
    c.settings.developer = "App-wide."
    c.chat_options.save_preset("Pirate", ChatOptions("Arr.", 0.9, effort="low"))
    c.new_conversation()
    w.presets_menu.aboutToShow.emit()
    actions = {a.text(): a for a in w.presets_menu.actions()}
    assert not actions["Pirate"].isChecked()
    actions["Pirate"].trigger()
    assert w.chat_options_button.text() == "⚙ Preset: Pirate" and w.effort.effort() == "low"
    type_and_enter(qtbot, w, "Ahoy")
    qtbot.waitUntil(lambda: not c.busy)
    assert session.calls[-1]["developer"] == "Arr." and session.calls[-1]["effort"] == "low"
    w.presets_menu.aboutToShow.emit()
    actions = {a.text(): a for a in w.presets_menu.actions()}
    assert actions["Pirate"].isChecked()
    actions["Use Settings (no values of its own)"].trigger()
    assert w.chat_options_button.text() == "⚙ Chat settings"
    type_and_enter(qtbot, w, "Hello")
    qtbot.waitUntil(lambda: not c.busy)
    assert session.calls[-1]["developer"] == "App-wide."
