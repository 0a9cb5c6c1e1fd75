"""The chat history: one SQLite file in the app-data folder.

Conversations, their messages (final text and analysis text kept in separate columns), the
reasoning effort and the generation stats. Every write commits at once (autocommit + WAL +
synchronous=FULL) so killing the app never loses a message that was shown as finished.
Deleting a conversation is a soft delete so the sidebar can offer Undo; `purge_deleted()`
removes them for good at the next start (only by the instance holding the history's lock).

Opening never fails on a bad file: a damaged history is checked at start, kept as a copy beside
it and its readable rows are recovered into a fresh one; an unwritable file or folder opens as a
copy in memory. Either way `notice` holds the one sentence the app shows. Errors while running
become StoreError with one sentence.
"""
from __future__ import annotations

import functools
import json
import logging
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.history_lock import HistoryLock
from app.store_recovery import DAMAGED_TEXT_NOTICE, insert_salvaged, move_aside, salvage  # noqa: F401

log = logging.getLogger(__name__)

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

# A chat's other branches (app/branches.py): at a fork `position`, one row per alternative in
# ‹ k/n › order; the one shown has tail NULL (its messages are in `messages`), the others keep
# theirs as JSON; came_from is the slot shown when this one was made. Gone with their chat.
_BRANCHES_TABLE = """
CREATE TABLE IF NOT EXISTS branches (
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    slot INTEGER NOT NULL,
    tail TEXT,
    came_from INTEGER,
    PRIMARY KEY (conversation_id, position, slot)
)"""

EFFORTS = ("low", "medium", "high")
FULL_CHECK_BYTES = 32 * 2**20  # integrity_check below this size (it also compares indexes), quick_check above
INTERRUPTED_NOTICE = "This answer was cut off: the app closed before it finished."


@dataclass
class Conversation:
    id: int
    title: str
    effort: str = "medium"
    updated: float = 0.0


@dataclass
class StoredMessage:
    """One message as saved. `state` is 'done', 'stopped', 'error', 'streaming' (being written
    now) or 'interrupted' (was being written when the app died)."""
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


class NewerHistory(StoreError):
    """The file's schema is newer than this app knows."""


def _code(e: sqlite3.Error) -> int:
    return getattr(e, "sqlite_errorcode", 0) & 0xFF


def _is_damage(e: sqlite3.Error) -> bool:
    return _code(e) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) or "malformed" in str(e)


def _is_unwritable(e: sqlite3.Error) -> bool:
    return _code(e) in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM)


def _sentence(e: sqlite3.Error) -> str:
    """One sentence for an error met while the app runs."""
    if _code(e) == sqlite3.SQLITE_FULL:
        return "The disk is full, so the chat history can't be saved; free some space."
    if _code(e) in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_CANTOPEN):
        return "The chat history file can't be written (it is read-only); check its permissions."
    if _is_damage(e):
        return "This part of the chat history is damaged; restart the app to repair it (the file is kept)."
    return f"The chat history can't be used right now ({e})."


