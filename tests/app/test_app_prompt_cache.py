"""The app keeps conversations' caches in its data folder: a chat continued after a restart is
resumed from disk (the answer's reused_tokens), Settings sets the disk space and clears them."""
import pytest

pytest.importorskip("mlx.core")

from app.controller import ChatController  # noqa: E402
from app.paths import prompt_cache_dir  # noqa: E402
from app.store import ChatStore  # noqa: E402
from app.ui.settings_dialog import SettingsDialog  # noqa: E402
from app.worker import EngineWorker  # noqa: E402


def start(qtbot, store, folder):
    c = ChatController(store, EngineWorker())  # the app's own loader, which keeps the caches
    c.settings.max_tokens = 4
    with qtbot.waitSignal(c.model_ready, timeout=60000):
        c.load_model(str(folder))
    return c


def files():
    return list(prompt_cache_dir().glob("*/*.safetensors"))


def test_a_chat_continued_after_a_restart_resumes_from_disk_and_settings_clear_it(qtbot, tmp_path, app_home,
                                                                                  tiny_chat_folder):
    store = ChatStore(tmp_path / "h.sqlite3")
    c = start(qtbot, store, tiny_chat_folder)
    assert c.send("Tell me a long story about a lighthouse keeper and the sea. " * 4)
    qtbot.waitUntil(lambda: not c.busy, timeout=60000)
    first = c.model.last().stats
    chat = c.current_id
    c.shutdown()  # the app quits: the engine thread writes the conversation before it ends
    assert files()

    c = start(qtbot, store, tiny_chat_folder)  # a restart
    c.open_conversation(chat)
    assert c.send("And then?")
    qtbot.waitUntil(lambda: not c.busy, timeout=60000)
    assert c.model.last().stats.get("reused_tokens", 0) >= first["prompt_tokens"] - 1

    dialog = SettingsDialog(c.settings)
    dialog.cache_section.clear_requested.connect(c.clear_prompt_cache)
    dialog.cache_section.space.setValue(1.5)
    assert dialog.result_settings().prompt_cache_gb == 1.5
    qtbot.mouseClick(dialog.cache_section.clear_button, qtbot_left())
    qtbot.waitUntil(lambda: not files(), timeout=20000)
    c.shutdown()
    store.close()


def qtbot_left():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton
