"""The app (controller and window) under history faults and prompts that don't fit
(issue 19 items 3, 4, 5, 6, 8; issue 17 item 1; issue 18's kill -9 and two-instance items).

A real ChatSession and the real o200k_harmony tokenizer run behind the worker where the prompt
or the stop reason matter; the model is a scripted one (it answers a fixed harmony reply), so
"nothing was generated" is checked by its step counter.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np

from app.controller import ChatController
from app.store import INTERRUPTED_NOTICE, ChatStore, StoredMessage
from app.worker import EngineWorker
from engine.session import ChatSession
from scripted import ScriptedSession, answer_script, scripted_loader

ROOT = Path(__file__).resolve().parents[2]
REPLY = "<|channel|>analysis<|message|>Two plus two.<|end|><|start|>assistant<|channel|>final<|message|>4<|return|>"


class CountingCache:
    def __init__(self):
        self.offset = 0

    def snapshot(self):
        return self.offset

    def restore(self, snap):
        self.offset = snap

    def state(self):
        return []


class ScriptedModel:
    """Answers REPLY token by token whatever the prompt; `steps` counts generated tokens."""

    def __init__(self, enc):
        self.script = enc.encode(REPLY, allowed_special="all")
        self.vocab, self.steps = enc.n_vocab, 0

    def make_cache(self):
        return CountingCache()

    def hidden(self, ids, cache):
        cache.offset += ids.shape[1]
        return mx.zeros((1, ids.shape[1], 4))

    def __call__(self, ids, cache=None, last_only=False):
        cache.offset += ids.shape[1]
        token = self.script[min(self.steps, len(self.script) - 1)]
        self.steps += 1
        return mx.array(np.eye(1, self.vocab, token, dtype=np.float32)[None] * 50)


def real_session_controller(qtbot, store, enc, context_length=8192):
    model = ScriptedModel(enc)
    session = ChatSession(model, enc, context_length=context_length, name="scripted harmony model")
    c = ChatController(store, EngineWorker(loader=lambda folder, ctx: session), flush_ms=10)
    with qtbot.waitSignal(c.model_ready, timeout=10000):
        c.load_model("/nowhere")
    return c, model


def test_a_saved_answer_keeps_its_true_stop_reason(qtbot, store, enc):
    """Issue 19.8: every saved answer's stats said stop_reason "cancelled"."""
    c, model = real_session_controller(qtbot, store, enc)
    try:
        assert c.send("2+2?")
        qtbot.waitUntil(lambda: not c.busy, timeout=10000)
        (conv,) = store.conversations()
        answer = store.messages(conv.id)[-1]
        assert (answer.text, answer.state) == ("4", "done")
        assert answer.stats["stop_reason"] == "return" and answer.stats["generated_tokens"] == len(model.script)
    finally:
        c.shutdown()


def test_a_message_longer_than_the_context_is_refused_before_generating(qtbot, store, enc):
    """Issue 17.1: a ~20,000-character message in an 8k context was cut at its start silently.
    Issue 29 item 19: refused, it then stayed as one huge bubble and became the chat's title; now it
    goes back, whole, into the message box with the sentence, and the chat is as it was."""
    from app.ui.main_window import MainWindow
    c, model = real_session_controller(qtbot, store, enc, context_length=8192)
    w = MainWindow(c)
    qtbot.addWidget(w)
    w.show()
    w.show_chat()
    c.settings.max_tokens = 4096
    question = "Which number is the largest? " + " ".join(str(i * 7919 % 100003) for i in range(3300))
    try:
        w.composer.input.setPlainText(question)
        w.composer.submit()
        qtbot.waitUntil(lambda: not c.busy, timeout=10000)
        assert model.steps == 0   # nothing was generated, no prefill either
        assert c.model.messages() == [] and w.messages.bubbles == []
        assert w.composer.input.toPlainText() == question   # kept whole, never cut, ready to shorten
        notice = w.composer.notice.text()
        assert w.composer.notice.isVisibleTo(w)
        assert f"{len(question):,} characters" in notice and "8,192-token context" in notice
        assert "0 messages" not in notice and "Nothing was sent" in notice
        assert [(x.title, store.messages(x.id)) for x in store.conversations()] == [("New chat", [])]
        assert w.title.toolTip() in ("", "New chat") and "Which number" not in w.title.text()
        w.composer.input.setPlainText("Which is larger, 3 or 4?")
        w.composer.submit()
        qtbot.waitUntil(lambda: not c.busy, timeout=10000)
        assert not w.composer.notice.isVisibleTo(w)   # the sentence goes with the message it was about
        assert [m.text for m in store.messages(store.conversations()[0].id)][0] == "Which is larger, 3 or 4?"
    finally:
        c.shutdown()


