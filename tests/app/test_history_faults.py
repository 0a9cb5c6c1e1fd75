"""The chat history under faults, at the store level (issue 19 items 1, 2, 5; issue 18's database items).

Damage is real: pages of a real history file overwritten with random bytes, the file cut short,
made read-only (chattr +i as root, chmod otherwise), a process killed with SIGKILL while it
writes. The reference for "nothing lost" is the list of messages written before the fault.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.history_lock import HistoryLock
from app.settings import Settings
from app.store import DAMAGED_TEXT_NOTICE, INTERRUPTED_NOTICE, ChatStore, StoredMessage

PAGE = 4096
ROOT = Path(__file__).resolve().parents[2]


def build_history(path: Path, chats: int = 40, per_chat: int = 6, seed: int = 0) -> dict[int, tuple[int, str]]:
    """A history of short and long (overflow-page) messages; returns {message id: (chat id, text)}."""
    s = ChatStore(path)
    rng = random.Random(seed)
    written = {}
    for c in range(chats):
        conv = s.create_conversation(f"chat {c}")
        for k in range(per_chat):
            text = f"c{c} m{k} " + "".join(rng.choice("abcdefgh ") for _ in range(rng.choice([20, 200, 1500, 6000])))
            m = s.add_message(conv.id, StoredMessage("user" if k % 2 == 0 else "assistant", text))
            written[m.id] = (conv.id, text)
    s.set_setting("settings", {"developer": "Be brief.", "temperature": 0.7})
    s.close()
    return written


def read_all(store: ChatStore) -> dict[int, tuple[int, str, dict]]:
    """Every message of every listed chat, opened the way the app opens them."""
    return {m.id: (conv.id, m.text, m.stats) for conv in store.conversations() for m in store.messages(conv.id)}


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    folder = tmp_path_factory.mktemp("history")
    written = build_history(folder / "h.sqlite3")
    return folder / "h.sqlite3", written


def pages_to_damage(n_pages: int) -> list[int]:
    """Page 1 (the schema), the first few (table roots), then every 6th: the sweep stays fast."""
    return sorted({0, 1, 2, 3, 4} | set(range(5, n_pages, 6)) | {n_pages - 1})


def test_every_damaged_page_is_detected_kept_and_recovered(history, tmp_path):
    """Issue 19.1: single-page corruptions made chats silently unopenable or crashed the start."""
    src, written = history
    n_pages = src.stat().st_size // PAGE
    assert n_pages > 100
    recovered_counts = []
    for page in pages_to_damage(n_pages):
        folder = tmp_path / f"p{page}"
        folder.mkdir()
        path = folder / "h.sqlite3"
        shutil.copy(src, path)
        with path.open("r+b") as f:
            f.seek(page * PAGE)
            f.write(random.Random(page).randbytes(PAGE))
        damaged = path.read_bytes()

        store = ChatStore(path)
        got = read_all(store)   # every listed chat opens: none is left unreadable
        (kept,) = folder.glob("h.damaged-*.sqlite3")
        assert kept.read_bytes() == damaged, page          # the damaged file is kept as found
        assert kept.name in store.notice, (page, store.notice)   # and the user is told
        for mid, (conv, text, stats) in got.items():
            # A recovered message is the one written, or says that it was damaged.
            assert written[mid] == (conv, text) or stats.get("notice") == DAMAGED_TEXT_NOTICE, (page, mid)
        recovered_counts.append(len(got))
        store.create_conversation("still writable")
        store.close()
        assert ChatStore(path).notice == ""  # the recovered history is sound
    # One page holds a few messages or part of a long one: that is all a damaged page may cost,
    # even when it is the schema or a table's root (then the leaf pages are read directly).
    assert min(recovered_counts) >= len(written) - 12, recovered_counts


def test_leaf_pages_decode_to_what_sqlite_reads(history):
    """The page reader used when a table's root is gone, checked against SQLite on a sound file."""
    from app.store_pages import rows_by_table
    from app.store_recovery import COLUMNS
    src, written = history
    db = sqlite3.connect(src)
    for table, cols in COLUMNS.items():
        expected = sorted(db.execute(f"SELECT {cols} FROM {table}").fetchall(), key=repr)
        assert sorted(rows_by_table(src)[table], key=repr) == expected, table
    db.close()
    assert len(rows_by_table(src)["messages"]) == len(written)


def test_a_history_cut_to_zero_bytes_is_kept_and_the_user_told(tmp_path):
    path = tmp_path / "h.sqlite3"
    build_history(path, chats=2)
    path.write_bytes(b"")
    store = ChatStore(path)
    (kept,) = tmp_path.glob("h.damaged-*.sqlite3")
    assert kept.stat().st_size == 0 and "empty" in store.notice and kept.name in store.notice
    assert store.conversations() == []


def test_a_truncated_history_keeps_what_is_left(history, tmp_path):
    src, written = history
    path = tmp_path / "h.sqlite3"
    data = src.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    store = ChatStore(path)
    got = read_all(store)
    assert "damaged" in store.notice and 0 < len(got) < len(written)
    assert all(written[mid] == (conv, text) or stats.get("notice") == DAMAGED_TEXT_NOTICE
               for mid, (conv, text, stats) in got.items())
    assert sum(written[mid] == (conv, text) for mid, (conv, text, _s) in got.items()) > len(written) // 3


