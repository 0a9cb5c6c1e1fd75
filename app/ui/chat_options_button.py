"""The open chat's way into its own settings: the "Chat settings" button at the left of the
composer's tools, and the Chat menu's Apply Preset. The button reads "Preset: <name>" or "This chat's
own settings" (in the accent colour, its tooltip listing them) when the chat differs from Settings,
so a chat that behaves differently says why. app/ui/chat_options.py is the dialog it opens.
"""
from __future__ import annotations

from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QMessageBox, QToolButton

from app.chat_options import ChatOptions
from app.store import StoreError
from app.ui.chat_options import ChatOptionsDialog
from app.ui.theme import current_colors


def describe(options: ChatOptions, settings) -> str:
    """What the chat has of its own, for the button's tooltip ('' when nothing)."""
    parts = []
    if options.developer is not None:
        parts.append("its own developer instructions")
    if options.temperature is not None:
        parts.append(f"temperature {options.temperature:g} (Settings: {settings.temperature:g})")
    if options.top_p is not None:
        parts.append(f"top-p {options.top_p:g} (Settings: {settings.top_p:g})")
    if not parts:
        return ""
    source = f" from the preset “{options.preset}”" if options.preset else ""
    return f"This chat uses{source} " + ", ".join(parts) + "."


class ChatOptionsButton(QToolButton):
    """The way into the open chat's settings (beside the composer); shows when the chat has its own."""

    def __init__(self, controller, effort_slider=None, parent=None):
        super().__init__(parent)
        self.c = controller
        self.effort_slider = effort_slider
        self.setObjectName("ChatOptions")
        self.clicked.connect(self.open_dialog)
        controller.current_changed.connect(lambda _id: self.refresh())
        controller.settings_changed.connect(self.refresh)
        self.refresh()

    def options(self) -> ChatOptions:
        if self.c.current_id == -1:
            return ChatOptions()
        try:
            return self.c.chat_options.get(self.c.current_id)
        except StoreError:
            return ChatOptions()

    def refresh(self) -> None:
        options = self.options()
        own = options.own
        name = options.preset if len(options.preset) <= 20 else options.preset[:19] + "…"
        text = f"Preset: {name}" if own and options.preset else "This chat's own settings" if own else "Chat settings"
        self.setText("⚙ " + text)
        why = describe(options, self.c.settings)
        self.setToolTip((why + " " if why else "") + "Instructions, effort and temperature for this chat, "
                        "and presets.")
        self.setStyleSheet(f"QToolButton#ChatOptions {{ color: {current_colors().accent}; font-weight: 600; }}"
                           if own else "")

    def follow_editing(self, banner) -> None:
        """Step aside while the composer edits the last message: its banner needs the row's room."""
        banner.installEventFilter(self)

    def eventFilter(self, obj, e) -> bool:
        if e.type() in (QEvent.Type.Show, QEvent.Type.Hide):
            self.setVisible(e.type() == QEvent.Type.Hide)
        return super().eventFilter(obj, e)

    def open_dialog(self) -> ChatOptionsDialog:
        """Open the dialog (modal); its result is saved for the open chat. Returns it (tests)."""
        dialog = self.make_dialog()
        try:
            if dialog.exec():
                self.save(dialog)
        finally:
            dialog.deleteLater()
        return dialog

    def make_dialog(self) -> ChatOptionsDialog:
        return ChatOptionsDialog(self.c, self.options(), self.c.effort, self.window())

    def save(self, dialog: ChatOptionsDialog) -> bool:
        """Keep the dialog's values for the open chat (a new chat is made for them if none is open)."""
        options, problem = dialog.chosen()
        return not problem and self.give(options)

    def apply_preset(self, name: str) -> bool:
        """The Chat menu's Apply Preset: the preset's values for the open chat ('' : back to Settings)."""
        try:
            options = self.c.chat_options.preset(name) if name else ChatOptions()
        except StoreError as e:
            QMessageBox.warning(self, "Chat Settings", str(e))
            return False
        return self.give(options)

    def give(self, options: ChatOptions) -> bool:
        """Make `options` the open chat's, its effort included; False (said in a box) if it can't be saved."""
        if self.c.current_id == -1:
            self.c.new_conversation()
        try:
            self.c.chat_options.set(self.c.current_id, options)
        except StoreError as e:
            QMessageBox.warning(self, "Chat Settings", str(e))
            return False
        if options.effort and options.effort != self.c.effort:
            self.c.set_effort(options.effort)
            if self.effort_slider is not None:
                self.effort_slider.set_effort(options.effort)
        self.refresh()
        return True


def add_presets_menu(menu, button: "ChatOptionsButton"):
    """"Apply Preset" under the Chat menu: the saved presets (the chat's own ticked) and a way back to Settings."""
    sub = menu.addMenu("Apply Preset")

    def fill() -> None:
        sub.clear()
        try:
            names = button.c.chat_options.presets()
        except StoreError:
            names = []
        current = button.options().preset
        for name in names:
            action = sub.addAction(name, lambda n=name: button.apply_preset(n))
            action.setCheckable(True)
            action.setChecked(name == current)
        if not names:
            sub.addAction("No presets yet: save one in Chat Settings…").setEnabled(False)
        sub.addSeparator()
        sub.addAction("Use Settings (no values of its own)", lambda: button.apply_preset(""))
    sub.aboutToShow.connect(fill)
    return sub