def test_developer_instructions_longer_than_the_context_are_named(qtbot, store, enc):
    """Issue 19.6: 30k characters of instructions cut the user's question to nothing."""
    c, model = real_session_controller(qtbot, store, enc, context_length=8192)
    c.settings.developer = "Answer as a formal letter with many clauses and a long greeting. " * 470
    try:
        assert c.send("What is 2 + 2?")
        qtbot.waitUntil(lambda: not c.busy, timeout=10000)
        assert model.steps == 0
        notice = c.model.last().notice
        assert "developer instructions in Settings" in notice and "8,192-token context" in notice
    finally:
        c.shutdown()


def test_a_long_chat_drops_whole_old_turns_and_says_how_many(qtbot, store, enc):
    c, model = real_session_controller(qtbot, store, enc, context_length=1024)
    c.settings.max_tokens = 256
    conv = store.create_conversation("long")
    for i in range(30):
        store.add_message(conv.id, StoredMessage("user", f"question {i} " + "blah " * 30))
        store.add_message(conv.id, StoredMessage("assistant", f"answer {i} " + "yada " * 30))
    c.open_conversation(conv.id)
    try:
        assert c.send("the latest question")
        qtbot.waitUntil(lambda: not c.busy, timeout=10000)
        notice = c.model.last().notice
        assert notice.startswith("The oldest ") and "messages no longer fit" in notice and " 0 " not in notice
        assert c.model.last().text == "4"
    finally:
        c.shutdown()