def test_settings_with_bad_json_or_wrong_types_fall_back_to_defaults(tmp_path):
    """Issue 19.2: a settings row that is not JSON, or has wrong types, made a startup traceback."""
    path = tmp_path / "h.sqlite3"
    ChatStore(path).close()
    cases = {
        "{not json": Settings(),
        "[1, 2]": Settings(),
        json.dumps({"temperature": "hot", "top_p": None, "max_tokens": 1.5, "context_length": "8192",
                    "show_raw_cot": "yes", "developer": 42, "model_folder": ["x"]}): Settings(),
        json.dumps({"temperature": 0.5, "max_tokens": "lots", "developer": "Be brief."}):
            Settings(temperature=0.5, developer="Be brief."),
        json.dumps({"temperature": float("nan"), "context_length": 16384.0}): Settings(context_length=16384),
    }
    for raw, expected in cases.items():
        db = sqlite3.connect(path)
        db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES ('settings', ?)", (raw,))
        db.commit()
        db.close()
        store = ChatStore(path)
        assert Settings.load(store) == expected, raw
        store.close()


def make_read_only(path: Path) -> None:
    if os.geteuid() == 0:  # root ignores permission bits: make the file immutable instead
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not available here")
    else:
        path.chmod(0o555 if path.is_dir() else 0o444)


def undo_read_only(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    else:
        path.chmod(0o755 if path.is_dir() else 0o644)


def test_a_read_only_history_opens_as_a_copy_and_says_so(tmp_path):
    """Issue 19.2: a read-only database gave a startup traceback."""
    path = tmp_path / "h.sqlite3"
    store = ChatStore(path)
    conv = store.create_conversation("kept")
    store.add_message(conv.id, StoredMessage("user", "an old question"))
    store.close()
    before = path.read_bytes()
    make_read_only(path)
    try:
        store = ChatStore(path)
        assert not store.persistent and "can't be written" in store.notice and "nothing from this session will be saved" in store.notice
        (c,) = store.conversations()
        assert [m.text for m in store.messages(c.id)] == ["an old question"]
        store.add_message(c.id, StoredMessage("assistant", "works for this session"))  # the app stays usable
        store.close()
    finally:
        undo_read_only(path)
    assert path.read_bytes() == before


def test_an_unwritable_app_data_folder_starts_in_memory_and_says_so(tmp_path):
    folder = tmp_path / "appdata"
    folder.mkdir()
    make_read_only(folder)
    try:
        store = ChatStore(folder / "history.sqlite3")
        assert not store.persistent and str(folder) in store.notice
        store.create_conversation("this session only")
        store.close()
        assert not (folder / "history.sqlite3").exists()
    finally:
        undo_read_only(folder)


def test_a_folder_that_cannot_be_created_starts_in_memory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    store = ChatStore(blocker / "sub" / "history.sqlite3")
    assert not store.persistent and "can't be created" in store.notice
    assert store.create_conversation("x").id


def test_disk_full_while_running_is_one_sentence(tmp_path):
    store = ChatStore(tmp_path / "h.sqlite3")
    conv = store.create_conversation("x")
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count={pages}")  # SQLite's own "database or disk is full"
    from app.store import StoreError
    with pytest.raises(StoreError, match="disk is full"):
        store.add_message(conv.id, StoredMessage("assistant", "x" * 100_000))
    assert store.messages(conv.id) == []


WRITER = """
import sys, time
from app.store import ChatStore, StoredMessage
s = ChatStore(sys.argv[1])
c = s.create_conversation("killed")
for i in range(3):
    s.add_message(c.id, StoredMessage("user" if i % 2 == 0 else "assistant", f"finished {i}"))
m = s.add_message(c.id, StoredMessage("assistant", "", state="streaming"))
text = ""
for k in range(100000):
    text += f"word{k} "
    m.text = text
    s.update_message(m)
    if k in (20, 40):
        print("streaming", k, flush=True)
    time.sleep(0.001)
"""


def test_kill_9_while_an_answer_streams(tmp_path):
    """Issue 18: every finished message is there after kill -9, the interrupted one is marked."""
    path = tmp_path / "h.sqlite3"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.stdout.readline().strip() == "streaming 20"
    assert proc.stdout.readline().strip() == "streaming 40"  # mid-stream: it keeps writing for ~100 s
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    store = ChatStore(path)
    assert store.notice == ""
    assert store.mark_interrupted() == 1
    (conv,) = store.conversations()
    msgs = store.messages(conv.id)
    assert [m.text for m in msgs[:3]] == ["finished 0", "finished 1", "finished 2"]
    assert all(m.state == "done" for m in msgs[:3])
    last = msgs[3]
    assert last.state == "interrupted" and last.stats["notice"] == INTERRUPTED_NOTICE
    assert last.text.startswith("word0 word1 ") and len(last.text.split()) > 20


def test_only_the_lock_holder_purges_and_marks(tmp_path):
    """Issue 19.5: a second launch purged chats the first still offered to Undo."""
    path = tmp_path / "h.sqlite3"
    first = ChatStore(path)
    assert first.exclusive
    conv = first.create_conversation("deleted in the first window")
    first.delete(conv.id)
    second = ChatStore(path)
    assert not second.exclusive and second.purge_deleted() == 0 and second.mark_interrupted() == 0
    second.close()
    first.undelete(conv.id)  # Undo still works
    assert [c.title for c in first.conversations()] == ["deleted in the first window"]
    first.close()
    assert HistoryLock(path).held  # released on close (and by the OS on any exit)


def test_a_damaged_history_another_window_holds_is_left_in_place(tmp_path):
    path = tmp_path / "h.sqlite3"
    garbage = b"not a database " * 300
    path.write_bytes(garbage)
    holder = HistoryLock(path)
    try:
        store = ChatStore(path)
        assert not store.persistent and "another window" in store.notice
        assert path.read_bytes() == garbage and not list(tmp_path.glob("h.damaged-*"))
        store.close()
    finally:
        holder.release()
