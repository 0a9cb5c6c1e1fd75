"""The setup page offers gpt-oss-120b only where its memory plan fits this Mac, with the download
size and the plan shown before anything is downloaded; taking the offer downloads and loads it."""
from PySide6.QtCore import Qt

from fake_hub import FakeHub
from scripted import ScriptedSession, scripted_loader
from test_app_download import FILES, MODEL

import app.launcher as launcher_mod
import engine.memory
from app.controller import ChatController
from app.launcher import Launcher
from app.worker import EngineWorker
from engine.memory import mac_budget


def _launcher(qtbot, store, monkeypatch, tmp_path, ram_gb, endpoint="", on_mac=True):
    monkeypatch.setattr(launcher_mod, "ON_MAC", on_mac)
    monkeypatch.setattr(engine.memory, "device_budget", lambda: mac_budget(ram_gb))
    monkeypatch.setattr(launcher_mod, "demo_folder", lambda: tmp_path / "no-demo")
    monkeypatch.setattr("app.model_manager.demo_folder", lambda: tmp_path / "no-demo")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    c = ChatController(store, EngineWorker(loader=scripted_loader(ScriptedSession())))
    lc = Launcher(c, endpoint=endpoint)
    qtbot.addWidget(lc.window)
    lc.start()
    qtbot.waitUntil(lambda: lc.big_offer_checked, timeout=10000)   # measured on the engine thread
    return c, lc


def test_120b_is_offered_on_a_32gb_mac_with_its_plan_and_size(qtbot, store, app_home, tmp_path, monkeypatch):
    c, lc = _launcher(qtbot, store, monkeypatch, tmp_path, 32)
    setup = lc.window.setup
    assert setup.big_card.isVisibleTo(lc.window)
    assert setup.big_button.text() == "Download gpt-oss-120b (65.3 GB)"
    plan = setup.big_plan.text()
    # The planner's own figures for a 32 GB Mac (engine.memory: 34 of 128 expert slots, 8k context).
    assert "34 of its 128 experts per layer" in plan and "of the 21 GB" in plan and "65.3 GB" in plan
    assert not lc.big_dest.exists()  # shown before anything is downloaded
    # No download thread until one is asked for: an idle one left by a launcher that isn't shut
    # down aborted the interpreter at exit ("QThread: Destroyed while thread 'download' is running").
    assert getattr(lc, "big_downloader", None) is None
    lc.shutdown()
    c.shutdown()


def test_the_memory_budget_is_measured_off_the_gui_thread(qtbot, store, app_home, tmp_path, monkeypatch):
    """device_budget imports MLX (Metal's working set): on the GUI thread it delayed the first window."""
    import threading
    threads = []
    monkeypatch.setattr(launcher_mod, "ON_MAC", True)
    monkeypatch.setattr(engine.memory, "device_budget", lambda: threads.append(threading.current_thread()) or mac_budget(32))
    c = ChatController(store, EngineWorker(loader=scripted_loader(ScriptedSession())))
    lc = Launcher(c)
    qtbot.addWidget(lc.window)
    qtbot.waitUntil(lambda: lc.big_offer_checked, timeout=10000)
    assert threads and threads[0] is not threading.main_thread()
    assert lc.window.setup.big_card.isVisibleTo(lc.window)      # and the offer still arrives
    lc.shutdown()
    c.shutdown()


def test_120b_is_not_offered_where_it_does_not_fit(qtbot, store, app_home, tmp_path, monkeypatch):
    c, lc = _launcher(qtbot, store, monkeypatch, tmp_path, 24)
    assert not lc.window.setup.big_card.isVisibleTo(lc.window)
    assert getattr(lc, "big_downloader", None) is None
    lc.shutdown()
    c.shutdown()


def test_the_120b_download_pauses_and_resumes_from_its_own_button(qtbot, store, app_home, tmp_path, monkeypatch):
    with FakeHub(FILES) as hub:
        hub.delay = 0.05  # time to press Cancel
        c, lc = _launcher(qtbot, store, monkeypatch, tmp_path, 96, endpoint=hub.endpoint)
        lc._big_worker().model = MODEL
        setup = lc.window.setup
        qtbot.mouseClick(setup.big_button, Qt.MouseButton.LeftButton)
        assert setup.big_button.text() == "Downloading…" and setup.cancel_button.isVisibleTo(lc.window)
        assert "gpt-oss-20b" in setup.download_button.text()  # the other offer is left as it was
        qtbot.waitUntil(lambda: setup.progress.value() > 100, timeout=10000)
        with qtbot.waitSignal(lc.big_downloader.cancelled, timeout=10000):
            qtbot.mouseClick(setup.cancel_button, Qt.MouseButton.LeftButton)
        assert "gpt-oss-120b paused" in setup.message.text()
        assert setup.big_button.text() == "Download gpt-oss-120b (65.3 GB)" and setup.big_button.isEnabled()
        hub.delay = 0.0
        with qtbot.waitSignal(c.model_ready, timeout=15000):
            qtbot.mouseClick(setup.big_button, Qt.MouseButton.LeftButton)
        resumed = [r for r in hub.requests if r[0] == "GET" and r[1] == "model.safetensors"]
        assert resumed[-1][2] and resumed[-1][2].startswith("bytes=")
    assert c.settings.model_folder == str(lc.big_dest)
    lc.shutdown()
    c.shutdown()


def test_taking_the_offer_downloads_and_loads_it(qtbot, store, app_home, tmp_path, monkeypatch):
    with FakeHub(FILES) as hub:
        c, lc = _launcher(qtbot, store, monkeypatch, tmp_path, 96, endpoint=hub.endpoint)
        lc._big_worker().model = MODEL  # a small stand-in for the 65 GB of shards
        setup = lc.window.setup
        assert "every expert kept in memory" in setup.big_plan.text()
        with qtbot.waitSignal(c.model_ready, timeout=15000):
            qtbot.mouseClick(setup.big_button, Qt.MouseButton.LeftButton)
            assert not setup.download_button.isEnabled()
    assert c.settings.model_folder == str(lc.big_dest)
    assert (lc.big_dest / "model.safetensors").read_bytes() == FILES["model.safetensors"]
    lc.shutdown()
    c.shutdown()


def test_120b_is_never_offered_off_a_mac(qtbot, store, app_home, tmp_path, monkeypatch):
    """Issue 29 item 12: on Linux the page offered the 120b "on this Mac", sized by the RAM free at
    that moment. Not a Mac: no offer, whatever the memory."""
    c, lc = _launcher(qtbot, store, monkeypatch, tmp_path, 192, on_mac=False)
    assert not lc.window.setup.big_card.isVisibleTo(lc.window)
    assert "Mac" not in lc.window.setup.big_plan.text()
    lc.shutdown()
    c.shutdown()


def test_on_linux_the_launcher_does_not_think_it_is_a_mac():
    import sys
    assert launcher_mod.ON_MAC == (sys.platform == "darwin")
