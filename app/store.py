"""The chat history: one SQLite file in the app-data folder.

Conversations, their messages (final text and analysis text kept in separate columns), the
reasoning effort and the generation stats. Every write commits at once (autocommit + WAL +
synchronous=FULL) so killing the app never loses a message that was shown as finished.
Deleting a conversation is a soft delete so the sidebar can offer Undo; `purge_deleted()`
removes them for good at the next start.
"""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA_VERSION = 1

_SCHEMA_V1 = """
CREATE TABLE conversations (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    effort TEXT NOT NULL DEFAULT 'medium',
    created REAL NOT NULL,
    updated REAL NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    final_text TEXT NOT NULL DEFAULT '',
    analysis_text TEXT NOT NULL DEFAULT '',
    effort TEXT,
    state TEXT NOT NULL DEFAULT 'done',
    thought_seconds REAL,
    stats TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    UNIQUE (conversation_id, position)
);
CREATE INDEX messages_by_conversation ON messages(conversation_id, position);
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# An answer's tool calls and results (app/tool_steps.py), JSON; gone with their message.
_TOOL_STEPS_TABLE = """
CREATE TABLE IF NOT EXISTS tool_steps (
    message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    steps TEXT NOT NULL DEFAULT '[]'
)"""

EFFORTS = ("low", "medium", "high")


@dataclass
class Conversation:
    id: int
    title: str
    effort: str = "medium"
    updated: float = 0.0


@dataclass
class StoredMessage:
    """One finished (or stopped) message as saved. `state` is 'done', 'stopped' or 'error'."""
    role: str
    text: str
    analysis: str = ""
    effort: str | None = None
    state: str = "done"
    thought_seconds: float | None = None
    stats: dict = field(default_factory=dict)
    id: int | None = None
    position: int | None = None


class StoreError(Exception):
    """The history file can't be used; str() is one sentence for the user."""


class ChatStore:
    """SQLite-backed history. Use from the GUI thread only (the engine thread never writes)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(self.path), isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise StoreError(
                f"The chat history at {self.path} can't be read ({e}); move that file away to start a fresh history."
            ) from e

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"it was written by a newer version of the app (schema {version})")
        if version < 1:
            # One script so the tables and the version number land together or not at all.
            self._db.executescript(f"BEGIN; {_SCHEMA_V1} PRAGMA user_version=1; COMMIT;")
        # Later schema versions add `if version < N:` steps here.
        self._db.execute(_TOOL_STEPS_TABLE)   # additive: old histories simply have none

    def _tx(self):
        """A transaction for multi-statement writes (autocommit mode otherwise)."""
        db = self._db

        class _Tx:
            def __enter__(self):
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self, exc_type, *_):
                db.execute("ROLLBACK" if exc_type else "COMMIT")
        return _Tx()

    def close(self) -> None:
        self._db.close()

    # -- conversations -------------------------------------------------------------------
    def create_conversation(self, title: str = "New chat", effort: str = "medium") -> Conversation:
        now = time.time()
        cur = self._db.execute(
            "INSERT INTO conversations (title, effort, created, updated) VALUES (?, ?, ?, ?)",
            (title, effort, now, now))
        return Conversation(cur.lastrowid, title, effort, now)

    def conversations(self, search: str = "") -> list[Conversation]:
        """Newest first; `search` matches the title or any message text (case-insensitive)."""
        sql = "SELECT id, title, effort, updated FROM conversations c WHERE deleted = 0"
        args: tuple = ()
        if search.strip():
            like = "%" + search.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            sql += (" AND (title LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM messages m WHERE"
                    " m.conversation_id = c.id AND m.final_text LIKE ? ESCAPE '\\'))")
            args = (like, like)
        sql += " ORDER BY updated DESC, id DESC"
        return [Conversation(*row) for row in self._db.execute(sql, args)]

    def conversation(self, conversation_id: int) -> Conversation | None:
        row = self._db.execute("SELECT id, title, effort, updated FROM conversations WHERE id = ? AND deleted = 0",
                               (conversation_id,)).fetchone()
        return Conversation(*row) if row else None

    def rename(self, conversation_id: int, title: str) -> None:
        self._db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title.strip() or "Untitled", conversation_id))

    def set_effort(self, conversation_id: int, effort: str) -> None:
        if effort not in EFFORTS:
            raise ValueError(f"effort must be one of {EFFORTS}")
        self._db.execute("UPDATE conversations SET effort = ? WHERE id = ?", (effort, conversation_id))

    def delete(self, conversation_id: int) -> None:
        """Soft delete: hidden at once, restorable with `undelete` until `purge_deleted`."""
        self._db.execute("UPDATE conversations SET deleted = 1 WHERE id = ?", (conversation_id,))

    def undelete(self, conversation_id: int) -> None:
        self._db.execute("UPDATE conversations SET deleted = 0 WHERE id = ?", (conversation_id,))

    def purge_deleted(self) -> int:
        return self._db.execute("DELETE FROM conversations WHERE deleted = 1").rowcount

    # -- messages ------------------------------------------------------------------------
    def messages(self, conversation_id: int) -> list[StoredMessage]:
        rows = self._db.execute(
            "SELECT role, final_text, analysis_text, effort, state, thought_seconds, stats, id, position"
            " FROM messages WHERE conversation_id = ? ORDER BY position", (conversation_id,))
        return [StoredMessage(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6] or "{}"), r[7], r[8]) for r in rows]

    def add_message(self, conversation_id: int, message: StoredMessage) -> StoredMessage:
        """Append and commit at once; returns the message with its id and position filled."""
        now = time.time()
        with self._tx():
            pos = self._db.execute("SELECT COALESCE(MAX(position) + 1, 0) FROM messages WHERE conversation_id = ?",
                                   (conversation_id,)).fetchone()[0]
            cur = self._db.execute(
                "INSERT INTO messages (conversation_id, position, role, final_text, analysis_text, effort, state,"
                " thought_seconds, stats, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (conversation_id, pos, message.role, message.text, message.analysis, message.effort, message.state,
                 message.thought_seconds, json.dumps(message.stats), now))
            self._db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, conversation_id))
        message.id, message.position = cur.lastrowid, pos
        return message

    def delete_messages_from(self, conversation_id: int, position: int) -> None:
        """Drop the message at `position` and everything after it (regenerate, edit and resend)."""
        self._db.execute("DELETE FROM messages WHERE conversation_id = ? AND position >= ?", (conversation_id, position))

    # -- settings ------------------------------------------------------------------------
    def get_setting(self, key: str, default=None):
        row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_setting(self, key: str, value) -> None:
        self._db.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                         (key, json.dumps(value)))

    # -- tool steps ----------------------------------------------------------------------
    def set_tool_steps(self, message_id: int, steps: list[dict]) -> None:
        """Save the tool calls and results of the answer `message_id` (replacing earlier ones)."""
        self._db.execute("INSERT INTO tool_steps (message_id, steps) VALUES (?, ?) ON CONFLICT(message_id) DO UPDATE "
                         "SET steps = excluded.steps", (message_id, json.dumps(steps)))

    def tool_steps(self, conversation_id: int) -> dict[int, list[dict]]:
        """Message id -> its saved tool steps, for one conversation."""
        rows = self._db.execute("SELECT t.message_id, t.steps FROM tool_steps t JOIN messages m ON m.id = t.message_id"
                                " WHERE m.conversation_id = ?", (conversation_id,))
        out = {}
        for mid, text in rows:
            try:
                out[mid] = json.loads(text)
            except json.JSONDecodeError:
                continue   # a damaged row loses its tool blocks, never the chat
        return out
