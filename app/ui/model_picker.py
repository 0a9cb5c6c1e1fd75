"""The model picker in the window: the model's name in the header is a button that opens the Models
sheet (also Model ▸ Choose Model…, Ctrl+L), which lists the models on this computer with their
memory plans, marks the one in use, and loads, unloads, adds and removes them (app/model_picker.py
holds the logic). A step that would stop an answer or unload the model first says so and waits for
a second click on the same button: nothing happens behind the user's back."""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QDialog, QFileDialog, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                               QPushButton, QSizePolicy, QToolButton, QVBoxLayout, QWidget)

from app.model_picker import BUSY, ModelChoice, ModelPicker
from app.ui.theme import current_colors
from models.registry import GPT_OSS_20B

NO_MODEL = "No model loaded"
SHORTCUT = "Ctrl+L"      # ⌘L on macOS, as in other local-model apps


def shortcut_text() -> str:
    """The shortcut as this platform writes it (⌘L on a Mac)."""
    return QKeySequence(SHORTCUT).toString(QKeySequence.SequenceFormat.NativeText)


def how_to_load() -> str:
    return (f"No model is loaded. Choose one with the model button at the top of the chat, or "
            f"Model ▸ Choose Model… ({shortcut_text()}); your chats are all still here.")


class ModelButton(QToolButton):
    """The header's model name, elided to fit, with a ▾: a click opens the Models sheet."""

    def __init__(self, parent=None):
        super().__init__(parent, objectName="ModelButton")
        self._full = ""
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.set_full_text(NO_MODEL)

    def set_full_text(self, text: str) -> None:
        self._full = text
        self.setToolTip(f"{text}: choose, load or unload a model ({shortcut_text()})")
        self.updateGeometry()   # its size hint follows the name
        self._elide()

    def full_text(self) -> str:
        return self._full

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()
        # 4 px slack: the name and " ▾" measured apart (as _elide does) can add up wider.
        width = self.fontMetrics().horizontalAdvance(self._full + " ▾") + 20
        return QSize(min(width, 280), hint.height())   # a long name gives way: the splitter shares by hints

    def minimumSizeHint(self) -> QSize:
        return QSize(90, super().minimumSizeHint().height())

    def resizeEvent(self, e) -> None:
        super().resizeEvent(e)
        self._elide()

    def _elide(self) -> None:
        room = max(20, self.width() - 16 - self.fontMetrics().horizontalAdvance(" ▾"))
        self.setText(self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, room) + " ▾")


class ModelRow(QWidget):
    """One model: its name (and "In use"), then its memory plan or why it can't be used."""

    def __init__(self, choice: ModelChoice, current: bool, parent=None):
        super().__init__(parent)
        v = QVBoxLayout(self)
        v.setContentsMargins(10, 6, 10, 6)
        v.setSpacing(2)
        top = QHBoxLayout()
        self.name = QLabel(choice.name)
        self.name.setStyleSheet("font-weight: 600;")
        top.addWidget(self.name)
        self.mark = QLabel("✓ In use", objectName="Caption")
        self.mark.setVisible(current)
        top.addStretch(1)
        top.addWidget(self.mark)
        v.addLayout(top)
        self.detail = QLabel(choice.problem or choice.plan, objectName="Notice" if choice.problem or not choice.fits
                             else "Caption")
        self.detail.setWordWrap(True)
        v.addWidget(self.detail)
        self.setToolTip(choice.folder)


