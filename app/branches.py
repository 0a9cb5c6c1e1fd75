"""A chat's alternatives and branches, kept in the history (the `branches` table, app/store.py).

The `messages` table always holds the branch on screen, the one the model continues from, so
everything else (search, export, the engine's history) reads it unchanged. A fork point is a
position in a chat with two or more alternatives, in ‹ k/n › order: Regenerate forks at the answer,
an edit forks at the user message. The alternative shown has `tail` NULL; each other one keeps its
tail as JSON: its messages from the fork on (text, reasoning, stats, tool steps) and the fork
points further down inside it. Switching swaps two tails in one transaction, so a crash never
loses a branch. No Qt here.
"""
from __future__ import annotations

import json
import time

from app.store import ChatStore, StoredMessage, _guarded, _json_dict

_COLUMNS = "role, final_text, analysis_text, effort, state, thought_seconds, stats"


class Branches:
    """Fork, switch and list the alternatives of the chats in `store` (GUI thread only)."""

    def __init__(self, store: ChatStore):
        self.store = store

    @property
    def _db(self):
        return self.store._db   # the store's one connection: its transactions include ours

    # -- reading -----------------------------------------------------------------------------
    @_guarded
    def counts(self, conversation_id: int) -> dict[int, tuple[int, int]]:
        """Fork position -> (the shown alternative's number from 1, how many there are)."""
        out: dict[int, tuple[int, int]] = {}
        rows = self._db.execute("SELECT position, tail IS NULL FROM branches WHERE conversation_id = ?"
                                " ORDER BY position, slot", (conversation_id,)).fetchall()
        for position, shown in rows:
            k, n = out.get(position, (0, 0))
            out[position] = (n + 1 if shown else k, n + 1)
        return {p: (k, n) for p, (k, n) in out.items() if n > 1 and k}

    # -- changing ----------------------------------------------------------------------------
    @_guarded
    def fork(self, conversation_id: int, position: int, first: StoredMessage | None = None) -> StoredMessage | None:
        """Keep the tail from `position` on as an alternative and start a new, empty one there;
        `first` (an edited user message) is its first message. One transaction: on failure nothing
        changed."""
        with self.store._tx():
            tail = self._take_tail(conversation_id, position)
            if tail["messages"]:
                slots = self._slots(conversation_id, position)
                shown = next((s for s, t in slots if t is None), None)
                if shown is None:    # the first fork here (or a damaged row lost the shown one)
                    shown = max((s for s, _ in slots), default=-1) + 1
                    self._db.execute("INSERT INTO branches (conversation_id, position, slot, tail)"
                                     " VALUES (?, ?, ?, ?)", (conversation_id, position, shown, json.dumps(tail)))
                else:
                    self._set_tail(conversation_id, position, shown, tail)
                new_slot = max([s for s, _ in slots] + [shown]) + 1
                self._db.execute("INSERT INTO branches (conversation_id, position, slot, came_from)"
                                 " VALUES (?, ?, ?, ?)", (conversation_id, position, new_slot, shown))
            if first is not None:
                first.id, first.position = self._insert(conversation_id, position, first), position
            self._db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (time.time(), conversation_id))
        return first

    @_guarded
    def switch(self, conversation_id: int, position: int, step: int) -> bool:
        """Show the alternative `step` places away (-1: the one before) at `position`; False when
        there is none there."""
        slots = self._slots(conversation_id, position)
        order = [s for s, _ in slots]
        shown = next((i for i, (_, t) in enumerate(slots) if t is None), None)
        if shown is None or not 0 <= shown + step < len(slots):
            return False
        target_slot, target_tail = slots[shown + step]
        with self.store._tx():
            tail = self._take_tail(conversation_id, position)
            self._set_tail(conversation_id, position, order[shown], tail)
            self._set_tail(conversation_id, position, target_slot, None)
            self._put_tail(conversation_id, _loads(target_tail))
        return True

    @_guarded
    def heal(self, conversation_id: int) -> bool:
        """A fork whose new alternative has no message (the edited message was refused and went back
        to the message box) shows the branch it came from again and forgets the empty one. True
        when something changed."""
        changed = False
        for position in sorted({p for p, in self._db.execute(
                "SELECT DISTINCT position FROM branches WHERE conversation_id = ?", (conversation_id,))}):
            has_message = self._db.execute("SELECT 1 FROM messages WHERE conversation_id = ? AND position = ?",
                                           (conversation_id, position)).fetchone()
            slots = self._slots(conversation_id, position)
            came_from = self._db.execute("SELECT came_from FROM branches WHERE conversation_id = ? AND position = ? AND"
                                         " tail IS NULL", (conversation_id, position)).fetchone()
            before = position == 0 or self._db.execute(
                "SELECT 1 FROM messages WHERE conversation_id = ? AND position = ?", (conversation_id, position - 1)
            ).fetchone()
            if has_message or not slots or not before:   # (a refused regenerate took its question too: the
                continue                                  # old answers stay stored, exported with the chat)
            with self.store._tx():
                # The empty branch's own rows: its place here and any fork inside it.
                self._db.execute("DELETE FROM branches WHERE conversation_id = ? AND (position > ? OR"
                                 " (position = ? AND tail IS NULL))", (conversation_id, position, position))
                kept = [(s, t) for s, t in slots if t is not None]
                if kept:
                    # The branch the edit left (else the newest one).
                    slot, tail = next(((s, t) for s, t in kept if came_from and s == came_from[0]), kept[-1])
                    self._put_tail(conversation_id, _loads(tail))
                    if len(kept) == 1:     # no fork left here
                        self._db.execute("DELETE FROM branches WHERE conversation_id = ? AND position = ?",
                                         (conversation_id, position))
                    else:
                        self._set_tail(conversation_id, position, slot, None)
            changed = True
        return changed

    # -- export and import ---------------------------------------------------------------------
    @_guarded
    def export(self, conversation_id: int) -> list[dict]:
        """The chat's fork points for a JSON export: [{position, alternatives: [tail or None]}]."""
        out: dict[int, list] = {}
        for position, tail in self._db.execute("SELECT position, tail FROM branches WHERE conversation_id = ?"
                                               " ORDER BY position, slot", (conversation_id,)):
            out.setdefault(position, []).append(None if tail is None else _loads(tail))
        return [{"position": p, "alternatives": alts} for p, alts in sorted(out.items())]

    @_guarded
    def restore(self, conversation_id: int, forks) -> int:
        """Put back the fork points of an imported chat (an untrusted file: malformed ones are
        skipped); returns how many were kept."""
        kept = 0
        with self.store._tx():
            for fork in forks if isinstance(forks, list) else []:
                alts = fork.get("alternatives") if isinstance(fork, dict) else None
                position = fork.get("position") if isinstance(fork, dict) else None
                if (not isinstance(position, int) or not isinstance(alts, list) or len(alts) < 2
                        or sum(a is None for a in alts) != 1
                        or not all(a is None or _tail_ok(a, position) for a in alts)):
                    continue
                for slot, alt in enumerate(alts):
                    self._db.execute("INSERT OR REPLACE INTO branches (conversation_id, position, slot, tail)"
                                     " VALUES (?, ?, ?, ?)",
                                     (conversation_id, position, slot, None if alt is None else json.dumps(alt)))
                kept += 1
        return kept

    # -- tails ---------------------------------------------------------------------------------
    def _slots(self, conversation_id: int, position: int) -> list[tuple[int, str | None]]:
        return self._db.execute("SELECT slot, tail FROM branches WHERE conversation_id = ? AND position = ?"
                                " ORDER BY slot", (conversation_id, position)).fetchall()

    def _set_tail(self, conversation_id: int, position: int, slot: int, tail: dict | None) -> None:
        """None: this alternative is the one shown (its messages are in `messages`)."""
        self._db.execute("UPDATE branches SET tail = ? WHERE conversation_id = ? AND position = ? AND slot = ?",
                         (None if tail is None else json.dumps(tail), conversation_id, position, slot))

    def _take_tail(self, conversation_id: int, position: int) -> dict:
        """Remove the shown messages from `position` on, and the fork points inside them; return them."""
        rows = self._db.execute(f"SELECT id, position, {_COLUMNS} FROM messages WHERE conversation_id = ? AND"
                                " position >= ? ORDER BY position", (conversation_id, position)).fetchall()
        messages = []
        for mid, pos, role, text, analysis, effort, state, seconds, stats in rows:
            entry = {"position": pos, "role": role, "text": text, "analysis": analysis, "effort": effort,
                     "state": state, "thought_seconds": seconds, "stats": _json_dict(stats)}
            steps = self._db.execute("SELECT steps FROM tool_steps WHERE message_id = ?", (mid,)).fetchone()
            if steps is not None:
                entry["tool_steps"] = _loads(steps[0], [])
            messages.append(entry)
        inner = self._db.execute("SELECT position, slot, tail FROM branches WHERE conversation_id = ? AND position > ?"
                                 " ORDER BY position, slot", (conversation_id, position)).fetchall()
        self._db.execute("DELETE FROM messages WHERE conversation_id = ? AND position >= ?",
                         (conversation_id, position))
        self._db.execute("DELETE FROM branches WHERE conversation_id = ? AND position > ?", (conversation_id, position))
        return {"messages": messages,
                "branches": [{"position": p, "slot": s, "tail": None if t is None else _loads(t)} for p, s, t in inner]}

    def _put_tail(self, conversation_id: int, tail: dict) -> None:
        for m in tail.get("messages", []):
            row = StoredMessage(m["role"], m.get("text", ""), m.get("analysis", ""), m.get("effort"),
                                m.get("state", "done"), m.get("thought_seconds"), m.get("stats") or {})
            mid = self._insert(conversation_id, m["position"], row)
            if m.get("tool_steps"):
                self._db.execute("INSERT INTO tool_steps (message_id, steps) VALUES (?, ?)",
                                 (mid, json.dumps(m["tool_steps"])))
        for b in tail.get("branches", []):
            self._db.execute("INSERT INTO branches (conversation_id, position, slot, tail) VALUES (?, ?, ?, ?)", (
                conversation_id, b["position"], b["slot"], None if b.get("tail") is None else json.dumps(b["tail"])))

    def _insert(self, conversation_id: int, position: int, m: StoredMessage) -> int:
        cur = self._db.execute(
            "INSERT INTO messages (conversation_id, position, role, final_text, analysis_text, effort, state,"
            " thought_seconds, stats, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (conversation_id, position, m.role, m.text, m.analysis, m.effort, m.state, m.thought_seconds,
             json.dumps(m.stats), time.time()))
        return cur.lastrowid


def _loads(text, default=None):
    """A stored tail (ours, so well formed unless the file was damaged: then an empty branch)."""
    try:
        return json.loads(text) if text is not None else default
    except (TypeError, ValueError):
        return default if default is not None else {"messages": [], "branches": []}


def _tail_ok(tail, start: int) -> bool:
    """An imported tail has the shape _put_tail reads, every position from its fork `start` on."""
    if not isinstance(tail, dict) or not isinstance(tail.get("messages", []), list):
        return False
    for m in tail.get("messages", []):
        if not (isinstance(m, dict) and m.get("role") in ("user", "assistant") and isinstance(m.get("position"), int)
                and m["position"] >= start and isinstance(m.get("text", ""), str)
                and isinstance(m.get("analysis", ""), str)
                and isinstance(m.get("stats", {}), dict) and isinstance(m.get("tool_steps", []), list)):
            return False
    inner = tail.get("branches", [])
    return isinstance(inner, list) and all(
        isinstance(b, dict) and isinstance(b.get("position"), int) and b["position"] > start
        and isinstance(b.get("slot"), int) and (b.get("tail") is None or _tail_ok(b["tail"], b["position"]))
        for b in inner)
