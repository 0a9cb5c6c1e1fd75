"""engine.prompt_store: conversations' caches on disk across restarts, on real tiny checkpoints.

A "restart" is a new model object, a new session and a new store on the same folder. Bad files
(another model, corrupt, truncated, an interrupted write) are deleted with a log line and the
reply is prefilled instead: the logits always equal a fresh prefill's.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from engine import load_model
from engine.generate import SamplingParams
from engine.harmony import render_prompt
from engine.memory import Policy
from engine.prompt_cache import PromptCache
from engine.prompt_store import PromptStore
from engine.session import ChatSession, Done
from engine.tokenizer import load_tokenizer
from engine.tools import Tool
from models.tiny import write_tiny_checkpoint
from models.tokenizer_json import shared_o200k_harmony_folder

GREEDY = SamplingParams(temperature=0.0)
DATE = "2026-11-22"
WEATHER = [Tool("get_weather", "Weather in a city", {"type": "object", "properties": {"city": {"type": "string"}}})]


def chat_folder(path: Path, seed: int = 0) -> Path:
    write_tiny_checkpoint(path, layers=2, experts=4, hidden=64, seed=seed, vocab=201088)
    shutil.copy(shared_o200k_harmony_folder() / "tokenizer.json", path / "tokenizer.json")
    return path


def U(text):
    return {"role": "user", "content": text}


def A(text, channel="final"):
    return {"role": "assistant", "content": text, "channel": channel}


def CALL(city):
    return {"role": "assistant", "channel": "commentary", "recipient": "functions.get_weather",
            "content": f'{{"city": "{city}"}}', "content_type": "json"}


def RESULT(text):
    return {"role": "tool", "name": "functions.get_weather", "channel": "commentary", "content": text}


def open_session(folder, cache_dir, kv_bits=8, budget=10**9, disk=4 * 10**9):
    model = load_model(folder, dtype="float32", policy=Policy(embed_on_cpu=True, kv_bits=kv_bits))
    store = PromptStore(cache_dir, folder, disk)
    return ChatSession(model, load_tokenizer(folder), context_length=8192,
                       prompt_cache=PromptCache(model.make_cache, budget_bytes=budget, store=store))


def reply(session, chat, **kw):
    events = list(session.reply(chat, sampling=GREEDY, max_tokens=3, date=DATE, tools=WEATHER, **kw))
    assert isinstance(events[-1], Done)
    return events[-1]


def last_logits(session, ids):
    reused = session.prepare(ids)
    logits = np.array(session.model(mx.array([ids[-1:]]), cache=session.cache)[0, -1])
    session.held.append(ids[-1])
    return reused, logits


def long_chat():
    """Tool calls, a regenerate and an edit on the way: the conversation's cache is rewound and forked."""
    return [
        [U("What is the weather in Paris and in Rome? " * 6)],
        [CALL("Paris"), RESULT("Sunny, 24 C " * 4)],
        [CALL("Rome"), RESULT("Cloudy, 19 C " * 4)],
        [A("Paris is sunny and Rome is cloudy."), U("And tomorrow, in Oslo? " * 5)],
        [CALL("Oslo"), RESULT("Snow, -3 C " * 4)],
        [A("Oslo will be snowy."), U("Thanks, and which city is the warmest? " * 4)],
    ]


def run_long_chat(session):
    chat = []
    for step, part in enumerate(long_chat()):
        chat += part
        reply(session, chat)
        if step == 2:
            reply(session, chat)  # regenerate: a rewind
        if step == 3:
            edited = chat[:-1] + [U("And tomorrow, in Bergen?")]
            reply(session, edited)  # an edit: a fork
    return chat


def test_restored_from_disk_gives_bit_identical_logits_to_the_live_cache(tmp_path, enc):
    folder = chat_folder(tmp_path / "model")
    live = open_session(folder, tmp_path / "cache")
    chat = run_long_chat(live)
    live.close()  # the app quits: every conversation in memory is written
    assert list((tmp_path / "cache").glob("*/*.safetensors"))

    restarted = open_session(folder, tmp_path / "cache")
    chat = chat + [A("Rome and Paris are warmer."), U("One more question about Paris.")]
    ids = render_prompt(chat, enc, date=DATE, tools=[t for t in _tools(enc)])
    reused_disk, from_disk = last_logits(restarted, ids)
    reused_live, live_logits = last_logits(live, ids)
    assert reused_disk == reused_live > 300
    np.testing.assert_array_equal(from_disk, live_logits)
    assert restarted.conversation.from_disk or any(c.from_disk for c in restarted.prompt_cache.conversations)