class ModelPickerDialog(QDialog):
    """The Models sheet. Stays open while a model loads and closes once it is in use."""

    def __init__(self, picker: ModelPicker, download=None, parent=None):
        super().__init__(parent)
        self.picker, self.download = picker, download
        self.setWindowTitle("Models")
        self.setObjectName("ModelPicker")
        self.setMinimumWidth(520)
        self.resize(640, 400)
        self._armed = ""          # the button whose second click confirms what the notice says
        self._after_stop = None   # what to do once the answers being written have stopped
        v = QVBoxLayout(self)
        v.setSpacing(10)
        v.addWidget(QLabel("Models", objectName="Headline"))
        about = QLabel("The models on this computer and how each fits in memory. The one in use answers in the "
                       "chat window and in the local API.", objectName="Caption")
        about.setWordWrap(True)
        v.addWidget(about)
        self.list = QListWidget(objectName="ModelList")
        self.list.setSpacing(2)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.currentRowChanged.connect(lambda _r: self._selection_changed())
        self.list.itemDoubleClicked.connect(lambda _i: self.load_selected())
        v.addWidget(self.list, 1)
        self.notice = QLabel(objectName="Caption")
        self.notice.setWordWrap(True)
        self.notice.hide()
        v.addWidget(self.notice)
        row = QHBoxLayout()
        self.add_button = QPushButton("Add Folder…")
        self.add_button.clicked.connect(self._ask_folder)
        self.add_button.setToolTip("A folder that holds a gpt-oss model (config.json, model-*.safetensors, "
                                   "tokenizer.json)")
        self.download_button = QPushButton(f"Download {GPT_OSS_20B.label}…")
        self.download_button.clicked.connect(self._download)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Take this folder off the list; its files stay where they are")
        self.remove_button.clicked.connect(self.remove_selected)
        self.unload_button = QPushButton("Unload")
        self.unload_button.clicked.connect(self.unload)
        self.load_button = QPushButton("Load", objectName="Primary")
        self.load_button.setDefault(True)
        self.load_button.clicked.connect(self.load_selected)
        for b in (self.add_button, self.download_button):
            row.addWidget(b)
        row.addSpacing(16)
        row.addStretch(1)
        for b in (self.remove_button, self.unload_button, self.load_button):
            row.addWidget(b)
        for b in (self.add_button, self.download_button, self.remove_button, self.unload_button):
            b.setMinimumWidth(b.sizeHint().width())   # never cut a button's words
        self.load_button.setMinimumWidth(QPushButton("Unload and Load").sizeHint().width())
        v.addLayout(row)
        colors = current_colors()   # a quiet selection: the plan's grey line stays readable on it
        self.list.setStyleSheet(f"QListWidget#ModelList::item:selected {{ background: {colors.user_bubble}; "
                                f"border-radius: 6px; }} QListWidget#ModelList::item {{ border-radius: 6px; }}")
        picker.changed.connect(self.refresh)
        self._switched = False    # a switch started here: the sheet closes once it is done
        picker.switching.connect(self._on_switching)
        picker.notice.connect(self._on_notice)
        picker.c.busy_changed.connect(self._busy_changed)
        picker.ensure_budget()
        self.refresh()

    # -- what the sheet shows ------------------------------------------------------------
    def refresh(self) -> None:
        selected = self.selected_folder() or self.picker.c.folder
        self.choices = self.picker.choices()
        self.list.clear()
        for choice in self.choices:
            item = QListWidgetItem()
            item.setData(Qt.ItemDataRole.UserRole, choice.folder)
            row = ModelRow(choice, self.picker.is_current(choice.folder))
            self.list.addItem(item)
            self.list.setItemWidget(item, row)
            item.setSizeHint(QSize(0, self._row_height(row)))
        folders = [c.folder for c in self.choices]
        from app.model_picker import same_folder
        pick = next((i for i, f in enumerate(folders) if selected and same_folder(f, selected)), 0)
        self.list.setCurrentRow(pick)
        self.download_button.setVisible(self.download is not None and not self.picker.twenty_b_installed())
        self._selection_changed()
        if self._switched and self.picker.c.ready and not self.picker.pending:
            self._switched = False
            self.accept()          # the switch is done: back to the chat

    def _on_switching(self, name: str) -> None:
        self._switched = True
        self.say(f"Loading {name}…")

    def _on_notice(self, text: str) -> None:
        self._switched = False     # it failed: the sheet stays open with the sentence
        self.say(text, warn=True)

    def _row_height(self, row: ModelRow) -> int:
        """The row's height at the list's width, its sentence wrapped (a size hint assumes no width)."""
        width = max(200, self.list.viewport().width() - 2 * self.list.spacing())
        return max(row.minimumSizeHint().height(), row.heightForWidth(width))

    def resizeEvent(self, e) -> None:
        super().resizeEvent(e)
        for i in range(self.list.count()):
            item = self.list.item(i)
            row = self.list.itemWidget(item)
            if row is not None:
                item.setSizeHint(QSize(0, self._row_height(row)))

    def selected_folder(self) -> str:
        item = self.list.currentItem() if hasattr(self, "list") else None
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else ""

    def selected(self) -> ModelChoice | None:
        folder = self.selected_folder()
        return next((c for c in self.choices if c.folder == folder), None)

    def say(self, text: str, warn: bool = False) -> None:
        self.notice.setText(text)
        self.notice.setObjectName("Notice" if warn else "Caption")
        self.notice.style().unpolish(self.notice)
        self.notice.style().polish(self.notice)
        self.notice.setVisible(bool(text))

    def _disarm(self) -> None:
        self._armed = ""
        self.load_button.setText("Load")
        self.unload_button.setText("Unload")

    def _selection_changed(self) -> None:
        self._disarm()
        choice, p = self.selected(), self.picker
        loading = bool(p.pending)
        self.load_button.setEnabled(not loading and choice is not None and choice.usable
                                    and not p.is_current(choice.folder))
        self.unload_button.setEnabled(not loading and p.c.ready)
        self.remove_button.setVisible(choice is not None and choice.added)
        self.remove_button.setEnabled(choice is not None and not p.is_current(choice.folder))
        self.add_button.setEnabled(not loading)
        if choice is not None and choice.problem and not loading:
            self.say("")   # the row itself says why
        elif choice is not None and not loading and not self.notice.objectName() == "Notice":
            self.say("")

    # -- what the buttons do -------------------------------------------------------------
    def load_selected(self) -> None:
        choice = self.selected()
        if choice is None or not self.load_button.isEnabled():
            return
        p = self.picker
        if self._armed != "load":
            warning = ("An answer is being written; it is stopped first (what it wrote is kept)."
                       if p.c.busy else p.what_happens(choice))
            if warning:
                self.say(warning)
                self._armed = "load"
                self.load_button.setText("Stop and Load" if p.c.busy else "Unload and Load")
                return
        self._disarm()
        if p.c.busy:
            self._after_stop = lambda: self._switch(choice.folder)
            p.stop_answers()
            return
        self._switch(choice.folder)

    def _switch(self, folder: str) -> None:
        why = self.picker.switch_to(folder)
        if why == BUSY:      # a new answer started meanwhile: ask again
            self.load_selected()
        elif why:
            self.say(why, warn=True)
        self._selection_changed()

    def unload(self) -> None:
        p = self.picker
        if p.c.busy and self._armed != "unload":
            self.say("An answer is being written; it is stopped first (what it wrote is kept).")
            self._armed = "unload"
            self.unload_button.setText("Stop and Unload")
            return
        self._disarm()
        p.unload()
        self.say("")

    def remove_selected(self) -> None:
        choice = self.selected()
        if choice is not None:
            why = self.picker.remove_folder(choice.folder)
            self.say(why, warn=True)

    def add_folder(self, folder: str) -> None:
        """Add `folder` to the list and select it (Load then uses it); a broken one is not added."""
        why = self.picker.add_folder(folder)
        if why:
            self.say(why, warn=True)
            return
        for i in range(self.list.count()):
            from app.model_picker import same_folder
            if same_folder(self.list.item(i).data(Qt.ItemDataRole.UserRole), folder):
                self.list.setCurrentRow(i)
        self.say("Added. Press Load to use it.")

    def _ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder with a gpt-oss model")
        if folder:
            self.add_folder(folder)

    def _download(self) -> None:
        self.accept()
        self.download()

    def _busy_changed(self, busy: bool) -> None:
        if not busy and self._after_stop is not None:
            then, self._after_stop = self._after_stop, None
            then()


