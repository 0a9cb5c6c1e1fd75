"""The list of conversations: new, rename (double-click or menu), delete with Undo, search."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QMenu, QPushButton,
                               QStyledItemDelegate, QVBoxLayout, QWidget)

from app.qt_compat import emit

IdRole = Qt.ItemDataRole.UserRole
WIDTH = 230    # fixed: a long chat title is elided, it never pushes the chat aside


class _RenameDelegate(QStyledItemDelegate):
    """The inline rename editor takes the whole row (the style sheet's item padding would leave it a
    sliver a few pixels tall), with a small padding of its own."""

    def createEditor(self, parent, option, index):
        editor = super().createEditor(parent, option, index)
        editor.setObjectName("RenameEditor")
        return editor

    def updateEditorGeometry(self, editor, option, index) -> None:
        rect = option.rect.adjusted(4, 0, -4, 0)
        need = editor.fontMetrics().height() + 10
        if rect.height() < need:
            rect.setTop(rect.center().y() - need // 2)
            rect.setHeight(need)
        editor.setGeometry(rect)


class ChatList(QListWidget):
    """A right-click shows the chat's menu without opening the chat (it opened it under the menu)."""

    def mousePressEvent(self, e) -> None:
        if e.button() == Qt.MouseButton.RightButton:
            e.accept()
            return
        super().mousePressEvent(e)


class Sidebar(QWidget):
    new_requested = Signal()
    open_requested = Signal(int)
    rename_requested = Signal(int, str)
    delete_requested = Signal(int)
    undo_requested = Signal()
    search_changed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("Sidebar")
        self.setFixedWidth(WIDTH)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 12, 10, 10)
        lay.setSpacing(8)
        self.new_button = QPushButton("+  New chat")
        shortcut = QKeySequence(QKeySequence.StandardKey.New).toString(QKeySequence.SequenceFormat.NativeText)
        self.new_button.setToolTip(f"New chat ({shortcut})")   # ⌘N on macOS, Ctrl+N elsewhere
        self.new_button.clicked.connect(lambda: emit(self.new_requested))
        self.search = QLineEdit(placeholderText="Search chats")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(lambda t: emit(self.search_changed, t))
        self.list = ChatList()
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setUniformItemSizes(True)
        self.list.setItemDelegate(_RenameDelegate(self.list))
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.itemSelectionChanged.connect(self._selected)
        self.list.itemChanged.connect(self._renamed)
        # Delete (or Backspace, the Mac's delete key) on the selected chat: deleted, with Undo.
        for key in (QKeySequence.StandardKey.Delete, QKeySequence(Qt.Key.Key_Backspace)):
            QShortcut(key, self.list, self._delete_current, context=Qt.ShortcutContext.WidgetShortcut)
        self.empty = QLabel("No chats yet.", objectName="Muted", alignment=Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.undo_bar = QWidget(objectName="UndoBar")
        ub = QHBoxLayout(self.undo_bar)
        ub.setContentsMargins(10, 4, 4, 4)
        ub.addWidget(QLabel("Chat deleted."))
        ub.addStretch(1)
        self.undo_button = QPushButton("Undo")
        self.undo_button.clicked.connect(self._undo)
        ub.addWidget(self.undo_button)
        self.undo_bar.hide()
        self._undo_timer = QTimer(self, singleShot=True, interval=10000)
        self._undo_timer.timeout.connect(self.undo_bar.hide)
        lay.addWidget(self.new_button)
        lay.addWidget(self.search)
        lay.addWidget(self.empty)
        lay.addWidget(self.list, 1)
        lay.addWidget(self.undo_bar)
        self._filling = False

    def set_conversations(self, conversations, current_id: int) -> None:
        """Show `conversations` (newest first) and select `current_id` without emitting open."""
        self._filling = True
        self.list.clear()
        for conv in conversations:
            item = QListWidgetItem(conv.title)
            item.setData(IdRole, conv.id)
            item.setToolTip(conv.title)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            self.list.addItem(item)
            if conv.id == current_id:
                item.setSelected(True)
                self.list.setCurrentItem(item)
        query = self.search.text().strip()
        self.empty.setText(f"No chats match “{query}”." if query else "No chats yet.")
        self.empty.setVisible(self.list.count() == 0)
        self._filling = False

    def item_for(self, conversation_id: int) -> QListWidgetItem | None:
        for i in range(self.list.count()):
            if self.list.item(i).data(IdRole) == conversation_id:
                return self.list.item(i)
        return None

    def _selected(self) -> None:
        items = self.list.selectedItems()
        if items and not self._filling:
            emit(self.open_requested, int(items[0].data(IdRole)))

    def _renamed(self, item: QListWidgetItem) -> None:
        if not self._filling:
            emit(self.rename_requested, int(item.data(IdRole)), item.text())

    def _menu(self, pos) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        menu = QMenu(self)
        menu.addAction("Rename", lambda: self.list.editItem(item))
        menu.addAction("Delete", lambda: self.delete(int(item.data(IdRole))))
        menu.exec(self.list.mapToGlobal(pos))

    def _delete_current(self) -> None:
        item = self.list.currentItem()
        if item is not None and self.list.state() != QListWidget.State.EditingState:
            self.delete(int(item.data(IdRole)))

    def delete(self, conversation_id: int) -> None:
        """Delete at once and offer Undo for ten seconds."""
        emit(self.delete_requested, conversation_id)
        self.undo_bar.show()
        self._undo_timer.start()

    def _undo(self) -> None:
        self.undo_bar.hide()
        emit(self.undo_requested)