def corrupt_overflow_page_of(path: Path, marker: bytes) -> None:
    """Overwrite the next-page pointer of the overflow page holding `marker`: reading that
    message fails with "database disk image is malformed", the rest of the file is fine."""
    data = bytearray(path.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    at = data.index(marker)
    page = at // page_size
    data[page * page_size:page * page_size + 4] = b"\xff\xff\xff\x7f"
    path.write_bytes(bytes(data))


def test_opening_a_damaged_chat_clears_the_view_and_files_nothing_there(qtbot, tmp_path):
    """Issue 19.3: the previous chat stayed in view, was sent to the model, and new messages went
    into the damaged chat."""
    path = tmp_path / "h.sqlite3"
    s = ChatStore(path)
    good = s.create_conversation("good")
    s.add_message(good.id, StoredMessage("user", "a question from the good chat"))
    bad = s.create_conversation("damaged")
    s.add_message(bad.id, StoredMessage("user", "x" * 20000 + "MARKER-IN-OVERFLOW" + "y" * 20000))
    s.close()
    corrupt_overflow_page_of(path, b"MARKER-IN-OVERFLOW")
    store = ChatStore(path, verify=False)  # damage that appears after start
    session = ScriptedSession()
    c = ChatController(store, EngineWorker(loader=scripted_loader(session)), flush_ms=10)
    with qtbot.waitSignal(c.model_ready, timeout=5000):
        c.load_model("/nowhere")
    try:
        c.open_conversation(good.id)
        assert c.model.rowCount() == 1
        with qtbot.waitSignal(c.history_error, timeout=2000) as sig:
            c.open_conversation(bad.id)
        assert sig.args[0].startswith("This chat can't be opened:") and "damaged" in sig.args[0]
        assert c.current_id == -1 and c.model.rowCount() == 0
        assert c.send("a new question")
        qtbot.waitUntil(lambda: not c.busy, timeout=5000)
        assert [m["content"] for m in session.calls[-1]["messages"]] == ["a new question"]
        assert c.current_id not in (good.id, bad.id)
        assert [m.text for m in store.messages(good.id)] == ["a question from the good chat"]
    finally:
        c.shutdown()
        store.close()


def test_an_answer_that_cant_be_saved_stays_on_screen_and_the_app_stays_usable(qtbot, store, clock):
    """Issue 19.4: disk full at the end of an answer left the app busy for good, answer lost."""
    long_answer = "A long answer. " * 20000   # ~300 kB: more pages than the database may grow
    session = ScriptedSession(script=answer_script(final=long_answer, pieces=8), clock=clock)
    c = ChatController(store, EngineWorker(loader=scripted_loader(session), clock=clock), flush_ms=10)
    with qtbot.waitSignal(c.model_ready, timeout=5000):
        c.load_model("/nowhere")
    try:
        conv = store.create_conversation("x")
        c.open_conversation(conv.id)
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count={pages + 8}")  # SQLite's own "database or disk is full"
        assert c.send("write a lot")
        qtbot.waitUntil(lambda: not c.busy, timeout=10000)
        shown = c.model.last()
        assert shown.text == long_answer and shown.state == "done"
        assert "This answer wasn't saved (the disk is full" in shown.notice
        store._db.execute("PRAGMA max_page_count=1073741823")  # space freed: carry on
        session.script = answer_script(final="Short.")
        assert c.send("and now?")
        qtbot.waitUntil(lambda: not c.busy, timeout=10000)
        assert [m.text for m in store.messages(conv.id)][-2:] == ["and now?", "Short."]
    finally:
        c.shutdown()


def test_a_message_that_cant_be_saved_is_not_sent_and_not_lost(qtbot, controller, store):
    conv = store.create_conversation("x")
    controller.open_conversation(conv.id)
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count={pages}")
    with qtbot.waitSignal(controller.history_error, timeout=2000) as sig:
        assert not controller.send("q" * 50000)   # False: the window keeps the text in the composer
    assert "couldn't be saved" in sig.args[0] and not controller.busy and controller.model.rowCount() == 0


KILLED_APP = """
import sys, time
sys.path.insert(0, sys.argv[2])
from PySide6.QtCore import QCoreApplication, QTimer
from app.controller import ChatController
from app.store import ChatStore
from app.worker import EngineWorker
from scripted import ScriptedSession, answer_script, scripted_loader
app = QCoreApplication([])
store = ChatStore(sys.argv[1])
session = ScriptedSession(script=answer_script(final="word " * 5000, pieces=5000), delay=0.002)
c = ChatController(store, EngineWorker(loader=scripted_loader(session)), flush_ms=10)
def ready(_name):
    c.send("first question")
c.model_ready.connect(ready)
said = []
def watch():
    # once the first answer is saved and the second is streaming (and saved once), tell the parent
    rows = store.messages(store.conversations()[0].id) if store.conversations() else []
    if len(rows) == 2 and rows[1].state == "done" and not c.busy:
        c.send("second question")
    if len(rows) == 4 and rows[3].state == "streaming" and len(rows[3].text) > 20 and not said:
        said.append(1)
        print("streaming", flush=True)
t = QTimer(); t.timeout.connect(watch); t.start(20)
session.script = answer_script(final="The first answer.")
def longer():
    session.script = answer_script(final="word " * 5000, pieces=5000)
c.busy_changed.connect(lambda busy: (not busy) and longer())
c.load_model("/nowhere")
app.exec()
"""


def test_kill_9_while_the_app_streams_keeps_every_finished_message(qtbot, tmp_path):
    """Issue 18: kill -9 mid-answer; on restart the finished messages are there and the
    interrupted answer is kept and marked."""
    path = tmp_path / "h.sqlite3"
    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
    proc = subprocess.Popen([sys.executable, "-c", KILLED_APP, str(path), str(Path(__file__).parent)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        line = proc.stdout.readline().strip()
        assert line == "streaming"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    store = ChatStore(path)
    c = ChatController(store, EngineWorker(loader=scripted_loader(ScriptedSession())), flush_ms=10)
    try:
        (conv,) = store.conversations()
        c.open_conversation(conv.id)
        rows = c.model.messages()
        assert [(m.role, m.text) for m in rows[:3]] == [("user", "first question"), ("assistant", "The first answer."),
                                                         ("user", "second question")]
        assert rows[1].state == "done"
        assert rows[3].state == "interrupted" and rows[3].notice == INTERRUPTED_NOTICE
        assert rows[3].text.startswith("word word ")
    finally:
        c.shutdown()
        store.close()


def test_while_streaming_the_answer_is_saved_as_it_grows(qtbot, store, clock):
    session = ScriptedSession(script=answer_script(final="piece " * 400, pieces=400), delay=0.005)
    c = ChatController(store, EngineWorker(loader=scripted_loader(session)), flush_ms=10)
    with qtbot.waitSignal(c.model_ready, timeout=5000):
        c.load_model("/nowhere")
    try:
        assert c.send("go")
        conv = c.current_id

        def saved_partly():
            rows = store.messages(conv)
            return len(rows) == 2 and rows[1].state == "streaming" and rows[1].text.startswith("piece ")
        qtbot.waitUntil(saved_partly, timeout=10000)
        c.open_conversation(conv)  # reopening mid-answer shows it once, not twice
        assert c.model.rowCount() == 2 and c.model.last().streaming
        qtbot.waitUntil(lambda: not c.busy, timeout=20000)
        rows = store.messages(conv)
        assert len(rows) == 2 and rows[1].state == "done" and rows[1].text == "piece " * 400
    finally:
        c.shutdown()


SECOND_LAUNCH = """
import sys
from PySide6.QtCore import QCoreApplication
from app.single_instance import SingleInstance
app = QCoreApplication([])
second = SingleInstance(sys.argv[1])
print(second.primary, second.ask_primary_to_show(), flush=True)
"""


def test_a_second_launch_brings_the_first_to_the_front(qtbot, tmp_path):
    """Issue 19.5: two instances on one history misfiled chats; now the second hands over."""
    from app.single_instance import SingleInstance
    path = tmp_path / "history.sqlite3"
    first = SingleInstance(path)
    assert first.primary
    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
    try:
        with qtbot.waitSignal(first.activated, timeout=10000):
            proc = subprocess.Popen([sys.executable, "-c", SECOND_LAUNCH, str(path)], stdout=subprocess.PIPE,
                                    text=True, cwd=ROOT, env=env)
        out, _ = proc.communicate(timeout=10)
        assert out.split() == ["False", "True"]
        store = ChatStore(path, lock=first.lock)
        assert store.exclusive   # the first instance keeps the right to purge
        store.close()
        assert first.lock.held and not SingleInstance(path).primary  # until the instance itself ends
    finally:
        first.close()
    assert "PySide6.QtNetwork" not in sys.modules  # the app bundle leaves QtNetwork out
    again = SingleInstance(path)  # the lock goes with the instance
    assert again.primary
    again.close()


def test_the_window_shows_the_repair_notice_at_start(qtbot, tmp_path):
    from app.history_notices import connect_history_notices
    from app.ui.main_window import MainWindow
    path = tmp_path / "h.sqlite3"
    path.write_bytes(b"definitely not sqlite" * 50)
    store = ChatStore(path)
    c = ChatController(store, EngineWorker(loader=scripted_loader(ScriptedSession())))
    window = MainWindow(c)
    qtbot.addWidget(window)
    try:
        connect_history_notices(c, window)
        assert window.history_box.isVisible() and "damaged" in window.history_box.text()
        window.history_box.accept()
        c.open_conversation(12345)  # gone: no error, just an empty view
        c.history_error.emit("This chat can't be opened: it is damaged.")   # what a damaged chat reports
        assert window.history_box.isVisible() and window.history_box.text().startswith("This chat can't be opened")
    finally:
        c.shutdown()
        store.close()


def test_launching_the_app_again_hands_over_to_the_running_one(qtbot, tmp_path):
    """`python -m app` while an instance holds the history: it brings that one forward and exits 0."""
    from app.single_instance import SingleInstance
    home = tmp_path / "home"
    first = SingleInstance(home / "history.sqlite3")
    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen", GPT_OSS_CHAT_HOME=str(home))
    try:
        with qtbot.waitSignal(first.activated, timeout=20000):
            proc = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.wait(20) == 0
        assert not (home / "history.sqlite3").exists()  # the second launch never opened the history
    finally:
        if proc.poll() is None:
            proc.kill()
        first.close()


def test_settings_that_cant_be_saved_still_apply_and_say_so(qtbot, controller, store):
    from app.settings import Settings
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count={pages}")
    with qtbot.waitSignal(controller.history_error, timeout=2000) as sig:
        controller.save_settings(Settings(developer="Be brief. " * 2000))
    assert "disk is full" in sig.args[0] and controller.settings.developer.startswith("Be brief.")


def test_the_too_long_sentences_name_the_part_to_shorten():
    from app.context_notice import too_long_notice, trimmed_notice
    base = {"context_length": 8192, "answer_tokens": 4096, "budget": 4096, "system_tokens": 60,
            "instructions_tokens": 2500, "message_tokens": 2400, "message_chars": 10000}
    assert "don't fit together" in too_long_notice(dict(base, culprit="both"))
    assert "developer instructions in Settings are 2,500 tokens" in too_long_notice(dict(base, culprit="instructions"))
    msg = too_long_notice(dict(base, culprit="message", message_tokens=9000, message_chars=20000))
    assert "20,000 characters (9,000 tokens)" in msg and "at most about 1,536 tokens" in msg
    assert trimmed_notice(0) == "" and "oldest message no longer" in trimmed_notice(1)
