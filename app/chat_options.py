"""A chat's own options (developer instructions, temperature, top-p) and the user's saved presets.

No Qt here. A chat without its own value for a field uses the app-wide one from Settings; the
chat's reasoning effort stays in conversations.effort (the header slider), and a preset carries an
effort too, applied with it. Both live in the history file, in tables of their own created with
CREATE TABLE IF NOT EXISTS (old histories simply have none): a chat's row goes with the chat when
it is purged, presets stay until deleted. What a preset or an imported chat holds is checked
field by field: a bad value is dropped (the app-wide one applies), never passed to the model.
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, replace

from app.store import EFFORTS, ChatStore, StoreError

log = logging.getLogger(__name__)

TEMPERATURE = (0.0, 2.0)       # the ranges Settings keeps (app/settings.py clamped)
TOP_P = (0.05, 1.0)
MAX_NAME = 60
DEFAULT_PRESET_KEY = "default_chat_preset"   # settings-table key: the preset new chats start from

# A chat's own options, gone with the chat; presets by name (names compare without case).
_TABLES = ("""
CREATE TABLE IF NOT EXISTS chat_options (
    conversation_id INTEGER PRIMARY KEY REFERENCES conversations(id) ON DELETE CASCADE,
    options TEXT NOT NULL DEFAULT '{}'
)""", """
CREATE TABLE IF NOT EXISTS chat_presets (
    name TEXT PRIMARY KEY COLLATE NOCASE,
    options TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL
)""")


class PresetError(ValueError):
    """A preset name or value the user must change; str() is one sentence."""


@dataclass(frozen=True)
class ChatOptions:
    """None: use the app-wide value. `effort` only matters in a preset; `preset` names the preset
    the values came from (shown beside the chat's settings button)."""
    developer: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    effort: str | None = None
    preset: str = ""

    @property
    def own(self) -> bool:
        """The chat differs from the app-wide settings in instructions or sampling."""
        return any(v is not None for v in (self.developer, self.temperature, self.top_p))

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}

    @classmethod
    def from_json(cls, data) -> "ChatOptions":
        """Untrusted (a damaged row, an imported file): each field kept only when valid."""
        if not isinstance(data, dict):
            return cls()
        dev = data.get("developer")
        effort = data.get("effort")
        preset = data.get("preset")
        return cls(developer=dev if isinstance(dev, str) else None,
                   temperature=_in_range(data.get("temperature"), TEMPERATURE),
                   top_p=_in_range(data.get("top_p"), TOP_P),
                   effort=effort if effort in EFFORTS else None,
                   preset=preset[:MAX_NAME] if isinstance(preset, str) else "")


def _in_range(value, bounds) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value) if bounds[0] <= value <= bounds[1] else None


def parse_number(text: str, label: str, bounds: tuple[float, float], app_value: float) -> tuple[float | None, str]:
    """(value, '') for what the user typed (empty: None, the app-wide value), else (None, one sentence)."""
    text = text.strip().replace(",", ".")
    if not text:
        return None, ""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not bounds[0] <= value <= bounds[1]:
        return None, (f"{label} must be a number from {bounds[0]:g} to {bounds[1]:g} (e.g. {app_value:g}); "
                      "leave it empty to use the app-wide value.")
    return value, ""


def turn_options(settings, options: ChatOptions) -> dict:
    """The instructions and sampling one turn of the chat is sent with: its own, else the app's."""
    own = {"instructions_in": "this chat's settings"} if options.developer is not None else {}
    return {"developer": settings.developer if options.developer is None else options.developer, **own,
            "temperature": settings.temperature if options.temperature is None else options.temperature,
            "top_p": settings.top_p if options.top_p is None else options.top_p}


def check_name(name: str) -> str:
    """The preset name tidied; raises PresetError for an unusable one."""
    name = " ".join(name.split())
    if not name:
        raise PresetError("A preset needs a name; type one, e.g. “Concise answers”.")
    if len(name) > MAX_NAME:
        raise PresetError(f"That name is longer than {MAX_NAME} characters; choose a shorter one.")
    return name