def _guarded(method):
    """sqlite3 errors -> StoreError with one sentence (the caller decides what the user sees)."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as e:
            log.warning("history: %s failed: %s", method.__name__, e)
            raise StoreError(_sentence(e)) from e
    return wrapper


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")  # a damaged byte must not make a whole chat unreadable


class ChatStore:
    """SQLite-backed history. Use from the GUI thread only (the engine thread never writes).

    notice: '' or one sentence about the history's state at start (recovered, read-only, ...).
    persistent: False when this session's changes can't reach the disk (an in-memory copy).
    exclusive: this instance holds the history's lock (others may only read and add).
    verify=False skips the start-up check (tests use it for damage that appears while running).
    """

    def __init__(self, path: str | Path, lock: HistoryLock | None = None, verify: bool = True):
        self.path = Path(path)
        self.notice = ""
        self.persistent = True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self._in_memory(None, f"The app-data folder {self.path.parent} can't be created ({e.strerror or e}); "
                                  "chats from this session won't be saved until it can.")
            self.lock, self.exclusive, self._own_lock = None, True, False
            return
        self._own_lock = lock is None  # a lock handed in (the single-instance guard's) stays its owner's
        self.lock = lock or HistoryLock(self.path)
        self.exclusive = self.lock.held
        if (self.exclusive and self.path.exists() and self.path.stat().st_size == 0
                and not Path(f"{self.path}-wal").exists()):
            try:
                kept = move_aside(self.path)
                self.notice = (f"The chat history file was empty (0 bytes, kept as {kept}); a fresh history "
                               "was started.")
            except OSError:
                pass  # an unwritable folder: opening says so below
        try:
            self._open(verify)
        except NewerHistory as e:  # never touch a newer app's file; still start, on an empty history
            self._close_quietly()
            self._in_memory(None, f"{e} Chats from this session won't be saved.")
        except sqlite3.Error as e:
            self._close_quietly()
            if _is_damage(e) and not self.exclusive:  # another window has it open: never move it under it
                self._in_memory(None, "The chat history is damaged and another window of the app has it open; quit "
                                      "that window and start the app again to repair it.")
            elif _is_damage(e):
                self._recover(e)
            elif _is_unwritable(e):
                self._open_read_only_copy(e)
            else:
                raise StoreError(f"The chat history at {self.path} can't be read ({e}); move that file away to "
                                 "start a fresh history.") from e

    # -- opening ---------------------------------------------------------------------------
    def _open(self, verify: bool) -> None:
        self._db = sqlite3.connect(str(self.path), isolation_level=None)
        self._db.text_factory = _decode
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA secure_delete=ON")  # deleted chats leave no text behind in free pages
        if verify:
            self._verify()
        self._migrate()
        # A read-only file opens without complaint and fails at the first write: find out now.
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES ('-write-probe-', '0')")
        self._db.execute("ROLLBACK")

    def _verify(self) -> None:
        """Raise a damage error unless SQLite finds the file sound."""
        size = self.path.stat().st_size if self.path.exists() else 0
        check = "integrity_check(1)" if size <= FULL_CHECK_BYTES else "quick_check(1)"
        result = self._db.execute(f"PRAGMA {check}").fetchone()[0]
        if result != "ok":
            raise sqlite3.DatabaseError(f"database disk image is malformed ({result})")

    def _close_quietly(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            try:
                db.close()
            except sqlite3.Error:
                pass
        self._db = None

    def _recover(self, error: sqlite3.Error) -> None:
        """Keep the damaged file, copy what SQLite can still read into a fresh history."""
        log.warning("history damaged (%s): recovering", error)
        try:
            kept = move_aside(self.path)
        except OSError as e:
            self._in_memory(None, f"The chat history at {self.path} is damaged and can't be moved aside "
                                  f"({e.strerror or e}); chats from this session won't be saved.")
            return
        work = kept.with_name(kept.name + ".salvage")
        try:
            shutil.copyfile(kept, work)  # read a copy: the kept file stays exactly as it was found
            if Path(f"{kept}-wal").exists():
                shutil.copyfile(f"{kept}-wal", f"{work}-wal")
            rows = salvage(work)
        except OSError:
            rows = {}
        finally:
            for leftover in (work, Path(f"{work}-wal"), Path(f"{work}-shm")):
                leftover.unlink(missing_ok=True)
        self._open(verify=False)
        with self._tx():
            chats, messages = insert_salvaged(self._db, rows)
        if messages or chats:
            self.notice = (f"The chat history was damaged: {chats} chat{'s' if chats != 1 else ''} with {messages} "
                           f"message{'s' if messages != 1 else ''} were recovered, and the damaged file was kept as "
                           f"{kept}.")
        else:
            self.notice = (f"The chat history was damaged and nothing in it could be read; it was kept as {kept} "
                           "and a fresh history was started.")

    def _open_read_only_copy(self, error: sqlite3.Error) -> None:
        """The file (or its folder) can't be written: work on a copy in memory, keep the file as is."""
        source = None
        try:
            source = sqlite3.connect(f"file:{self.path}?mode=ro&immutable=1", uri=True)
            source.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.Error:
            source = None
        self._in_memory(source, f"The chat history at {self.path} can't be written ({error}); your chats are shown, "
                                "but nothing from this session will be saved. Check the file's permissions, then "
                                "restart the app.")

    def _in_memory(self, source: sqlite3.Connection | None, notice: str) -> None:
        self.persistent, self.notice = False, notice
        self._db = sqlite3.connect(":memory:", isolation_level=None)
        self._db.text_factory = _decode
        if source is not None:
            try:
                source.backup(self._db)
            except sqlite3.Error:
                pass
            source.close()
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise NewerHistory(f"The chat history at {self.path} was written by a newer version of the app (schema "
                               f"{version}), so it is left untouched; update the app to see it.")
        if version < 1:
            # One script so the tables and the version number land together or not at all.
            self._db.executescript(f"BEGIN; {_SCHEMA_V1} PRAGMA user_version=1; COMMIT;")
        # Later schema versions add `if version < N:` steps here.
        self._db.execute(_TOOL_STEPS_TABLE)   # additive: old histories simply have none
        self._db.execute(_BRANCHES_TABLE)     # (the same)

    def _tx(self):
        """A transaction for multi-statement writes (autocommit mode otherwise)."""
        db = self._db

        class _Tx:
            def __enter__(self):
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self, exc_type, *_):
                if exc_type is None:
                    db.execute("COMMIT")
                elif db.in_transaction:  # SQLite already rolled back after e.g. "disk is full"
                    db.execute("ROLLBACK")
        return _Tx()

    def close(self) -> None:
        self._close_quietly()
        if self.lock is not None and self._own_lock:
            self.lock.release()

    # -- conversations -------------------------------------------------------------------
    @_guarded
    def create_conversation(self, title: str = "New chat", effort: str = "medium") -> Conversation:
        now = time.time()
        cur = self._db.execute(
            "INSERT INTO conversations (title, effort, created, updated) VALUES (?, ?, ?, ?)",
            (title, effort, now, now))
        return Conversation(cur.lastrowid, title, effort, now)

    @_guarded
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

    @_guarded
    def conversation(self, conversation_id: int) -> Conversation | None:
        row = self._db.execute("SELECT id, title, effort, updated FROM conversations WHERE id = ? AND deleted = 0",
                               (conversation_id,)).fetchone()
        return Conversation(*row) if row else None

    @_guarded
    def rename(self, conversation_id: int, title: str) -> None:
        self._db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title.strip() or "Untitled", conversation_id))

    @_guarded
    def set_effort(self, conversation_id: int, effort: str) -> None:
        if effort not in EFFORTS:
            raise ValueError(f"effort must be one of {EFFORTS}")
        self._db.execute("UPDATE conversations SET effort = ? WHERE id = ?", (effort, conversation_id))

    @_guarded
    def delete(self, conversation_id: int) -> None:
        """Soft delete: hidden at once, restorable with `undelete` until `purge_deleted`."""
        self._db.execute("UPDATE conversations SET deleted = 1 WHERE id = ?", (conversation_id,))

    @_guarded
    def undelete(self, conversation_id: int) -> None:
        self._db.execute("UPDATE conversations SET deleted = 0 WHERE id = ?", (conversation_id,))

    @_guarded
    def conversation_ids(self) -> list[int]:
        """Every chat id still in the file, the soft-deleted (Undo-able) ones included."""
        return [row[0] for row in self._db.execute("SELECT id FROM conversations")]

    @_guarded
    def purge_deleted(self) -> int:
        """Remove soft-deleted chats for good; only the instance holding the lock (another one
        could still offer Undo for them)."""
        if not self.exclusive:
            return 0
        return self._db.execute("DELETE FROM conversations WHERE deleted = 1").rowcount

    @_guarded
    def empty_conversation_ids(self) -> list[int]:
        """Chats without a message, newest first (a New chat never written in)."""
        return [row[0] for row in self._db.execute(
            "SELECT id FROM conversations c WHERE deleted = 0 AND NOT EXISTS "
            "(SELECT 1 FROM messages m WHERE m.conversation_id = c.id) ORDER BY updated DESC, id DESC")]

    @_guarded
    def purge_empty(self) -> int:
        """Remove chats never written in that still have the default title (left by New chat); only
        the instance holding the lock, as for purge_deleted."""
        if not self.exclusive:
            return 0
        return self._db.execute(
            "DELETE FROM conversations WHERE title = 'New chat' AND NOT EXISTS "
            "(SELECT 1 FROM messages m WHERE m.conversation_id = conversations.id)").rowcount

    @_guarded
    def mark_interrupted(self) -> int:
        """Answers left 'streaming' by an app that died are marked 'interrupted' (lock holder only)."""
        if not self.exclusive:
            return 0
        rows = self._db.execute("SELECT id, stats FROM messages WHERE state = 'streaming'").fetchall()
        with self._tx():
            for mid, stats in rows:
                stats = dict(_json_dict(stats), notice=INTERRUPTED_NOTICE)
                self._db.execute("UPDATE messages SET state = 'interrupted', stats = ? WHERE id = ?",
                                 (json.dumps(stats), mid))
        return len(rows)

    # -- messages ------------------------------------------------------------------------
    @_guarded
    def messages(self, conversation_id: int) -> list[StoredMessage]:
        rows = self._db.execute(
            "SELECT role, final_text, analysis_text, effort, state, thought_seconds, stats, id, position"
            " FROM messages WHERE conversation_id = ? ORDER BY position", (conversation_id,))
        return [StoredMessage(r[0], r[1], r[2], r[3], r[4], r[5], _json_dict(r[6]), r[7], r[8]) for r in rows]

    @_guarded
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

    @_guarded
    def update_message(self, message: StoredMessage) -> None:
        """Rewrite a saved message's text, state and stats (the answer being written, then finished)."""
        self._db.execute("UPDATE messages SET final_text = ?, analysis_text = ?, state = ?, thought_seconds = ?,"
                         " stats = ? WHERE id = ?", (message.text, message.analysis, message.state,
                                                     message.thought_seconds, json.dumps(message.stats), message.id))

    @_guarded
    def delete_messages_from(self, conversation_id: int, position: int) -> None:
        """Drop the message at `position` and everything after it (regenerate, edit and resend)."""
        self._db.execute("DELETE FROM messages WHERE conversation_id = ? AND position >= ?", (conversation_id, position))

    # -- settings ------------------------------------------------------------------------
    @_guarded
    def get_setting(self, key: str, default=None):
        """The saved value, or `default` when there is none or it is not valid JSON."""
        row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        if row is None:
            return default
        try:
            return json.loads(row[0])
        except (TypeError, ValueError):
            log.warning("history: setting %r is not valid JSON; using the default", key)
            return default

    @_guarded
    def set_setting(self, key: str, value) -> None:
        self._db.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                         (key, json.dumps(value)))

    @_guarded
    def run(self, sql: str, args: tuple = ()) -> list[tuple]:
        """One statement for a table kept by another module (app/chat_options.py); its rows."""
        return self._db.execute(sql, args).fetchall()

    # -- tool steps ----------------------------------------------------------------------
    @_guarded
    def set_tool_steps(self, message_id: int, steps: list[dict]) -> None:
        """Save the tool calls and results of the answer `message_id` (replacing earlier ones)."""
        self._db.execute("INSERT INTO tool_steps (message_id, steps) VALUES (?, ?) ON CONFLICT(message_id) DO UPDATE "
                         "SET steps = excluded.steps", (message_id, json.dumps(steps)))

    @_guarded
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


def _json_dict(text) -> dict:
    """A stats column as a dict ({} when damaged)."""
    try:
        value = json.loads(text or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
