"""Settings > Developer > Functions: the developer's own functions (name, description, JSON
Schema of the arguments). The model may call them; the user then types each call's result by hand.
A function is checked when saved (app/user_functions.py): a bad schema is one sentence under the
form and the dialog stays open with everything typed kept."""
from __future__ import annotations

import json

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QListWidget,
                               QListWidgetItem, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget)

from app.user_functions import check_function

SCHEMA_EXAMPLE = '{\n  "type": "object",\n  "properties": {\n    "city": {"type": "string"}\n  },\n  "required": ["city"]\n}'


class FunctionDialog(QDialog):
    """Add or edit one function; `function` holds the checked result after accept()."""

    def __init__(self, function: dict | None = None, taken: set[str] = frozenset(), parent=None):
        super().__init__(parent)
        self.setWindowTitle("Edit function" if function else "Add function")
        self.setMinimumWidth(460)
        self._taken = set(taken)
        self.function: dict | None = None
        function = function or {}
        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.name = QLineEdit(function.get("name", ""))
        self.name.setPlaceholderText("get_weather")
        form.addRow("Name", self.name)
        self.description = QLineEdit(function.get("description", ""))
        self.description.setPlaceholderText("What it does, for the model")
        form.addRow("Description", self.description)
        params = function.get("parameters")
        self.schema = QPlainTextEdit(json.dumps(params, indent=2) if params is not None else "")
        self.schema.setPlaceholderText(SCHEMA_EXAMPLE)
        self.schema.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.schema.setMinimumHeight(150)
        form.addRow("Arguments\n(JSON Schema)", self.schema)
        lay.addLayout(form)
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
        checked, problem = check_function(self.name.text(), self.description.text(), self.schema.toPlainText(),
                                          self._taken)
        if checked is None:
            self.error.setText(problem)
            self.error.show()
            return          # stays open: nothing typed is lost
        self.function = checked
        super().accept()


class FunctionsEditor(QWidget):
    """The list of functions with Add, Edit and Remove."""

    def __init__(self, functions: list[dict], parent=None):
        super().__init__(parent)
        self._functions = [dict(f) for f in functions or []]
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.list = QListWidget()
        self.list.setMaximumHeight(96)
        self.list.itemDoubleClicked.connect(lambda _item: self.edit())
        lay.addWidget(self.list)
        row = QHBoxLayout()
        self.add_button = QPushButton("Add…")
        self.edit_button = QPushButton("Edit…")
        self.remove_button = QPushButton("Remove")
        self.add_button.clicked.connect(self.add)
        self.edit_button.clicked.connect(self.edit)
        self.remove_button.clicked.connect(self.remove)
        for b in (self.add_button, self.edit_button, self.remove_button):
            row.addWidget(b)
        row.addStretch(1)
        lay.addLayout(row)
        self.list.currentRowChanged.connect(lambda _r: self._enable())
        self._refill()

    def functions(self) -> list[dict]:
        return [dict(f) for f in self._functions]

    def _refill(self) -> None:
        self.list.clear()
        for f in self._functions:
            item = QListWidgetItem(f"{f['name']}" + (f" — {f['description']}" if f.get("description") else ""))
            self.list.addItem(item)
        self._enable()

    def _enable(self) -> None:
        chosen = 0 <= self.list.currentRow() < len(self._functions)
        self.edit_button.setEnabled(chosen)
        self.remove_button.setEnabled(chosen)

    def dialog(self, function: dict | None = None) -> FunctionDialog:
        """The dialog for adding (None) or editing `function` (tests drive it directly)."""
        taken = {f["name"] for f in self._functions} - ({function.get("name")} if function else set())
        return FunctionDialog(function, taken, self)

    def add(self) -> None:
        d = self.dialog()
        if d.exec():
            self.add_checked(d.function)

    def add_checked(self, function: dict) -> None:
        self._functions.append(function)
        self._refill()
        self.list.setCurrentRow(len(self._functions) - 1)

    def edit(self) -> None:
        row = self.list.currentRow()
        if not 0 <= row < len(self._functions):
            return
        d = self.dialog(self._functions[row])
        if d.exec():
            self._functions[row] = d.function
            self._refill()
            self.list.setCurrentRow(row)

    def remove(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self._functions):
            del self._functions[row]
            self._refill()
