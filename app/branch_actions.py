"""Regenerate, edit and switch branches in the open chat: what the controller does for them.

Regenerate keeps the answer it replaces as an alternative (‹ 2/3 › on the answer); an edit of any
user message forks the chat there, the old branch kept (‹ 1/2 › on that message). The history
(app/branches.py) keeps the branch shown in `messages`, so the next answer's prompt is that branch;
the engine's prompt cache resumes from the longest prefix it holds, i.e. from the fork.
"""
from __future__ import annotations

from app.qt_compat import emit
from app.store import StoredMessage, StoreError
from app.turn import clause


def mark(controller, conversation_id: int, stored, rows) -> None:
    """Give each shown message at a fork its (k, n); a history that can't say shows none."""
    try:
        counts = controller.branches.counts(conversation_id)
    except StoreError:
        return
    by_id = {m.id: counts[m.position] for m in stored if m.position in counts}
    for m in rows:
        m.alternatives = by_id.get(m.id, ())


def regenerate(c) -> bool:
    """Write the last answer again; the one on screen is kept as an alternative."""
    last = c.model.last()
    if not c.can_send() or last is None or last.role != "assistant":
        return False
    row = c.model.rowCount() - 1
    try:
        position = c._position_of(row, last)
        c.branches.fork(c.current_id, position)
        counts = c.branches.counts(c.current_id)
    except StoreError as e:
        emit(c.history_error, str(e))
        return False
    c.model.remove_from(row)
    c._start_reply()
    if c.turn is not None:
        c.turn.message.alternatives = counts.get(position, ())
        c.show_turn(c.turn)
    return True


def edit_at(c, row: int, text: str) -> bool:
    """Send `text` in place of the user message at `row`: a new branch from there (the old one,
    that message and all after it, stays reachable). False (nothing changes, the text stays in the
    message box) when it can't be done now."""
    text = text.strip()
    rows = c.model.messages()
    if not c.can_send() or not text or not 0 <= row < len(rows) or rows[row].role != "user":
        return False
    try:
        position = c._position_of(row, rows[row])
        c.branches.fork(c.current_id, position, StoredMessage("user", text))
    except StoreError as e:
        emit(c.history_error, f"Your edit wasn't sent because it couldn't be saved: {clause(e)}; it is still in the "
                              "message box.")
        return False
    c.open_conversation(c.current_id)   # the new branch, its message marked ‹ n/n ›
    c._start_reply()
    return True


def switch(c, row: int, step: int) -> bool:
    """Show the alternative `step` places away (-1 the one before) of the message at `row`: its
    whole tail is what is shown and what the model sees next. Not while this chat answers."""
    if c.current_id in c.turns or not 0 <= row < c.model.rowCount():
        return False
    try:
        position = c._position_of(row, c.model.message(row))
        if not c.branches.switch(c.current_id, position, step):
            return False
    except StoreError as e:
        emit(c.history_error, str(e))
        return False
    c.open_conversation(c.current_id)
    return True


def heal(c, conversation_id: int) -> None:
    """After a refused message left the chat: an edit's empty branch gives way to the old one."""
    try:
        changed = c.branches.heal(conversation_id)
    except StoreError as e:
        emit(c.history_error, str(e))
        return
    if changed and conversation_id == c.current_id:
        c.open_conversation(conversation_id)
