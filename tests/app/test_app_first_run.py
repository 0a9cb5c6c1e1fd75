"""First run through the setup page: download from a fake hub on loopback (progress, pause,
resume), then the model loads; and the memory planner's refusal reaches the user in words."""
from types import SimpleNamespace

from PySide6.QtCore import Qt

from fake_hub import FakeHub
from scripted import ScriptedSession, scripted_loader
from test_app_download import FILES, MODEL

import app.launcher as launcher_mod
from app.controller import ChatController
from app.launcher import Launcher
from app.worker import EngineWorker


def test_setup_page_download_pause_resume_then_chat(qtbot, store, app_home, tmp_path, monkeypatch):
    monkeypatch.setattr(launcher_mod, "demo_folder", lambda: tmp_path / "no-demo")
    monkeypatch.setattr("app.model_manager.demo_folder", lambda: tmp_path / "no-demo")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    c = ChatController(store, EngineWorker(loader=scripted_loader(ScriptedSession())))
    with FakeHub(FILES) as hub:
        hub.delay = 0.05   # ~2.5 s for the shard: time to press Cancel
        lc = Launcher(c, endpoint=hub.endpoint)
        qtbot.addWidget(lc.window)
        lc.downloader.model = MODEL
        lc.start()
        setup = lc.window.setup
        assert lc.window.stack.currentWidget() is setup
        qtbot.mouseClick(setup.download_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: setup.progress.value() > 100, timeout=10000)
        assert " of " in setup.progress_label.text()
        with qtbot.waitSignal(lc.downloader.cancelled, timeout=10000):
            qtbot.mouseClick(setup.cancel_button, Qt.MouseButton.LeftButton)
        assert "Resume" in setup.download_button.text() and "paused" in setup.message.text()
        hub.delay = 0.0
        with qtbot.waitSignal(c.model_ready, timeout=10000):
            qtbot.mouseClick(setup.download_button, Qt.MouseButton.LeftButton)
        resumed = [r for r in hub.requests if r[0] == "GET" and r[1] == "model.safetensors"]
        assert resumed[-1][2] and resumed[-1][2].startswith("bytes=")
    assert lc.window.stack.currentIndex() == 1
    assert c.settings.model_folder == str(lc.download_dest)
    lc.shutdown()
    c.shutdown()


def test_memory_refusal_is_shown_in_words(monkeypatch, tmp_path):
    import engine.memory
    from app.engine_bridge import LoadRefused, load_engine
    monkeypatch.setattr(engine.memory, "plan", lambda folder, ctx, *budget: SimpleNamespace(
        fits=False, reason="gpt-oss-20b needs at least 12.1 GB but only 10.5 GB is available", peak_bytes=12 * 10**9))
    try:
        load_engine(str(tmp_path), 8192)
    except LoadRefused as e:
        msg = str(e)
    else:
        raise AssertionError("a plan that does not fit must refuse")
    assert msg.startswith("Not enough memory to load this model: gpt-oss-20b needs at least 12.1 GB")
    assert "Close other apps" in msg and "\n" not in msg