class ModelPickerUi:
    """Installs the picker in the main window: the header button, the Model menu, and what the window
    says while a model loads or when none is loaded."""

    def __init__(self, window):
        self.w = window
        self.picker = ModelPicker(window.c, window)
        self.dialog: ModelPickerDialog | None = None
        window.model_badge.clicked.connect(self.open)
        menu = window.menuBar().addMenu("&Model")
        self.choose_action = QAction("Choose Model…", window, shortcut=QKeySequence(SHORTCUT))
        self.choose_action.triggered.connect(self.open)
        window.addAction(self.choose_action)
        self.unload_action = QAction("Unload Model", window)
        self.unload_action.triggered.connect(self.picker.unload)
        self.add_action = QAction("Add a Model Folder…", window)
        self.add_action.triggered.connect(lambda: self.open()._ask_folder())
        self.download_action = QAction(f"Download {GPT_OSS_20B.label}…", window)
        self.download_action.triggered.connect(self.download)
        for a in (self.choose_action, self.unload_action):
            menu.addAction(a)
        menu.addSeparator()
        for a in (self.add_action, self.download_action):
            menu.addAction(a)
        menu.aboutToShow.connect(lambda: self.unload_action.setEnabled(window.c.ready))
        self.picker.switching.connect(self._switching)
        self.picker.unloaded.connect(self._unloaded)
        self.picker.notice.connect(self._notice)

    def open(self) -> ModelPickerDialog:
        """Show the Models sheet (one at a time) and return it."""
        if self.dialog is None:
            self.dialog = ModelPickerDialog(self.picker, self.download, self.w)
            self.dialog.finished.connect(self._closed)
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()
        return self.dialog

    def _closed(self, _result: int) -> None:
        dialog, self.dialog = self.dialog, None
        if dialog is not None:   # its connections to the picker go with it
            dialog.deleteLater()

    def download(self) -> None:
        """The setup page with the 20b's download (the launcher answers the header's download button)."""
        self.w.get_model_button.click()

    def _switching(self, name: str) -> None:
        self.w.status_model.setText(f"Loading {name}…")
        self.w.model_badge.set_full_text(f"Loading {name}…")
        self.w._update_composer()

    def _notice(self, text: str) -> None:
        """Said in the sheet when it is open; otherwise in the status bar for a while."""
        if self.w.stack.currentWidget() is self.w.setup:   # a folder chosen on the setup page
            self.w.setup.show_message(text)
        elif self.dialog is None:
            self.w.statusBar().showMessage(text, 20000)
        w, c = self.w, self.w.c
        if c.ready:
            w.status_model.setText(c.model_name)
            w.model_badge.set_full_text(c.model_name)
        w._update_composer()

    def _unloaded(self) -> None:
        w = self.w
        w.status_model.setText(f"{NO_MODEL} · {shortcut_text()} to choose one")
        w.model_badge.set_full_text(NO_MODEL)
        w.get_model_button.hide()
        w._fit_header()
        w.messages.set_placeholder(how_to_load())
        w.messages.set_examples([])
        w.status_memory.setText("")
        w._update_composer()
