"""The app on the real engine (tiny random gpt-oss checkpoint + the o200k_harmony tokenizer):
load through the model manager's checks, chat, effort in the rendered prompt, history, and
chatting with every socket blocked."""
import shutil
import socket

import pytest

pytest.importorskip("mlx.core")

from app.controller import ChatController  # noqa: E402
from app.engine_bridge import load_engine  # noqa: E402
from app.model_manager import check_folder  # noqa: E402
from app.store import ChatStore  # noqa: E402
from app.worker import EngineWorker  # noqa: E402


@pytest.fixture(scope="module")
def tiny_folder(tiny_chat_folder):
    return tiny_chat_folder


class PromptSpy:
    """Wraps load_engine and records the text of every prompt the session renders."""

    def __init__(self):
        self.prompts: list[str] = []

    def __call__(self, folder, context_length):
        loaded = load_engine(folder, context_length)
        session, enc = loaded, loaded.enc
        fit = session.fit_prompt

        def spy(*a, **k):
            ids, trimmed = fit(*a, **k)
            self.prompts.append(enc.decode(ids))
            return ids, trimmed
        session.fit_prompt = spy
        return loaded


def make_controller(qtbot, store, folder, loader):
    c = ChatController(store, EngineWorker(loader=loader))
    c.settings.max_tokens = 12
    with qtbot.waitSignal(c.model_ready, timeout=60000):
        c.load_model(str(folder))
    return c


def wait_idle(qtbot, c):
    qtbot.waitUntil(lambda: not c.busy, timeout=60000)


def test_real_engine_chat_effort_and_history(qtbot, tmp_path, tiny_folder):
    assert check_folder(tiny_folder) is None
    spy = PromptSpy()
    store = ChatStore(tmp_path / "h.sqlite3")
    c = make_controller(qtbot, store, tiny_folder, spy)
    assert c.model_name
    c.set_effort("high")
    assert c.send("Hello, tiny model")
    wait_idle(qtbot, c)
    answer = c.model.last()
    assert answer.role == "assistant" and answer.state in ("done", "error") and answer.state != "streaming"
    assert answer.stats.get("generated_tokens", 0) >= 1 and answer.stats.get("ttft_s", 0) > 0
    assert "Reasoning: high" in spy.prompts[-1] and "Hello, tiny model" in spy.prompts[-1]
    c.set_effort("low")
    assert c.regenerate()
    wait_idle(qtbot, c)
    assert "Reasoning: low" in spy.prompts[-1]
    saved = store.messages(c.current_id)
    assert [m.role for m in saved] == ["user", "assistant"] and saved[1].effort == "low"
    c.shutdown()


def test_chat_works_with_the_network_blocked(qtbot, tmp_path, tiny_folder, monkeypatch):
    def no_network(*a, **k):
        raise OSError("network blocked by the test")
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    store = ChatStore(tmp_path / "h.sqlite3")
    c = make_controller(qtbot, store, tiny_folder, load_engine)
    assert c.send("Are you offline?")
    wait_idle(qtbot, c)
    assert c.model.last().stats.get("generated_tokens", 0) >= 1
    c.shutdown()


def test_a_broken_folder_is_refused_in_one_sentence(qtbot, tmp_path, tiny_folder):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_folder, broken)
    shard = sorted(broken.glob("model-*.safetensors"))[0]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    problem = check_folder(broken)
    assert problem and "truncated" in problem and "\n" not in problem
    store = ChatStore(tmp_path / "h.sqlite3")
    c = ChatController(store, EngineWorker())
    with qtbot.waitSignal(c.model_failed, timeout=60000) as sig:
        c.load_model(str(broken))
    assert "Traceback" not in sig.args[0] and sig.args[0].count("\n") == 0
    c.shutdown()


def test_the_app_loads_with_the_memory_plans_policy(tiny_folder):
    import numpy as np

    from engine.memory import plan

    expected = plan(str(tiny_folder), 4096)
    loaded = load_engine(str(tiny_folder), 4096)
    # The plan keeps the embedding table in the memory-mapped checkpoint: the app must follow it.
    assert expected.policy.embed_on_cpu
    assert isinstance(loaded.model.embed.table, np.memmap)
    assert loaded.prefill_chunk == expected.prefill_chunk
