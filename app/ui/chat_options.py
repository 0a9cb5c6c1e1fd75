"""The open chat's own settings: developer instructions, reasoning effort, temperature and top-p,
and the presets they can be saved as and taken from (app/chat_options.py keeps them).

The "Chat settings" button (app/ui/chat_options_button.py) opens this dialog. Fields left empty use
the app-wide value. Presets are saved, renamed and deleted at once; the chat's own values when the
dialog is saved.
"""
from __future__ import annotations

from dataclasses import replace

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout,
                               QInputDialog, QLabel, QLineEdit, QMessageBox, QPlainTextEdit, QPushButton,
                               QVBoxLayout)

from app.chat_options import TEMPERATURE, TOP_P, ChatOptions, PresetError, parse_number
from app.store import EFFORTS, StoreError

NO_PRESET = "No preset"
DEMO_NOTE = ("The demo model doesn't follow developer instructions (it never learnt them) and always answers "
             "greedily, so temperature and top-p don't change it either. They apply as soon as a gpt-oss model "
             "is loaded; the effort does change the demo's answers.")
GREEDY_NOTE = ("The loaded model answers greedily (its folder asks for it), so temperature and top-p don't "
               "apply to it.")


class ChatOptionsDialog(QDialog):
    def __init__(self, controller, options: ChatOptions, effort: str, parent=None):
        super().__init__(parent)
        self.c = controller
        self.presets = controller.chat_options
        self.setWindowTitle("Chat Settings")
        self.setMinimumWidth(460)
        self._preset = options.preset
        s = controller.settings
        lay = QVBoxLayout(self)
        intro = QLabel("For this chat only. Empty fields use the app-wide values from Settings.", objectName="Caption")
        intro.setWordWrap(True)
        lay.addWidget(intro)
        # Presets: choosing one fills the fields below (saved with the chat on Save).
        row = QHBoxLayout()
        self.preset_box = QComboBox()
        self.preset_box.setMinimumWidth(160)
        self.preset_box.activated.connect(lambda _i: self.choose_preset(self.preset_box.currentData() or ""))
        row.addWidget(self.preset_box, 1)
        self.save_as_button = QPushButton("Save as Preset…")
        self.save_as_button.clicked.connect(self._ask_save_preset)
        self.rename_button = QPushButton("Rename…")
        self.rename_button.clicked.connect(self._ask_rename)
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(self._ask_delete)
        for b in (self.save_as_button, self.rename_button, self.delete_button):
            row.addWidget(b)
        form = QFormLayout()
        form.addRow("Preset", row)
        self.default_box = QCheckBox("Start new chats from this preset")
        self.default_box.toggled.connect(self._default_toggled)
        form.addRow("", self.default_box)
        self.developer = QPlainTextEdit(options.developer or "")
        self.developer.setPlaceholderText(f"Settings: {s.developer}" if s.developer else
                                          "Instructions for this chat, e.g. “Answer in one short paragraph.”")
        self.developer.setFixedHeight(100)
        self.developer.setTabChangesFocus(True)
        form.addRow("Developer instructions", self.developer)
        self.effort = QComboBox()
        for e in EFFORTS:
            self.effort.addItem(e.capitalize(), e)
        self.effort.setCurrentIndex(max(0, self.effort.findData(effort)))
        form.addRow("Reasoning effort", self.effort)
        self.temperature = QLineEdit(_number(options.temperature))
        self.temperature.setPlaceholderText(f"{s.temperature:g} (Settings)")
        self.temperature.setToolTip(f"From {TEMPERATURE[0]:g} to {TEMPERATURE[1]:g}; gpt-oss is meant to be "
                                    "sampled at 1. Empty: the value in Settings.")
        self.top_p = QLineEdit(_number(options.top_p))
        self.top_p.setPlaceholderText(f"{s.top_p:g} (Settings)")
        self.top_p.setToolTip(f"From {TOP_P[0]:g} to {TOP_P[1]:g}. Empty: the value in Settings.")
        sampling = QHBoxLayout()
        sampling.addWidget(self.temperature)
        sampling.addWidget(QLabel("Top-p"))
        sampling.addWidget(self.top_p)
        form.addRow("Temperature", sampling)
        lay.addLayout(form)
        # Say plainly what the loaded model won't follow, rather than look broken.
        note = DEMO_NOTE if controller.is_demo else GREEDY_NOTE if controller.greedy else ""
        self.model_note = QLabel(note, objectName="Notice")
        self.model_note.setWordWrap(True)
        self.model_note.setVisible(bool(note))
        lay.addWidget(self.model_note)
        self.problem = QLabel("", objectName="Notice")   # one sentence about the last thing that went wrong
        self.problem.setWordWrap(True)
        self.problem.hide()
        lay.addWidget(self.problem)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.reset_button = buttons.addButton("Use Settings", QDialogButtonBox.ButtonRole.ResetRole)
        self.reset_button.setToolTip("Clear this chat's own values: it follows the app-wide Settings")
        self.reset_button.clicked.connect(self.clear)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.buttons = buttons
        self._fill_presets(self._preset)

    # -- the fields ------------------------------------------------------------------------
    def chosen(self) -> tuple[ChatOptions | None, str]:
        """(the options as typed, '') or (None, one sentence about the first bad field)."""
        s = self.c.settings
        temperature, problem = parse_number(self.temperature.text(), "Temperature", TEMPERATURE, s.temperature)
        if problem:
            return None, problem
        top_p, problem = parse_number(self.top_p.text(), "Top-p", TOP_P, s.top_p)
        if problem:
            return None, problem
        developer = self.developer.toPlainText().strip() or None
        options = ChatOptions(developer, temperature, top_p, self.effort.currentData())
        # Named after the preset only while it holds the preset's values (else they are the chat's own).
        saved = self._read(self.presets.preset, self._preset) if self._preset else None
        same = saved and (saved.developer, saved.temperature, saved.top_p) == (developer, temperature, top_p)
        return replace(options, preset=self._preset if same else ""), ""

    def show_options(self, options: ChatOptions) -> None:
        self.developer.setPlainText(options.developer or "")
        self.temperature.setText(_number(options.temperature))
        self.top_p.setText(_number(options.top_p))
        if options.effort:
            self.effort.setCurrentIndex(max(0, self.effort.findData(options.effort)))

    def clear(self) -> None:
        """Back to the app-wide settings (saved with the chat on Save)."""
        self._preset = ""
        self.show_options(ChatOptions())
        self._fill_presets("")

    def accept(self) -> None:
        options, problem = self.chosen()
        if problem:   # the dialog stays open with everything typed
            self.say(problem)
            return
        super().accept()

    def say(self, sentence: str) -> None:
        self.problem.setText(sentence)
        self.problem.setVisible(bool(sentence))

    # -- presets ---------------------------------------------------------------------------
    def choose_preset(self, name: str) -> None:
        """Fill the fields from the preset `name` ('' : none, the fields stay as they are)."""
        self.say("")
        if name:
            options = self._read(self.presets.preset, name)
            if options is None:
                return
            self.show_options(options)
        self._preset = name
        self._fill_presets(name)

    def save_preset(self, name: str, replace_existing: bool = False) -> str:
        """Save the fields as preset `name` (a new one unless `replace_existing`); '' when done, else the
        sentence shown."""
        options, problem = self.chosen()
        if not problem:
            try:
                self._preset = self.presets.save_preset(name, options, replace_existing)
            except (PresetError, StoreError) as e:
                problem = str(e)
        self.say(problem)
        if not problem:
            self._fill_presets(self._preset)
        return problem

    def rename_preset(self, new: str) -> str:
        problem = ""
        try:
            self._preset = self.presets.rename_preset(self._preset, new)
        except (PresetError, StoreError) as e:
            problem = str(e)
        self.say(problem)
        self._fill_presets(self._preset)
        return problem

    def delete_preset(self) -> None:
        """Delete the chosen preset; the fields keep its values (Save keeps them as the chat's own)."""
        if self._preset and self._read(self.presets.delete_preset, self._preset) is not None:
            self._preset = ""
        self._fill_presets(self._preset)

    def _fill_presets(self, current: str) -> None:
        names = self._read(self.presets.presets) or []
        self.preset_box.blockSignals(True)
        self.preset_box.clear()
        self.preset_box.addItem(NO_PRESET, "")
        for n in names:
            self.preset_box.addItem(n, n)
        self.preset_box.setCurrentIndex(max(0, self.preset_box.findData(current)))
        self.preset_box.blockSignals(False)
        chosen = bool(self.preset_box.currentData())
        self.rename_button.setEnabled(chosen)
        self.delete_button.setEnabled(chosen)
        self.default_box.setEnabled(chosen)
        default = self._read(self.presets.default_preset) or ""
        self.default_box.blockSignals(True)
        self.default_box.setChecked(chosen and default.casefold() == current.casefold())
        self.default_box.blockSignals(False)
        self.default_box.setToolTip(f"New chats start from “{default}”." if default else
                                    "New chats start from the app-wide Settings.")

    def _default_toggled(self, on: bool) -> None:
        name = self.preset_box.currentData() or ""
        self._read(self.presets.set_default_preset, name if on else "")

    def _read(self, call, *args):
        """A history read or write; None and the sentence shown when it fails."""
        try:
            result = call(*args)
            return True if result is None else result
        except StoreError as e:
            self.say(str(e))
            return None

    def _ask_save_preset(self) -> None:
        name, ok = QInputDialog.getText(self, "Save as Preset", "Name of the preset:",
                                        text=self._preset or "")
        if not ok:
            return
        taken = self._read(self.presets.find, name)
        if isinstance(taken, str) and taken:   # the same name again: update that preset, once confirmed
            answer = QMessageBox.question(self, "Save as Preset", f"Replace the preset “{taken}” with these values?")
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.save_preset(name, replace_existing=bool(taken))

    def _ask_rename(self) -> None:
        name, ok = QInputDialog.getText(self, "Rename Preset", "New name:", text=self._preset)
        if ok:
            self.rename_preset(name)

    def _ask_delete(self) -> None:
        answer = QMessageBox.question(self, "Delete Preset", f"Delete the preset “{self._preset}”? Chats that use "
                                      "it keep their values.")
        if answer == QMessageBox.StandardButton.Yes:
            self.delete_preset()


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"
