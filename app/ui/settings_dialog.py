"""Settings: developer instructions, sampling, answer and context length, and the developer toggle
that shows the raw chain of thought."""
from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QRect
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QFrame,
                               QLabel, QPlainTextEdit, QScrollArea, QSpinBox, QVBoxLayout, QWidget)

from app.settings import CONTEXT_LENGTHS, Settings
from app.ui.api_server_section import ApiServerSection
from app.ui.functions_editor import SCHEMA_EXAMPLE, FunctionsEditor
from app.ui.mcp_section import McpSection
from app.ui.prompt_cache_section import PromptCacheSection
from app.user_functions import check_answer_schema


def demo_ignores() -> str:
    """What the demo model is not offered, and why (the answer format only once its weights fill one)."""
    from app.turn_request import DEMO_FILLS_ANSWER_FORMATS

    ignored = ("your functions or MCP servers" if DEMO_FILLS_ANSWER_FORMATS
               else "your functions, the answer format or MCP servers")
    return (f"The demo model doesn't follow developer instructions and is not offered {ignored}: it never learnt "
            "them and would answer with nonsense. They apply as soon as a gpt-oss model is loaded (the local API "
            "passes a client's own tools and formats to any model).")


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent=None, greedy: bool = False, api=None,
                 context_lengths: tuple = (), mcp=None, conversation_id: int | None = None, demo: bool = False,
                 library=None):
        """`greedy`: the loaded model decodes greedily, so temperature and top-p don't apply to it.
        `api`: the app's LocalApiServer, for the "Local API server" switch (None: no switch).
        `context_lengths`: the lengths the loaded model and the memory plan allow (empty: all)."""
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(480)
        self._base = settings
        # Everything but Save/Cancel scrolls: the dialog is taller than a 13" screen otherwise.
        outer = QVBoxLayout(self)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.content = QWidget(objectName="SettingsContent")
        lay = QVBoxLayout(self.content)
        lay.setContentsMargins(0, 0, 8, 0)      # room for the scroll bar beside the fields
        form = QFormLayout()
        self.developer = QPlainTextEdit(settings.developer)
        self.developer.setPlaceholderText("Instructions for every chat, e.g. “Answer in British English.”")
        self.developer.setFixedHeight(90)
        self.developer.setToolTip("A chat with instructions of its own (⚙ Chat settings) uses those instead.")
        form.addRow("Developer instructions", self.developer)
        self.temperature = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=2.0, singleStep=0.1)
        self.temperature.setValue(settings.temperature)
        self.temperature.setToolTip("gpt-oss is meant to be sampled at temperature 1.")
        form.addRow("Temperature", self.temperature)
        self.top_p = QDoubleSpinBox(decimals=2, minimum=0.05, maximum=1.0, singleStep=0.05)
        self.top_p.setValue(settings.top_p)
        form.addRow("Top-p", self.top_p)
        # Greyed, not changed: the values still apply to the next model that samples.
        self.greedy_note = QLabel("The loaded model answers greedily (its folder asks for it), so temperature "
                                  "and top-p don't apply to it.", objectName="Caption")
        self.greedy_note.setWordWrap(True)
        self.greedy_note.setVisible(greedy)
        form.addRow("", self.greedy_note)
        for box in (self.temperature, self.top_p):
            box.setEnabled(not greedy)
            if greedy:
                box.setToolTip(self.greedy_note.text())
        self.max_tokens = QSpinBox(minimum=16, maximum=131072, singleStep=256)
        self.max_tokens.setValue(settings.max_tokens)
        self.max_tokens.setSuffix(" tokens")
        form.addRow("Max answer length", self.max_tokens)
        self.context = QComboBox()
        offered = [n for n in CONTEXT_LENGTHS if not context_lengths or n in context_lengths]
        for n in offered or CONTEXT_LENGTHS:
            self.context.addItem(f"{n // 1024}K tokens", n)
        self.context.setCurrentIndex(max(0, self.context.findData(settings.context_length)))
        form.addRow("Context length", self.context)
        lay.addLayout(form)
        context_note = "A longer context keeps more of the chat in mind but needs more memory."
        if offered and offered[-1] < CONTEXT_LENGTHS[-1]:
            context_note += (f" The loaded model, with this computer's memory, takes at most "
                             f"{offered[-1] // 1024}K tokens.")
        self.context_note = QLabel(context_note, objectName="Caption")
        self.context_note.setWordWrap(True)
        lay.addWidget(self.context_note)
        lay.addSpacing(8)
        self.python_tool = QCheckBox("Let the model run Python code")
        self.python_tool.setChecked(settings.python_tool)
        lay.addWidget(self.python_tool)
        python_note = QLabel("Code runs in a sandbox on this computer, without network, in a folder of its own for "
                             "each chat. Each chat asks you before it runs code.", objectName="Caption")
        python_note.setWordWrap(True)
        lay.addWidget(python_note)
        from engine.python_tool import sandbox_problem   # no Qt, no MLX; the kernel's modules load only when used
        problem = sandbox_problem()
        if problem:   # the switch keeps its value for when the sandbox can run
            self.python_tool.setEnabled(False)
            python_note.setText(f"Python can't run here: {problem}")
        self.disk_quota = QSpinBox(minimum=16, maximum=1024 * 1024, singleStep=256, suffix=" MB")
        self.disk_quota.setValue(settings.python_disk_quota_mb)
        self.disk_quota.setToolTip("All that one chat's Python folder may hold.")
        quota_row = QFormLayout()
        quota_row.addRow("Python disk space per chat", self.disk_quota)
        lay.addLayout(quota_row)
        self.library_section = None
        if library is not None:   # (library sources, indexer): Settings → Library (app/ui/library_section.py)
            from app.ui.library_section import LibrarySection
            lay.addSpacing(8)
            self.library_section = LibrarySection(*library)
            lay.addWidget(self.library_section)
        self.mcp_section = None
        if mcp is not None:   # app.mcp.service.McpService; the ticks are for the open chat
            lay.addSpacing(8)
            self.mcp_section = McpSection(mcp, conversation_id)
            lay.addWidget(self.mcp_section)
        self.api_section = None
        if api is not None:
            lay.addSpacing(8)
            self.api_section = ApiServerSection(api, settings)
            lay.addWidget(self.api_section)
        lay.addSpacing(8)
        self.cache_section = PromptCacheSection(settings.prompt_cache_gb)
        lay.addWidget(self.cache_section)
        self.show_raw = QCheckBox("Show raw chain of thought")
        self.show_raw.setChecked(settings.show_raw_cot)
        lay.addSpacing(8)
        lay.addWidget(QLabel("Developer", objectName="Title"))
        # The window ignores these for the demo (it never learnt them): say so rather than look broken.
        self.demo_note = QLabel(demo_ignores(), objectName="Notice")
        self.demo_note.setWordWrap(True)
        self.demo_note.setVisible(demo)
        lay.addWidget(self.demo_note)
        lay.addWidget(self.show_raw)
        note = QLabel("The chain of thought is unfiltered model output: it is not checked for accuracy or safety "
                      "the way final answers are. Shown beside each answer, collapsible.", objectName="Caption")
        note.setWordWrap(True)
        lay.addWidget(note)
        lay.addSpacing(4)
        lay.addWidget(QLabel("Functions the model may call", objectName="Caption"))
        self.functions = FunctionsEditor(settings.functions)
        lay.addWidget(self.functions)
        functions_note = QLabel("When the model calls one, you type its result in the chat.", objectName="Caption")
        functions_note.setWordWrap(True)
        lay.addWidget(functions_note)
        lay.addSpacing(4)
        format_label = QLabel("Answer format: a JSON Schema every answer must follow (empty: free text)",
                              objectName="Caption")
        format_label.setWordWrap(True)   # unwrapped, it was wider than the dialog's minimum width
        lay.addWidget(format_label)
        self.answer_schema = QPlainTextEdit(settings.answer_schema)
        self.answer_schema.setPlaceholderText(SCHEMA_EXAMPLE.replace("city", "answer"))
        self.answer_schema.setFixedHeight(70)
        lay.addWidget(self.answer_schema)
        self.answer_schema_error = QLabel("", objectName="Notice")
        self.answer_schema_error.setWordWrap(True)
        self.answer_schema_error.hide()
        lay.addWidget(self.answer_schema_error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.scroll.setWidget(self.content)
        outer.addWidget(self.scroll, 1)
        outer.addWidget(buttons)
        self.buttons = buttons
        self.fit_to_screen()

    def fit_to_screen(self, available: QRect | None = None) -> None:
        """As tall as the content, but never taller than the screen's free area (menu bar and Dock
        excluded): a 1440x900 MacBook Air leaves about 800 points; the rest scrolls."""
        if available is None:
            screen = self.screen() or QGuiApplication.primaryScreen()
            available = screen.availableGeometry()
        frame = 40                                  # the title bar the window manager adds
        margins = self.layout().contentsMargins()
        want = (self.content.sizeHint().height() + self.buttons.sizeHint().height() + self.layout().spacing()
                + margins.top() + margins.bottom())
        self.setMinimumHeight(min(320, available.height() - frame))
        self.resize(max(self.width(), 520), max(self.minimumHeight(), min(want, available.height() - frame)))

    def accept(self) -> None:
        _schema, problem = check_answer_schema(self.answer_schema.toPlainText())
        if problem:   # the dialog stays open with everything typed
            self.answer_schema_error.setText(problem)
            self.answer_schema_error.show()
            return
        if self.api_section is not None and not self.api_section.apply():   # its note says why
            self.scroll.ensureWidgetVisible(self.api_section.note)
            return
        super().accept()

    def result_settings(self) -> Settings:
        return replace(self._base, developer=self.developer.toPlainText().strip(),
                       temperature=self.temperature.value(), top_p=self.top_p.value(),
                       max_tokens=self.max_tokens.value(), context_length=int(self.context.currentData()),
                       show_raw_cot=self.show_raw.isChecked(), python_tool=self.python_tool.isChecked(),
                       functions=self.functions.functions(), python_disk_quota_mb=self.disk_quota.value(),
                       answer_schema=self.answer_schema.toPlainText().strip(),
                       prompt_cache_gb=self.cache_section.gigabytes(),
                       **(self.api_section.values() if self.api_section is not None else {})).clamped()
