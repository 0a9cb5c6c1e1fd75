"""Fixtures for the app tests: an isolated app-data folder, a controller on a scripted session."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from scripted import FakeClock, ScriptedSession, scripted_loader  # noqa: E402


@pytest.fixture
def app_home(tmp_path, monkeypatch):
    """Point the app's data folder at a temporary one."""
    home = tmp_path / "home"
    monkeypatch.setenv("GPT_OSS_CHAT_HOME", str(home))
    return home


@pytest.fixture
def store(tmp_path):
    from app.store import ChatStore
    s = ChatStore(tmp_path / "history.sqlite3")
    yield s
    s.close()


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def scripted(clock):
    return ScriptedSession(clock=clock)


@pytest.fixture
def controller(qtbot, store, scripted, clock):
    """A ChatController whose engine thread runs a ScriptedSession; the model is already loaded."""
    from app.controller import ChatController
    from app.worker import EngineWorker
    c = ChatController(store, EngineWorker(loader=scripted_loader(scripted), clock=clock), flush_ms=10)
    with qtbot.waitSignal(c.model_ready, timeout=5000):
        c.load_model("/nowhere")
    yield c
    c.shutdown()
