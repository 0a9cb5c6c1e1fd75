"""Colours and the style sheet. Light and dark follow the system palette; nothing is hard-coded
per mode except the few accent tints that Qt's palette has no role for."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QGuiApplication, QPalette


@dataclass(frozen=True)
class Colors:
    dark: bool
    window: str
    sidebar: str
    text: str
    muted: str
    border: str
    user_bubble: str
    code_bg: str
    accent: str
    danger: str
    focus_ring: str = "#8fb8ff"     # around a filled accent button, where the accent itself wouldn't show
    faint: str = "#bdbdc2"          # a disabled borderless button: fainter than muted text, so it reads as unavailable


def current_colors() -> Colors:
    pal = QGuiApplication.palette()
    dark = pal.color(QPalette.ColorRole.Window).lightness() < 128
    if dark:
        return Colors(True, "#1e1e1f", "#262628", "#ececec", "#9a9a9f", "#3a3a3c", "#2f3b52", "#161617",
                      "#4c8dff", "#ff6b61", faint="#58585c")
    return Colors(False, "#ffffff", "#f5f5f7", "#1d1d1f", "#6e6e73", "#e3e3e6", "#e8f0fe", "#f6f8fa",
                  "#0a66e4", "#d70015")


def style_sheet(c: Colors) -> str:
    """The app-wide style sheet: system font, soft borders, rounded controls, Mac-like sidebar."""
    return f"""
    QMainWindow, #ChatPane, #MessageCanvas, #SetupPage {{ background: {c.window}; }}
    QWidget {{ color: {c.text}; }}
    #Sidebar {{ background: {c.sidebar}; border-right: 1px solid {c.border}; }}
    #Sidebar QListWidget {{ background: transparent; border: none; outline: none; }}
    #Sidebar QListWidget::item {{ padding: 7px 10px; border-radius: 7px; margin: 1px 6px; }}
    #Sidebar QScrollBar:vertical {{ width: 8px; background: transparent; margin: 2px 0; }}
    #Sidebar QScrollBar::handle:vertical {{ background: {c.muted}; border-radius: 4px; min-height: 24px; }}
    #Sidebar QScrollBar::add-line:vertical, #Sidebar QScrollBar::sub-line:vertical {{ height: 0; }}
    #Sidebar QScrollBar::add-page:vertical, #Sidebar QScrollBar::sub-page:vertical {{ background: none; }}
    #Sidebar QListWidget::item:selected {{ background: {c.accent}; color: white; }}
    #Sidebar QListWidget::item:hover:!selected {{ background: {c.border}; }}
    QLineEdit, QPlainTextEdit, QTextEdit, QComboBox {{
        background: {c.window}; border: 1px solid {c.border}; border-radius: 7px; padding: 5px 8px; }}
    QSpinBox, QDoubleSpinBox {{ min-height: 24px; }}
    #Sidebar QLineEdit#RenameEditor {{ padding: 1px 4px; border-radius: 5px; border: 1px solid {c.accent}; }}
    QLineEdit:focus, QPlainTextEdit:focus {{ border: 1px solid {c.accent}; }}
    #ComposerBox {{ border: 1px solid {c.border}; border-radius: 14px; background: {c.window}; }}
    #ComposerBox QPlainTextEdit {{ border: none; background: transparent; padding: 6px 4px; }}
    #ComposerBox QScrollBar:vertical {{ width: 8px; background: transparent; margin: 2px 0; }}
    #ComposerBox QScrollBar::handle:vertical {{ background: {c.muted}; border-radius: 4px; min-height: 24px; }}
    #ComposerBox QScrollBar::add-line:vertical, #ComposerBox QScrollBar::sub-line:vertical {{ height: 0; }}
    #ComposerBox QScrollBar::add-page:vertical, #ComposerBox QScrollBar::sub-page:vertical {{ background: none; }}
    QPushButton {{ border: 1px solid {c.border}; border-radius: 7px; padding: 5px 12px; background: {c.window}; }}
    QPushButton:hover {{ background: {c.sidebar}; }}
    QPushButton:disabled {{ color: {c.muted}; }}
    QPushButton#Primary {{ background: {c.accent}; color: white; border: none; font-weight: 600; }}
    QPushButton#Primary:disabled {{ background: {c.border}; color: {c.muted}; }}
    QPushButton#Danger {{ background: {c.danger}; color: white; border: none; font-weight: 600; }}
    QToolButton {{ border: none; border-radius: 6px; padding: 3px 6px; color: {c.muted}; }}
    QToolButton:hover {{ background: {c.border}; color: {c.text}; }}
    QToolButton:disabled {{ color: {c.faint}; }}
    #HeaderBar {{ border-bottom: 1px solid {c.border}; }}
    #Title {{ font-size: 15px; font-weight: 600; }}
    #Muted, #Stats, #Caption {{ color: {c.muted}; }}
    #Stats {{ font-size: 11px; }}
    #Notice {{ color: {c.danger}; }}
    QToolButton#Thinking {{ color: {c.muted}; font-style: italic; padding: 2px 0; }}
    QToolButton#Thinking:hover {{ background: transparent; color: {c.text}; }}
    QPushButton#Chip {{ border-radius: 14px; padding: 6px 14px; background: {c.sidebar}; }}
    QPushButton#Chip:hover {{ border-color: {c.accent}; }}
    #UserBubble {{ background: {c.user_bubble}; border-radius: 16px; }}
    #CodeBlock {{ background: {c.code_bg}; border: 1px solid {c.border}; border-radius: 8px; }}
    #CodeHeader {{ border-bottom: 1px solid {c.border}; }}
    #CodeScroll, #CodeScroll > QWidget > QWidget {{ background: transparent; }}
    #ToolBlock {{ background: {c.code_bg}; border: 1px solid {c.border}; border-radius: 8px; }}
    QToolButton#ToolHeader {{ color: {c.muted}; padding: 5px 10px; text-align: left; }}
    #ToolBody {{ border-top: 1px solid {c.border}; }}
    #ToolOutput {{ color: {c.text}; }}
    #RawThought {{ border-left: 3px solid {c.border}; padding-left: 8px; }}
    #RawThought QLabel#RawText {{ color: {c.muted}; font-family: Menlo, "DejaVu Sans Mono", monospace; font-size: 12px; }}
    #UndoBar {{ background: {c.text}; border-radius: 8px; }}
    #UndoBar QLabel {{ color: {c.window}; }}
    #UndoBar QPushButton {{ background: transparent; color: {c.accent}; border: none; font-weight: 600; }}
    #SetupCard {{ border: 1px solid {c.border}; border-radius: 14px; background: {c.sidebar}; }}
    #Headline {{ font-size: 24px; font-weight: 700; }}
    QProgressBar {{ border: none; border-radius: 4px; background: {c.border}; height: 8px; text-align: center; }}
    QProgressBar::chunk {{ border-radius: 4px; background: {c.accent}; }}
    QStatusBar {{ color: {c.muted}; border-top: 1px solid {c.border}; }}
    QStatusBar QLabel {{ padding: 0 10px; }}
    QScrollArea {{ border: none; }}
    /* Keyboard focus, visible on every Tab stop (a ring in the accent colour, as on macOS). */
    QPushButton:focus {{ border: 2px solid {c.accent}; }}
    QPushButton#Primary:focus, QPushButton#Danger:focus {{ border: 2px solid {c.focus_ring}; }}
    QToolButton:focus {{ border: 1px solid {c.accent}; }}
    #Sidebar QListWidget:focus {{ border: 1px solid {c.accent}; border-radius: 7px; }}
    QScrollArea#Messages {{ border: 1px solid transparent; }}
    QScrollArea#Messages:focus {{ border: 1px solid {c.accent}; }}
    QCheckBox:focus {{ color: {c.accent}; }}
    """
