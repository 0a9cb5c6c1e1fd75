"""Which MCP servers each chat may call, and the tools it runs without asking.

Saved in the history database as one small setting (the key "mcp"):

    {"new_chats": ["files"],                                  # servers on in a chat not yet touched
     "chats": {"12": {"on": ["files", "github"], "always": ["github__list_issues"]}}}

A chat without an entry uses "new_chats"; switching a server in a chat writes that chat's
entry. A server that is off in a chat is not offered to the model there and can't be called
there (a call to it gets an error result). Pure functions on plain data: the caller loads and
saves the value (the store's get_setting/set_setting).
"""
from __future__ import annotations

from dataclasses import dataclass

from app.mcp.tools import SEPARATOR, slug

KEY = "mcp"


@dataclass(frozen=True)
class ChatTools:
    on: tuple[str, ...] = ()        # servers this chat may call
    always: tuple[str, ...] = ()    # functions ("server__tool") this chat runs without asking

    def allows(self, server: str) -> bool:
        return server in self.on


def _valid(saved) -> dict:
    saved = saved if isinstance(saved, dict) else {}
    chats = saved.get("chats") if isinstance(saved.get("chats"), dict) else {}
    return {"new_chats": _names(saved.get("new_chats")), "chats": {str(k): v for k, v in chats.items() if isinstance(v, dict)}}


def _names(value) -> list[str]:
    return sorted({v for v in value if isinstance(v, str)}) if isinstance(value, list) else []


def chat_tools(saved, conversation_id: int | None, servers: set[str] | None = None) -> ChatTools:
    """The chat's servers (only those still configured, when `servers` is given) and always-run tools."""
    data = _valid(saved)
    entry = data["chats"].get(str(conversation_id)) if conversation_id is not None else None
    on = _names(entry.get("on")) if entry is not None else data["new_chats"]
    if servers is not None:
        on = [n for n in on if n in servers]
    always = _names(entry.get("always")) if entry is not None else []
    return ChatTools(tuple(on), tuple(always))


def set_server(saved, conversation_id: int | None, server: str, on: bool) -> dict:
    """Turn `server` on or off in one chat (None: for new chats). Returns the new saved value."""
    data = _valid(saved)
    if conversation_id is None:
        names = set(data["new_chats"])
        data["new_chats"] = sorted(names | {server} if on else names - {server})
        return data
    current = chat_tools(data, conversation_id)
    names = set(current.on)
    always = [f for f in current.always if on or not f.startswith(slug(server) + SEPARATOR)]
    data["chats"][str(conversation_id)] = {"on": sorted(names | {server} if on else names - {server}), "always": always}
    return data


def allow_always(saved, conversation_id: int, function: str) -> dict:
    """"Always for this tool in this chat"."""
    data = _valid(saved)
    current = chat_tools(data, conversation_id)
    data["chats"][str(conversation_id)] = {"on": list(current.on), "always": sorted(set(current.always) | {function})}
    return data


def forget_server(saved, server: str) -> dict:
    """A server was removed from Settings: no chat keeps it (a new one of the same name starts off)."""
    data = _valid(saved)
    data["new_chats"] = [n for n in data["new_chats"] if n != server]
    for entry in data["chats"].values():
        entry["on"] = [n for n in _names(entry.get("on")) if n != server]
        entry["always"] = [f for f in _names(entry.get("always")) if not f.startswith(slug(server) + SEPARATOR)]
    return data


def forget_chat(saved, conversation_id: int) -> dict:
    data = _valid(saved)
    data["chats"].pop(str(conversation_id), None)
    return data