class ChatOptionsStore:
    """The two tables, over the app's ChatStore (its errors are StoreError with one sentence)."""

    def __init__(self, store: ChatStore):
        self.store = store
        try:
            for sql in _TABLES:
                store.run(sql)
        except StoreError as e:   # the chats still work, on the app-wide settings
            log.warning("chat options: tables not made: %s", e)

    def for_turn(self, conversation_id: int, settings) -> dict:
        """The chat's instructions and sampling for its next request (the app-wide ones where it has
        none of its own, or when its row can't be read: an answer is never refused for it)."""
        try:
            options = self.get(conversation_id)
        except StoreError as e:
            log.warning("chat options: %s; using the app-wide settings", e)
            options = ChatOptions()
        return turn_options(settings, options)

    # -- a chat's own options --------------------------------------------------------------
    def get(self, conversation_id: int) -> ChatOptions:
        rows = self.store.run("SELECT options FROM chat_options WHERE conversation_id = ?", (conversation_id,))
        return ChatOptions.from_json(_loads(rows[0][0])) if rows else ChatOptions()

    def set(self, conversation_id: int, options: ChatOptions) -> None:
        """Save the chat's options (without its effort: the chat keeps that in conversations.effort)."""
        kept = replace(options, effort=None)
        if not kept.own:
            self.store.run("DELETE FROM chat_options WHERE conversation_id = ?", (conversation_id,))
            return
        self.store.run("INSERT INTO chat_options (conversation_id, options) VALUES (?, ?) ON CONFLICT(conversation_id)"
                       " DO UPDATE SET options = excluded.options", (conversation_id, json.dumps(kept.to_json())))

    def apply(self, conversation_id: int, options: ChatOptions) -> None:
        """Give the chat these options and, when they carry one, their effort."""
        self.set(conversation_id, options)
        if options.effort:
            self.store.set_effort(conversation_id, options.effort)

    def start_new_chat(self, conversation_id: int) -> None:
        """A new chat starts from the default preset, if one is chosen (else from the app-wide settings)."""
        preset = self.default_preset()
        self.apply(conversation_id, self.preset(preset) if preset else ChatOptions())

    # -- presets ---------------------------------------------------------------------------
    def presets(self) -> list[str]:
        return [r[0] for r in self.store.run("SELECT name FROM chat_presets ORDER BY name COLLATE NOCASE")]

    def preset(self, name: str) -> ChatOptions:
        """The preset's options, named after it (empty options when there is no such preset)."""
        rows = self.store.run("SELECT name, options FROM chat_presets WHERE name = ?", (name,))
        return replace(ChatOptions.from_json(_loads(rows[0][1])), preset=rows[0][0]) if rows else ChatOptions()

    def save_preset(self, name: str, options: ChatOptions, replace_existing: bool = False) -> str:
        """Save `options` (effort included) as a preset; returns the name as saved."""
        name = check_name(name)
        taken = self._taken(name)
        if taken and not replace_existing:
            raise PresetError(f"A preset named “{taken}” already exists; choose another name.")
        data = json.dumps(replace(options, preset="").to_json())
        if taken:
            self.store.run("UPDATE chat_presets SET options = ? WHERE name = ?", (data, name))
            return taken
        self.store.run("INSERT INTO chat_presets (name, options, created) VALUES (?, ?, ?)", (name, data, time.time()))
        return name

    def rename_preset(self, old: str, new: str) -> str:
        new = check_name(new)
        taken = self._taken(new)
        if taken and taken.casefold() != old.casefold():
            raise PresetError(f"A preset named “{taken}” already exists; choose another name.")
        was_default = self.default_preset().casefold() == old.casefold()
        self.store.run("UPDATE chat_presets SET name = ? WHERE name = ?", (new, old))
        if was_default:
            self.set_default_preset(new)
        self._rename_in_chats(old, new)
        return new

    def delete_preset(self, name: str) -> None:
        """Chats that used it keep their values (they were copied), no longer named after it."""
        was_default = self.default_preset().casefold() == name.casefold()
        self.store.run("DELETE FROM chat_presets WHERE name = ?", (name,))
        if was_default:
            self.set_default_preset("")
        self._rename_in_chats(name, "")

    def default_preset(self) -> str:
        """The preset new chats start from ('' for none, or when it is gone)."""
        name = self.store.get_setting(DEFAULT_PRESET_KEY, "")
        return self._taken(name) if isinstance(name, str) and name else ""

    def set_default_preset(self, name: str) -> None:
        self.store.set_setting(DEFAULT_PRESET_KEY, name)

    def default_effort(self) -> str | None:
        """The effort new chats take from the default preset, if it sets one."""
        try:
            name = self.default_preset()
            return self.preset(name).effort if name else None
        except StoreError:
            return None

    def find(self, name: str) -> str:
        """The saved spelling of the preset called `name` (any case), '' when there is none."""
        return self._taken(" ".join(name.split()))

    def _taken(self, name: str) -> str:
        rows = self.store.run("SELECT name FROM chat_presets WHERE name = ?", (name,))
        return rows[0][0] if rows else ""

    def _rename_in_chats(self, old: str, new: str) -> None:
        for cid, text in self.store.run("SELECT conversation_id, options FROM chat_options"):
            options = ChatOptions.from_json(_loads(text))
            if options.preset.casefold() == old.casefold():
                self.set(cid, replace(options, preset=new))


def _loads(text) -> dict:
    try:
        value = json.loads(text or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
