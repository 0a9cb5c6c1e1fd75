"""The per-chat switch for the library: "Sources" on lets the model browse what the user added
(app/library_sources.py), off keeps this chat to the model alone. Hidden until the library has a
source. Lives in the chat's header bar."""
from __future__ import annotations

from PySide6.QtWidgets import QCheckBox


class ChatSourcesSwitch(QCheckBox):
    def __init__(self, controller, parent=None):
        super().__init__("Library", parent)
        self.c = controller
        self.setObjectName("ChatSources")
        self.toggled.connect(self._toggled)
        controller.current_changed.connect(lambda _id: self.refresh())
        controller.settings_changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        lib = self.c.library
        self.setVisible(lib.has_sources(self.c.current_id))
        self.blockSignals(True)
        self.setChecked(lib.on_for(self.c.current_id))
        self.blockSignals(False)
        names = ", ".join(lib.folders + lib.zims + (["files dropped on this chat"] if lib.has_sources(self.c.current_id)
                                                    and lib.empty else []))
        self.setToolTip(f"The model may search and read your library in this chat: {names}" if names else "")

    def _toggled(self, on: bool) -> None:
        if self.c.current_id == -1:
            self.c.new_conversation()
        self.c.set_browser_on(self.c.current_id, on)