def _tools(enc):
    from engine.structured import reply_setup

    return reply_setup(enc, WEATHER)[0]


def test_a_full_precision_cache_restores_within_the_8bit_error(tmp_path, enc):
    folder = chat_folder(tmp_path / "model")
    live = open_session(folder, tmp_path / "cache", kv_bits=None)
    chat = [U("a long question about rivers and lakes " * 12)]
    reply(live, chat)
    live.close()
    restarted = open_session(folder, tmp_path / "cache", kv_bits=None)
    chat += [A("an answer"), U("a follow-up")]
    ids = render_prompt(chat, enc, date=DATE, tools=_tools(enc))
    reused, got = last_logits(restarted, ids)
    want = np.array(restarted.model(mx.array([ids]), cache=restarted.model.make_cache())[0, -1])
    assert reused > 100
    assert np.abs(got - want).max() / want.std() < 0.05 and got.argmax() == want.argmax()


def test_model_folder_replaced_under_a_cached_conversation(tmp_path, enc, caplog):
    folder = chat_folder(tmp_path / "model", seed=0)
    first = open_session(folder, tmp_path / "cache")
    chat = [U("a question about the sea " * 10)]
    reply(first, chat)
    first.close()
    shutil.rmtree(folder)
    chat_folder(folder, seed=1)  # same path, other weights
    with caplog.at_level(logging.WARNING, logger="engine.prompt_store"):
        second = open_session(folder, tmp_path / "cache")
    assert "another model" in caplog.text
    assert not list((tmp_path / "cache").glob("*/*.safetensors"))
    chat += [A("an answer"), U("more")]
    ids = render_prompt(chat, enc, date=DATE, tools=_tools(enc))
    reused, got = last_logits(second, ids)
    want = np.array(second.model(mx.array([ids]), cache=second.model.make_cache())[0, -1])
    assert reused == 0
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("damage", ["flip a byte of the keys", "truncate"])
def test_corrupt_or_truncated_file_is_deleted_and_the_prompt_prefilled(tmp_path, enc, caplog, damage):
    folder = chat_folder(tmp_path / "model")
    first = open_session(folder, tmp_path / "cache")
    chat = [U("a question about mountains " * 10)]
    reply(first, chat)
    first.close()
    (path,) = list((tmp_path / "cache").glob("*/*.safetensors"))
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[:len(data) * 2 // 3]
    else:
        data[-len(data) // 3] ^= 0x40  # inside the tensors, after the header
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="engine.prompt_store"):
        second = open_session(folder, tmp_path / "cache")
        chat += [A("an answer"), U("more")]
        ids = render_prompt(chat, enc, date=DATE, tools=_tools(enc))
        reused, got = last_logits(second, ids)
    assert "deleting" in caplog.text and not path.exists()
    want = np.array(second.model(mx.array([ids]), cache=second.model.make_cache())[0, -1])
    assert reused == 0
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_disk_budget_keeps_the_most_recently_used_files(tmp_path, enc):
    folder = chat_folder(tmp_path / "model")
    probe = open_session(folder, tmp_path / "probe")
    reply(probe, [U("chat 0 " + "z " * 60)])
    probe.close()
    one = sum(p.stat().st_size for p in (tmp_path / "probe").glob("*/*.safetensors"))
    session = open_session(folder, tmp_path / "cache", budget=0, disk=int(2.5 * one))  # memory: only the one in use
    chats = [[U(f"chat {i} " + "z " * 60)] for i in range(4)]
    for chat in chats:
        reply(session, chat)
    session.close()
    files = list((tmp_path / "cache").glob("*/*.safetensors"))
    assert len(files) == 2 and sum(p.stat().st_size for p in files) <= 2.5 * one
    restarted = open_session(folder, tmp_path / "cache")
    system = len(render_prompt([], enc, date=DATE, tools=_tools(enc))) - 2  # what every chat shares
    for i, chat in enumerate(chats):
        ids = render_prompt(chat + [A("x"), U("y")], enc, date=DATE, tools=_tools(enc))
        reused, _ = last_logits(restarted, ids)
        assert (reused > system) == (i >= 2), (i, reused, system)  # the two most recent survived


def test_writing_never_blocks_a_reply(tmp_path, enc, monkeypatch):
    """The writer is held on purpose: conversations leave memory (budget 0) and replies go on."""
    folder = chat_folder(tmp_path / "model")
    session = open_session(folder, tmp_path / "cache", budget=0)
    store = session.prompt_cache.store
    release, writing = threading.Event(), threading.Event()
    real = store._write

    def held(*args):
        writing.set()
        release.wait(60)
        real(*args)

    monkeypatch.setattr(store, "_write", held)
    for i in range(3):
        assert reply(session, [U(f"chat {i} " + "w " * 30)]).stats.generated_tokens == 3
    assert writing.wait(10) and not list((tmp_path / "cache").glob("*/*.safetensors"))
    release.set()
    store.wait()
    assert len(list((tmp_path / "cache").glob("*/*.safetensors"))) == 2


WRITER = r'''
import sys
from engine.prompt_store import PromptStore
from engine import load_model
from engine.memory import Policy
from engine.prompt_cache import PromptCache
from engine.session import ChatSession
from engine.tokenizer import load_tokenizer
from engine.generate import SamplingParams
import engine.prompt_store as ps

import builtins, time

ps.WRITE_BLOCK = 2048  # many small, slowed writes: the kill lands in the middle of a file


class SlowFile:
    def __init__(self, fh):
        self.fh = fh
    def write(self, data):
        time.sleep(0.01)
        return self.fh.write(data)
    def __getattr__(self, name):
        return getattr(self.fh, name)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return self.fh.__exit__(*exc)


ps.open = lambda *a, **k: SlowFile(builtins.open(*a, **k))  # the store's writes only
folder, cache = sys.argv[1], sys.argv[2]
model = load_model(folder, dtype="float32", policy=Policy(embed_on_cpu=True, kv_bits=8))
store = PromptStore(cache, folder)
session = ChatSession(model, load_tokenizer(folder), prompt_cache=PromptCache(model.make_cache, budget_bytes=0, store=store))
i = 0
while True:
    list(session.reply([{"role": "user", "content": f"chat {i} " + "k " * 400}],
                       sampling=SamplingParams(temperature=0.0), max_tokens=1))
    i += 1
'''


def _partly_written(cache: Path) -> bool:
    """A .tmp a few blocks in (each write is slowed in the subprocess: many more are to come)."""
    for tmp in cache.glob("*/*.tmp"):
        try:
            if tmp.stat().st_size >= 4096:
                return True
        except FileNotFoundError:  # renamed just now
            pass
    return False


def test_kill_9_while_a_file_is_written_leaves_no_bad_file(tmp_path, enc, caplog):
    folder = chat_folder(tmp_path / "model")
    cache = tmp_path / "cache"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(folder), str(cache)], env=env)
    try:
        deadline = time.monotonic() + 240
        while not (len(list(cache.glob("*/*.safetensors"))) >= 2 and _partly_written(cache)):
            assert proc.poll() is None and time.monotonic() < deadline, "the writer never got going"
        os.kill(proc.pid, signal.SIGKILL)  # while the .tmp is being written
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert list(cache.glob("*/*.tmp"))  # the write really was cut
    with caplog.at_level(logging.WARNING, logger="engine.prompt_store"):
        session = open_session(folder, cache)
    assert "interrupted write" in caplog.text and not list(cache.glob("*/*.tmp"))
    store = session.prompt_cache.store
    assert len(store.entries) >= 2
    for entry in list(store.entries.values()):  # every finished file loads and resumes exactly
        ids = entry.tokens + [200006]
        text = enc.decode(entry.tokens)
        assert text.startswith("<|start|>system")
        reused, got = last_logits(session, ids)
        assert reused == len(entry.tokens)
        want = np.array(session.model(mx.array([ids]), cache=session.model.make_cache())[0, -1])
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
