"""The main window: sidebar | header (title, model, effort) + messages + composer; a setup page
when there is no model yet; a status bar with the model name and memory in use."""
from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (QApplication, QHBoxLayout, QLabel, QMainWindow, QMessageBox, QPushButton,
                               QSizePolicy, QSplitter, QStackedWidget, QVBoxLayout, QWidget)

from app.demo_examples import ACCURACY as DEMO_ACCURACY
from app.demo_examples import EXAMPLES as DEMO_EXAMPLES

from app.store import StoreError
from app.ui.request_log_view import RequestLogView, StatusLink, status_text
from app.ui.composer import Composer
from app.ui.context_meter import ContextMeter
from app.ui.effort import DEMO_PYTHON_TIP, EFFORT_TIP, EffortSlider
from app.ui.elided_label import ElidedLabel
from app.ui.message_view import THIS_MACHINE, MessageView
from app.ui.settings_dialog import SettingsDialog
from app.ui.setup_page import SetupPage
from app.ui.sidebar import Sidebar
from app.ui.theme import current_colors, style_sheet

COMPACT_BELOW = 720     # chat pane width (px) under which the header drops its captions
DEMO_PLACEHOLDER = ("This is a tiny demo model, not gpt-oss: it only solves six kinds of small puzzles "
                    f"(sums, products, counting letters, sorting, weekdays, unit conversions), {DEMO_ACCURACY}. "
                    "Download gpt-oss-20b for real answers.")


def memory_text(n_bytes: int) -> str:
    """'Memory in use: 11.46 GB' / '... 3.4 MB'; '' when nothing is known."""
    if n_bytes <= 0:
        return ""
    if n_bytes >= 1e9:
        return f"Memory in use: {n_bytes / 1e9:.2f} GB"
    return f"Memory in use: {n_bytes / 1e6:.1f} MB"


