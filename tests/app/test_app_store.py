"""ChatStore: conversations, messages with analysis kept apart, soft delete, search, durability."""
import sqlite3
import subprocess
import sys

from app.store import SCHEMA_VERSION, ChatStore, StoredMessage


def test_messages_round_trip_with_analysis_apart(store):
    conv = store.create_conversation("Physics", effort="high")
    store.add_message(conv.id, StoredMessage("user", "Why is the sky blue?"))
    store.add_message(conv.id, StoredMessage("assistant", "Rayleigh scattering.", analysis="short wavelengths...",
                                             effort="high", thought_seconds=2.5, stats={"generated_tokens": 7}))
    msgs = store.messages(conv.id)
    assert [m.role for m in msgs] == ["user", "assistant"]
    assert [m.position for m in msgs] == [0, 1]
    assert msgs[1].text == "Rayleigh scattering." and msgs[1].analysis == "short wavelengths..."
    assert msgs[1].stats == {"generated_tokens": 7} and msgs[1].thought_seconds == 2.5
    assert store.conversation(conv.id).effort == "high"


def test_search_matches_title_and_message_text(store):
    a = store.create_conversation("Cooking")
    b = store.create_conversation("Travel")
    store.add_message(b.id, StoredMessage("user", "best 100% pasta in Rome"))
    assert [c.id for c in store.conversations("cook")] == [a.id]
    assert [c.id for c in store.conversations("PASTA")] == [b.id]
    assert [c.id for c in store.conversations("100%")] == [b.id]
    assert store.conversations("nothing like this") == []


def test_soft_delete_undo_and_purge(store):
    conv = store.create_conversation("Keep me?")
    store.add_message(conv.id, StoredMessage("user", "hi"))
    store.delete(conv.id)
    assert store.conversations() == []
    store.undelete(conv.id)
    assert [c.id for c in store.conversations()] == [conv.id]
    store.delete(conv.id)
    assert store.purge_deleted() == 1
    store.undelete(conv.id)
    assert store.conversations() == [] and store.messages(conv.id) == []


def test_delete_messages_from_position(store):
    conv = store.create_conversation()
    for i in range(4):
        store.add_message(conv.id, StoredMessage("user" if i % 2 == 0 else "assistant", f"m{i}"))
    store.delete_messages_from(conv.id, 2)
    assert [m.text for m in store.messages(conv.id)] == ["m0", "m1"]
    assert store.add_message(conv.id, StoredMessage("user", "again")).position == 2


def test_schema_is_versioned_and_newer_files_are_refused(tmp_path):
    path = tmp_path / "h.sqlite3"
    ChatStore(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    before = path.read_bytes()
    s = ChatStore(path)  # the app still starts: on an empty history in memory, saying why
    assert "newer version" in s.notice and not s.persistent and s.conversations() == []
    s.create_conversation("this session only")
    s.close()
    assert path.read_bytes() == before


def test_garbage_file_is_kept_aside_and_a_fresh_history_starts(tmp_path):
    path = tmp_path / "h.sqlite3"
    garbage = b"this is not a database" * 100
    path.write_bytes(garbage)
    s = ChatStore(path)
    (kept,) = tmp_path.glob("h.damaged-*.sqlite3")
    assert kept.read_bytes() == garbage  # kept exactly as found, never deleted
    assert kept.name in s.notice and "nothing in it could be read" in s.notice
    assert s.conversations() == [] and s.create_conversation("new").id


def test_a_killed_process_loses_nothing_it_committed(tmp_path):
    """Write a message in a child process that then dies with SIGKILL-like os._exit."""
    path = tmp_path / "h.sqlite3"
    code = (f"from app.store import ChatStore, StoredMessage\n"
            f"s = ChatStore({str(path)!r}); c = s.create_conversation('x')\n"
            f"s.add_message(c.id, StoredMessage('assistant', 'kept', analysis='a', state='stopped'))\n"
            f"import os; os._exit(9)\n")
    subprocess.run([sys.executable, "-c", code], check=False)
    s = ChatStore(path)
    (conv,) = s.conversations()
    (m,) = s.messages(conv.id)
    assert (m.text, m.analysis, m.state) == ("kept", "a", "stopped")


def test_settings_round_trip(store):
    assert store.get_setting("x", 5) == 5
    store.set_setting("x", {"a": [1, 2]})
    store.set_setting("x", {"a": [3]})
    assert store.get_setting("x") == {"a": [3]}
