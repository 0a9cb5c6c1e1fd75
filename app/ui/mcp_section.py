"""Settings' "MCP tool servers": the user's servers (from mcp.json), on or off in this chat,
Add (a name and its mcp.json entry), Remove, Import (another app's mcp.json or Claude Desktop's
config). Changes apply at once, like the Local API switch. Secret values (env, headers) are never
shown: each server is its command or URL with them hidden. `mcp` is app.mcp.service.McpService.
"""
from __future__ import annotations

import json

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QListWidget, QListWidgetItem, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget)

from app.qt_compat import emit

ENTRY_EXAMPLE = '{\n  "command": "npx",\n  "args": ["-y", "@modelcontextprotocol/server-filesystem", "~/Documents"]\n}'


class McpServerDialog(QDialog):
    """Add one server: its name and its mcp.json entry (stdio command or streamable HTTP url)."""

    def __init__(self, mcp, parent=None):
        super().__init__(parent)
        self.mcp = mcp
        self.setWindowTitle("Add MCP server")
        self.setMinimumWidth(480)
        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.name = QLineEdit()
        self.name.setPlaceholderText("files")
        form.addRow("Name", self.name)
        self.entry = QPlainTextEdit()
        self.entry.setPlaceholderText(ENTRY_EXAMPLE)
        self.entry.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.entry.setMinimumHeight(140)
        form.addRow("Server\n(as in mcp.json)", self.entry)
        lay.addLayout(form)
        hint = QLabel('{"command", "args", "env"} starts a program on this computer; {"url", "headers"} connects '
                      "to a streamable HTTP server. Values in env and headers are kept in mcp.json and never shown.",
                      objectName="Caption")
        hint.setWordWrap(True)
        lay.addWidget(hint)
        self.error = QLabel("", objectName="Notice")
        self.error.setWordWrap(True)
        self.error.hide()
        lay.addWidget(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.save_button = buttons.button(QDialogButtonBox.StandardButton.Save)
        lay.addWidget(buttons)

    def accept(self) -> None:
        text = self.entry.toPlainText().strip()
        try:
            entry = json.loads(text) if text else None
        except json.JSONDecodeError as e:
            self._say(f"The server is not valid JSON ({e.msg}, line {e.lineno} column {e.colno}).")
            return
        if isinstance(entry, dict) and isinstance(entry.get("mcpServers"), dict) and len(entry["mcpServers"]) == 1:
            (name, entry), = entry["mcpServers"].items()    # a whole snippet pasted from a server's README
            if not self.name.text().strip():
                self.name.setText(name)
        problem = self.mcp.add(self.name.text(), entry)
        if problem:
            self._say(problem)
            return          # stays open: nothing typed is lost
        super().accept()

    def _say(self, text: str) -> None:
        self.error.setText(self.mcp.redact(text))
        self.error.show()


def listing_text(name: str, listing) -> str:
    """What ticking a server shows once it answered: its tools, or why not."""
    if listing.problems:
        return " ".join(listing.problems)
    names = [t.tool for t in listing.tools]
    shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    return f"{name}: {len(names)} tool{'s' if len(names) != 1 else ''}" + (f" ({shown})." if names else ".")


class McpSection(QWidget):
    listed = Signal(str, object)      # server name, Listing (from the MCP thread to this one)

    def __init__(self, mcp, conversation_id: int | None = None, parent=None):
        super().__init__(parent)
        self.mcp, self.conversation_id = mcp, conversation_id
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("MCP tool servers", objectName="Title"))
        about = QLabel("Programs and services that give the model tools: files, calendars, issue trackers. "
                       "Tick a server to let " + ("this chat" if conversation_id is not None else "new chats")
                       + " use it; each tool asks you before it runs. They are kept in mcp.json, in the format "
                       "LM Studio and Claude Desktop use. The local API does not offer them to its clients.",
                       objectName="Caption")
        about.setWordWrap(True)
        lay.addWidget(about)
        self.list = QListWidget()
        self.list.setMaximumHeight(130)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)     # long commands: the tooltip has it all
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.itemChanged.connect(self._ticked)
        self.listed.connect(self._show_listing)
        lay.addWidget(self.list)
        row = QHBoxLayout()
        self.add_button = QPushButton("Add…")
        self.remove_button = QPushButton("Remove")
        self.import_button = QPushButton("Import…")
        self.import_button.setToolTip("Servers from another app's mcp.json or claude_desktop_config.json")
        self.add_button.clicked.connect(self.add_server)
        self.remove_button.clicked.connect(self.remove_selected)
        self.import_button.clicked.connect(self.choose_import)
        for b in (self.add_button, self.remove_button, self.import_button):
            row.addWidget(b)
        row.addStretch(1)
        lay.addLayout(row)
        self.status = QLabel("", objectName="Caption")     # what a server answered: its tools
        self.status.setWordWrap(True)
        self.status.hide()
        lay.addWidget(self.status)
        self.note = QLabel("", objectName="Notice")        # what went wrong
        self.note.setWordWrap(True)
        lay.addWidget(self.note)
        self.refresh()
        if self.mcp.problems:     # what was wrong in mcp.json when the app read it
            self.say(self.mcp.problems)

    def refresh(self) -> None:
        on = set(self.mcp.chat(self.conversation_id).on)
        self.list.blockSignals(True)
        self.list.clear()
        for name, server in sorted(self.mcp.servers.items()):
            off = " (off in mcp.json)" if server.disabled else ""
            item = QListWidgetItem(f"{name}{off} — {server.summary()}")
            item.setData(Qt.ItemDataRole.UserRole, name)
            item.setToolTip(server.summary())
            flags = item.flags() | Qt.ItemFlag.ItemIsUserCheckable
            item.setFlags(flags if not server.disabled else flags & ~Qt.ItemFlag.ItemIsEnabled)
            item.setCheckState(Qt.CheckState.Checked if name in on else Qt.CheckState.Unchecked)
            self.list.addItem(item)
        self.list.blockSignals(False)
        self.remove_button.setEnabled(bool(self.mcp.servers))
        if not self.mcp.servers:
            self.say(["No servers yet: Add one, or Import the servers you set up in another app."])

    def say(self, sentences) -> None:
        text = " ".join(self.mcp.redact(s) for s in sentences if s)
        self.note.setText(text)
        self.note.setVisible(bool(text))

    def _ticked(self, item: QListWidgetItem) -> None:
        name = item.data(Qt.ItemDataRole.UserRole)
        on = item.checkState() == Qt.CheckState.Checked
        self.mcp.set_on(self.conversation_id, name, on)
        if on:      # start it now (in the background): its tools or its problem show here
            self.say([])
            self.tell(f"Starting {name}…")
            self.mcp.manager.list_tools([name]).add_done_callback(lambda f: self._listed_elsewhere(name, f))

    def _listed_elsewhere(self, name: str, future) -> None:
        try:
            emit(self.listed, name, future.result())
        except RuntimeError:        # the dialog was closed meanwhile
            pass

    def _show_listing(self, name: str, listing) -> None:
        if listing.problems:
            self.tell("")
            self.say(listing.problems)
        else:
            self.tell(listing_text(name, listing))

    def tell(self, text: str) -> None:
        self.status.setText(text)
        self.status.setVisible(bool(text))

    def item(self, name: str) -> QListWidgetItem | None:
        return next((self.list.item(i) for i in range(self.list.count())
                     if self.list.item(i).data(Qt.ItemDataRole.UserRole) == name), None)

    def add_server(self) -> None:
        dialog = McpServerDialog(self.mcp, self)
        if dialog.exec():
            self.say([])
            self.refresh()

    def remove_selected(self) -> None:
        item = self.list.currentItem()
        if item is None:
            self.say(["Select a server to remove."])
            return
        self.say([self.mcp.remove(item.data(Qt.ItemDataRole.UserRole))])
        self.refresh()

    def choose_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import MCP servers", "", "JSON files (*.json);;All files (*)")
        if path:
            self.import_from(path)

    def import_from(self, path: str) -> None:
        notes = self.mcp.import_file(path)
        self.refresh()
        self.say(notes)