class MainWindow(QMainWindow):
    def __init__(self, controller, size_text: str = "13.8 GB", dest_text: str = "", parent=None):
        super().__init__(parent)
        self.c = controller
        self.api_server = None    # app.api_server.LocalApiServer, set by the launcher
        self.setWindowTitle("gpt-oss chat")
        self.resize(1180, 780)
        self.setMinimumSize(760, 520)
        self._restore_geometry()
        self.stack = QStackedWidget()
        self.setCentralWidget(self.stack)
        self.setup = SetupPage(size_text, dest_text)
        self.stack.addWidget(self.setup)
        self.stack.addWidget(self._chat_page())
        self._status_bar()
        self._actions()
        self._wire()
        self.apply_theme()
        from app.ui.citation_opener import CitationOpener   # 【6†L9】 links in answers open their source
        self.citation_opener = CitationOpener(self.c.library, self)
        self.citation_opener.install()
        from app.ui.composer_drop import ComposerDrop   # files dropped on the composer: this chat's sources
        self.composer_drop = ComposerDrop(self)
        from app.ui.model_picker import ModelPickerUi
        self.model_picker = ModelPickerUi(self)
        self.refresh_conversations()
        self._update_composer()

    # -- building ------------------------------------------------------------------------
    def _chat_page(self) -> QWidget:
        split = QSplitter()
        split.setHandleWidth(1)
        split.setChildrenCollapsible(False)
        self.sidebar = Sidebar()
        split.addWidget(self.sidebar)
        pane = QWidget(objectName="ChatPane")
        v = QVBoxLayout(pane)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(0)
        header = QWidget(objectName="HeaderBar")
        h = QHBoxLayout(header)
        h.setContentsMargins(20, 10, 20, 10)
        # Title and model name give way (elided, whole text in the tooltip) before anything is cut.
        self.title = ElidedLabel("New chat", objectName="Title")
        from app.ui.model_picker import ModelButton   # the model's name opens the model picker
        self.model_badge = ModelButton()
        self.get_model_button = QPushButton("Download gpt-oss-20b…")
        self.get_model_button.setToolTip("Set up the real gpt-oss-20b: download it or choose a folder that has it")
        self.get_model_button.hide()
        self.effort = EffortSlider()
        # The model's name keeps its width while there is room; the title takes the rest.
        self.model_badge.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        h.addWidget(self.title, 1)
        h.addSpacing(10)
        h.addWidget(self.model_badge)
        h.addWidget(self.get_model_button)
        h.addSpacing(10)
        from app.ui.chat_sources import ChatSourcesSwitch   # the chat's library on/off (the browser tool)
        self.sources_switch = ChatSourcesSwitch(self.c)
        h.addWidget(self.sources_switch)
        h.addWidget(self.effort)
        self.header = header
        header.installEventFilter(self)
        v.addWidget(header)
        self.messages = MessageView(self.c.model)
        self.messages.set_show_raw(self.c.settings.show_raw_cot)
        v.addWidget(self.messages, 1)
        self.composer = Composer()
        from app.ui.chat_options_button import ChatOptionsButton   # the chat's own instructions, effort, sampling; presets
        self.chat_options_button = ChatOptionsButton(self.c, self.effort)
        self.composer.tools.insertWidget(0, self.chat_options_button)
        self.chat_options_button.follow_editing(self.composer.edit_banner)
        v.addWidget(self.composer)
        split.addWidget(pane)
        split.setStretchFactor(0, 0)     # the window's width goes to the chat, not the sidebar
        split.setStretchFactor(1, 1)
        split.setSizes([260, 920])
        self.split = split
        return split

    def _status_bar(self) -> None:
        self.status_model = QLabel("No model loaded")
        self.status_memory = QLabel("")
        self.context_meter = ContextMeter()
        self.context_meter.hide()
        self.statusBar().addWidget(self.status_model)
        self.statusBar().addPermanentWidget(self.context_meter)
        self.statusBar().addPermanentWidget(self.status_memory)
        self.statusBar().setSizeGripEnabled(False)

    def _actions(self) -> None:
        app_menu = self.menuBar().addMenu("&File")
        # Ctrl is ⌘ on macOS; spelled out because some Linux desktops bind no standard Quit key.
        self.quit_action = QAction("Quit", self, shortcut=QKeySequence("Ctrl+Q"), menuRole=QAction.MenuRole.QuitRole)
        self.quit_action.triggered.connect(self.close)     # closing the last window ends the app
        app_menu.addAction(self.quit_action)
        self.addAction(self.quit_action)
        help_menu_actions = []
        self.about_action = QAction("About gpt-oss chat", self, menuRole=QAction.MenuRole.AboutRole)
        self.about_action.triggered.connect(self.show_about)
        help_menu_actions.append(self.about_action)
        menu = self.menuBar().addMenu("&Chat")
        self.new_action = QAction("New Chat", self, shortcut=QKeySequence.StandardKey.New)
        self.new_action.triggered.connect(self.new_chat)
        self.settings_action = QAction("Settings…", self, menuRole=QAction.MenuRole.PreferencesRole)
        self.settings_action.setShortcuts([QKeySequence("Ctrl+,")])   # Ctrl is ⌘ on macOS
        self.settings_action.triggered.connect(self.open_settings)
        self.find_action = QAction("Search Chats", self, shortcut=QKeySequence.StandardKey.Find)
        self.find_action.triggered.connect(self.focus_search)
        for a in (self.new_action, self.settings_action, self.find_action):
            menu.addAction(a)
            self.addAction(a)
        menu.addAction("Chat Settings…", self.chat_options_button.open_dialog)
        from app.ui.chat_options_button import add_presets_menu
        self.presets_menu = add_presets_menu(menu, self.chat_options_button)
        menu.addSeparator()
        self.export_md_action = menu.addAction("Export Chat as Markdown…", lambda: self._ask_export("md"))
        self.export_json_action = menu.addAction("Export Chat as JSON…", lambda: self._ask_export("json"))
        self.import_action = menu.addAction("Import Chat…", self._ask_import)
        help_menu = self.menuBar().addMenu("&Help")
        for a in help_menu_actions:
            help_menu.addAction(a)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, activated=self._escape)

    def _wire(self) -> None:
        c = self.c
        self.sidebar.new_requested.connect(self.new_chat)
        self.setup.back_requested.connect(self.show_chat)
        self.sidebar.open_requested.connect(c.open_conversation)
        self.sidebar.rename_requested.connect(c.rename)
        self.sidebar.delete_requested.connect(c.delete)
        self.sidebar.undo_requested.connect(c.undo_delete)
        self.sidebar.search_changed.connect(lambda _t: self.refresh_conversations())
        self.composer.send_requested.connect(self._send)
        self.messages.example_chosen.connect(self._send_example)
        self.messages.tool_decision.connect(c.answer_tool)
        self.composer.edit_requested.connect(self._edit)
        self.composer.stop_requested.connect(c.stop)
        self.composer.regenerate_requested.connect(c.regenerate)
        self.composer.begin_edit_requested.connect(lambda: self._begin_edit_at(None))
        self.messages.edit_requested.connect(self._begin_edit_at)
        self.messages.alternative_step.connect(c.switch_alternative)
        self.effort.effort_changed.connect(c.set_effort)
        c.conversations_changed.connect(self.refresh_conversations)
        c.current_changed.connect(self._current_changed)
        c.busy_changed.connect(lambda _b: self._update_composer())
        c.model.rowsInserted.connect(lambda *_: self._update_composer())
        c.model.rowsRemoved.connect(lambda *_: self._update_composer())
        c.model.modelReset.connect(self._update_composer)
        c.model_loading.connect(lambda f: self.status_model.setText("Loading model…"))
        c.model_ready.connect(self._model_ready)
        c.model_failed.connect(self._model_failed)
        c.memory_changed.connect(lambda b: self.status_memory.setText(memory_text(int(b))))
        c.settings_changed.connect(lambda: self.messages.set_show_raw(c.settings.show_raw_cot))
        c.message_refused.connect(self.composer.take_back)

    # -- behaviour -----------------------------------------------------------------------
    def show_setup(self, message: str = "") -> None:
        self.setup.show_message(message)
        self.setup.back_button.setVisible(self.c.ready)
        self.stack.setCurrentWidget(self.setup)

    def show_chat(self) -> None:
        self.stack.setCurrentIndex(1)
        self.composer.input.setFocus()

    def new_chat(self) -> None:
        if self.stack.currentWidget() is self.setup:
            return
        self.sidebar.search.clear()
        self.c.new_conversation()
        self.composer.input.setFocus()

    def focus_search(self) -> None:
        self.sidebar.search.setFocus()
        self.sidebar.search.selectAll()

    def about_text(self) -> str:
        from app import __version__
        return (f"<b>gpt-oss chat</b> <span>version {__version__}</span><p>Chat with OpenAI's open-weight gpt-oss "
                f"models, fully offline on {THIS_MACHINE}. The model runs in this app's own MLX engine; chats stay "
                "in a local database.</p>")

    def show_about(self) -> None:
        QMessageBox.about(self, "About gpt-oss chat", self.about_text())

    # -- export and import -----------------------------------------------------------------
    def export_chat(self, path: str, kind: str, reasoning: bool = False) -> str:
        """Write the open chat to `path` as Markdown ("md") or JSON; '' when done, else one sentence."""
        import json

        from app.chat_export import chat_json, chat_markdown
        if self.c.current_id == -1 or not self.c.model.messages():
            return "This chat is empty: there is nothing to export yet."
        try:
            text = (chat_markdown(self.c.store, self.c.current_id, reasoning) if kind == "md"
                    else json.dumps(chat_json(self.c.store, self.c.current_id), ensure_ascii=False, indent=1))
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        except (OSError, StoreError) as e:
            return f"The chat could not be exported ({e}); choose another place and try again."
        return ""

    def import_chat_file(self, path: str) -> str:
        """Add the chat in the JSON file `path` to the history and open it; '' when done, else why not."""
        from app.chat_export import ChatFileError, import_chat
        from app.paths import app_data_dir
        try:
            conv_id = import_chat(self.c.store, path, app_data_dir() / "imported")
        except (ChatFileError, StoreError) as e:
            return str(e)
        self.refresh_conversations()
        self.c.open_conversation(conv_id)
        self.refresh_conversations()
        return ""

    def _ask_export(self, kind: str) -> None:
        from PySide6.QtWidgets import QFileDialog
        conv = self.c.store.conversation(self.c.current_id) if self.c.current_id != -1 else None
        name = "".join(ch for ch in (conv.title if conv else "chat") if ch.isalnum() or ch in " -_").strip() or "chat"
        kinds = {"md": "Markdown (*.md)", "json": "JSON (*.json)"}
        path, _ = QFileDialog.getSaveFileName(self, "Export Chat", f"{name}.{kind}", kinds[kind])
        reasoning = False
        if path and kind == "md" and any(m.analysis for m in self.c.model.messages()):
            reasoning = QMessageBox.question(
                self, "Export Chat", "Include the model's reasoning (unfiltered model output)?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No) == QMessageBox.StandardButton.Yes
        problem = self.export_chat(path, kind, reasoning) if path else ""
        if problem:
            QMessageBox.warning(self, "Export Chat", problem)

    def _ask_import(self) -> None:
        from PySide6.QtWidgets import QFileDialog
        path, _ = QFileDialog.getOpenFileName(self, "Import Chat", "", "Chat exported as JSON (*.json)")
        problem = self.import_chat_file(path) if path else ""
        if problem:
            QMessageBox.warning(self, "Import Chat", problem)

    def set_api_server(self, api) -> None:
        """The launcher's LocalApiServer: Settings shows its switch; the status bar says when it is on."""
        self.api_server = api
        self.status_api = StatusLink()      # a click opens the request log
        self.statusBar().insertPermanentWidget(0, self.status_api)   # left of the memory figure
        self.status_api.clicked.connect(self.show_request_log)
        api.changed.connect(self._show_api_server)
        api.served_changed.connect(lambda _n: self._show_api_server())
        api.requests.changed.connect(self._show_api_server)
        api.answering_changed.connect(self._show_api_server)
        self._show_api_server()

    def _show_api_server(self, answering: bool = False) -> None:
        """'API on 127.0.0.1:8000 · 3 requests served', saying so while it answers (a chat sent then waits)."""
        api = self.api_server
        self.status_api.setText(status_text(api, answering))
        self.status_api.setToolTip(f"Local API server: {api.url}. Click for the request log." if api.running else "")
        self.status_api.setVisible(api.running)

    def show_request_log(self) -> None:
        """The local API's request log, beside the window (one at a time)."""
        view = getattr(self, "request_log_view", None)
        if view is None:
            view = self.request_log_view = RequestLogView(self.api_server.requests, self)
        view.show()
        view.raise_()

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.c.settings, self, greedy=self.c.greedy, api=self.api_server,
                                context_lengths=self.c.context_lengths, mcp=self.c.mcp,
                                conversation_id=self.c.current_id if self.c.current_id != -1 else None,
                                demo=self.c.is_demo, library=(self.c.library, self.c.indexer))
        dialog.cache_section.clear_requested.connect(self.c.clear_prompt_cache)
        try:
            if dialog.exec():
                self.c.save_settings(dialog.result_settings())
                self.effort_hint()
        finally:   # a kept dialog keeps its connections to the API server alive
            dialog.deleteLater()
        self.sources_switch.refresh()   # the Library section may have added or removed sources

    def _escape(self) -> None:
        if self.sidebar.search.hasFocus():   # Esc in the search field: clear it, then back to the chat
            if self.sidebar.search.text():
                self.sidebar.search.clear()
            else:
                self.composer.input.setFocus()
            return
        if self.c.answering_here:     # Esc stops the answer on screen, never one in another chat
            self.c.stop()
        elif self.composer.editing:
            self.composer.input.clear()     # the edit is dropped; a draft typed before it comes back
            self.composer.end_edit()

    def _send(self, text: str) -> None:
        if self.c.send(text):
            self.composer.accepted()

    def _send_example(self, text: str) -> None:
        # An example goes out as it is; whatever the user had typed stays in the box.
        self.c.send(text)

    def _begin_edit_at(self, row: int | None) -> None:
        """Edit the user message at `row` (None: the last one) in the message box."""
        self._edit_row = row
        if row is None:
            self.composer.begin_edit(self.c.last_user_text())
        else:
            self.composer.begin_edit(self.c.model.message(row).text, "this message")

    def _edit(self, text: str) -> None:
        row = getattr(self, "_edit_row", None)
        self._sending_edit = True      # the chat reopens on its new branch: the edit ends with accepted()
        try:
            sent = self.c.edit_at(row, text) if row is not None else self.c.edit_last(text)
        finally:
            self._sending_edit = False
        if sent:
            self.composer.accepted()

    def refresh_conversations(self) -> None:
        self.sidebar.set_conversations(self.c.conversations(self.sidebar.search.text()), self.c.current_id)
        self._show_title()

    def _show_title(self) -> None:
        conv = self.c.store.conversation(self.c.current_id) if self.c.current_id != -1 else None
        self.title.set_full_text(conv.title if conv else "New chat")
        self._fit_header()   # the title's share of the header depends on its length

    def _current_changed(self, conversation_id: int) -> None:
        self._show_title()
        self.effort.set_effort(self.c.effort)
        item = self.sidebar.item_for(conversation_id)
        if item is not None and not item.isSelected():
            self.refresh_conversations()
        if not getattr(self, "_sending_edit", False):
            self.composer.end_edit()
        self._update_composer()

    def _update_composer(self) -> None:
        msgs = self.c.model.messages()
        self.context_meter.show_use(msgs, int(self.c.settings.context_length))
        # Stop belongs to the chat that is answering; other chats wait while it holds the model.
        self.composer.set_state(self.c.ready, self.c.answering_here, bool(msgs) and msgs[-1].role == "assistant",
                                any(m.role == "user" for m in msgs), elsewhere=self.c.answering_elsewhere)
        self.messages.set_idle(not self.c.answering_here)
        self._show_title()

    def _model_ready(self, name: str) -> None:
        self.status_model.setText(name)
        demo = self.c.is_demo
        self.model_badge.set_full_text(name)
        self.get_model_button.setVisible(demo)
        self._fit_header()
        self.messages.set_placeholder(DEMO_PLACEHOLDER if demo else
                                      f"Ask anything. Answers are written on {THIS_MACHINE}, offline.")
        self.messages.set_examples([e.question for e in DEMO_EXAMPLES] if demo else [])
        self.effort.set_effort(self.c.effort)
        self.effort_hint()
        self._update_composer()

    def effort_hint(self) -> None:
        """The effort slider's tooltip says why it seems not to matter where that is so (the demo, Python on)."""
        self.effort.setToolTip(DEMO_PYTHON_TIP if self.c.is_demo and self.c.settings.python_tool else EFFORT_TIP)

    def _model_failed(self, message: str) -> None:
        self.status_model.setText("No model loaded")
        if self.model_picker.picker.recovering:   # the model picker loads the previous model again
            return
        self.show_setup(message)
        self._update_composer()

    def eventFilter(self, obj, e) -> bool:
        if obj is self.header and e.type() == QEvent.Type.Resize:
            self._fit_header()
        return super().eventFilter(obj, e)

    def _fit_header(self) -> None:
        """A narrow window drops the header's captions (the status bar names the model too) and shortens
        its button, so the title keeps room."""
        compact = self.header.width() < COMPACT_BELOW
        self.effort.caption.setVisible(not compact)
        # Narrow, the demo's download button keeps the room; Model ▸ Choose Model… (Ctrl+L) stays.
        self.model_badge.setVisible(not (compact and self.get_model_button.isVisibleTo(self.header)))
        self.get_model_button.setText("Get gpt-oss-20b…" if compact else "Download gpt-oss-20b…")
        QTimer.singleShot(0, self._share_title_room)   # once the layout has placed the header's widgets

    def _share_title_room(self) -> None:
        """The title and the model's name share what the header leaves them; the title (the chat's
        name) gets up to half of it first, the name the rest: a long model name must not leave the
        title "Ex…". The title takes whatever the name doesn't, so their two widths add up to that room."""
        if not self.model_badge.isVisibleTo(self.header):
            return
        room = self.title.width() + self.model_badge.width()
        title = min(self.title.sizeHint().width(), room // 2)
        self.model_badge.setMaximumWidth(max(self.model_badge.minimumSizeHint().width(), room - title))

    # -- theme ---------------------------------------------------------------------------
    def apply_theme(self) -> None:
        QApplication.instance().setStyleSheet(style_sheet(current_colors()))

    def changeEvent(self, e) -> None:
        # The system switched between light and dark: recolour our tints too.
        if e.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange, QEvent.Type.ThemeChange):
            if getattr(self, "_theming", False) is False:
                self._theming = True
                self.apply_theme()
                self._theming = False
        super().changeEvent(e)

    def _restore_geometry(self) -> None:
        """Where and how large the window was left (Qt keeps it on a screen that still exists)."""
        from PySide6.QtCore import QByteArray
        try:
            saved = self.c.store.get_setting("window_geometry", "")
        except StoreError:
            return
        if isinstance(saved, str) and saved:
            self.restoreGeometry(QByteArray.fromBase64(saved.encode()))

    def _save_geometry(self) -> None:
        try:
            self.c.store.set_setting("window_geometry", bytes(self.saveGeometry().toBase64()).decode())
        except (StoreError, AttributeError):   # unwritable, or already closed at shutdown
            pass   # the window opens at its default size next time

    def closeEvent(self, e) -> None:
        self._save_geometry()
        if self.api_server is not None:   # first: its request on the engine thread stops at the next token
            self.api_server.stop()
        self.c.shutdown()
        super().closeEvent(e)
