"""The model picker (issue 29, defect 11 and "A model picker"): the models on this computer with
their memory plans, switching at any time without losing the working model or anything the user
wrote, unloading, added folders that persist, broken folders in one sentence, and the local API
following the window's model. Real engine, the shipped demo model and the tiny chat checkpoint."""
from __future__ import annotations

import gc
import shutil
import weakref

import pytest
from PySide6.QtGui import QAction

pytest.importorskip("mlx.core")

from app.controller import ChatController  # noqa: E402
from app.engine_bridge import LoadRefused, load_engine  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.worker import EngineWorker  # noqa: E402
from models.registry import DEMO, demo_folder  # noqa: E402

pytestmark = pytest.mark.skipif(not (demo_folder() / "config.json").is_file(), reason="models/demo not exported")
BIG = 64 * 10**9


def rows(dialog) -> dict[str, object]:
    """Folder -> the row widget shown for it."""
    out = {}
    for i in range(dialog.list.count()):
        item = dialog.list.item(i)
        out[item.data(0x0100)] = dialog.list.itemWidget(item)
    return out


def select(dialog, folder) -> None:
    from app.model_picker import same_folder
    for i in range(dialog.list.count()):
        if same_folder(dialog.list.item(i).data(0x0100), folder):
            dialog.list.setCurrentRow(i)
            return
    raise AssertionError(f"{folder} is not listed")


class WatchingLoader:
    """app.engine_bridge.load_engine, noting whether the previous model is alive when the next one
    loads; a folder named in `refuse` fails to load the way a real refusal does (LoadRefused)."""

    def __init__(self, refuse=()):
        self.previous = None
        self.alive_at_load: list[bool] = []
        self.refuse = {str(f) for f in refuse}

    def __call__(self, folder, context_length):
        if self.previous is not None:
            gc.collect()
            self.alive_at_load.append(self.previous() is not None)
        if str(folder) in self.refuse:
            raise LoadRefused(f"The model in {folder} could not be loaded (its weights are damaged); "
                              "download it again or choose another folder.")
        loaded = load_engine(folder, context_length)
        self.previous = weakref.ref(loaded)
        return loaded


@pytest.fixture
def window(qtbot, store, app_home, tmp_path, monkeypatch):
    """The main window on the real engine with the demo model loaded (no gpt-oss on this computer)."""
    from app.ui.main_window import MainWindow

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    loader = WatchingLoader()
    c = ChatController(store, EngineWorker(loader=loader), flush_ms=10)
    c.settings.context_length = 2048
    w = MainWindow(c)
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(c.model_ready, timeout=60000):
        c.load_model(str(demo_folder()))
    w.model_picker.picker.budget = BIG     # a machine with room for both (the budget is a plan input)
    yield w, loader
    c.shutdown()


def open_picker(qtbot, w):
    dialog = w.model_picker.open()
    qtbot.waitUntil(lambda: dialog.list.count() > 0, timeout=5000)
    return dialog


def test_a_chosen_folder_leaves_the_20b_download_and_the_demo_within_reach(qtbot, store, app_home, tmp_path,
                                                                           monkeypatch, tiny_chat_folder):
    """Defect 11: once a folder was chosen the download button was gone and the demo came back only
    after a restart with the folder moved away."""
    from app.launcher import Launcher

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    Settings(context_length=2048, model_folder=str(tiny_chat_folder)).save(store)
    c = ChatController(store, EngineWorker(), flush_ms=10)
    lc = Launcher(c)
    w = lc.window
    qtbot.addWidget(w)
    w.show()
    try:
        with qtbot.waitSignal(c.model_ready, timeout=60000):
            lc.start()
        assert not c.is_demo and c.folder == str(tiny_chat_folder)
        download = [a for a in w.findChildren(QAction) if a.text().startswith("Download gpt-oss-20b")]
        assert download, "nothing in the window offers the 20b's download any more"
        download[0].trigger()
        assert w.stack.currentWidget() is w.setup and w.setup.download_button.isEnabled()
        assert w.setup.back_button.isVisibleTo(w)
        w.setup.back_button.click()

        dialog = open_picker(qtbot, w)
        select(dialog, demo_folder())
        with qtbot.waitSignal(c.model_ready, timeout=60000):
            dialog.load_button.click()
        assert c.is_demo and c.model_name == DEMO.label and w.model_badge.full_text() == DEMO.label
        qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=5000)     # done: back to the chat
        assert Settings.load(store).model_folder == str(demo_folder())   # and the demo at the next launch
        dialog = open_picker(qtbot, w)
        assert str(tiny_chat_folder) in rows(dialog), "the folder chosen at setup left the list"
        assert dialog.download_button.isVisibleTo(dialog)
    finally:
        lc.shutdown()
        c.shutdown()
    # The next launch opens the demo (the folder is still there, no need to move it away).
    again = ChatController(store, EngineWorker(), flush_ms=10)
    lc = Launcher(again)
    qtbot.addWidget(lc.window)
    try:
        with qtbot.waitSignal(again.model_ready, timeout=60000):
            lc.start()
        listed = [f for f, _ in lc.window.model_picker.picker.installed_folders()]
        assert again.is_demo and str(tiny_chat_folder) in listed
    finally:
        lc.shutdown()
        again.shutdown()


def test_the_list_shows_every_installed_model_with_its_memory_plan_and_marks_the_one_in_use(
        qtbot, window, tiny_chat_folder, app_home):
    from app.model_manager import default_download_folder
    from engine.memory import plan, read_footprint

    w, _ = window
    from app.paths import models_dir

    downloaded = default_download_folder()       # models the app downloaded (the tiny one, for speed)
    big = models_dir() / "gpt-oss-120b"
    for folder in (downloaded, big):
        shutil.copytree(tiny_chat_folder, folder)
    dialog = open_picker(qtbot, w)
    shown = rows(dialog)
    assert list(shown) == [str(demo_folder()), str(downloaded), str(big)]
    demo_row = shown[str(demo_folder())]
    assert demo_row.mark.isVisibleTo(dialog) and not shown[str(downloaded)].mark.isVisibleTo(dialog)
    fp = read_footprint(demo_folder())
    expected = plan(demo_folder(), 2048, BIG)
    assert demo_row.detail.text() == (f"Fits: about {expected.peak_bytes / 1e6:.0f} MB, all experts in memory, "
                                      f"up to {expected.context_cap:,} tokens of context")
    assert expected.context_cap == fp.max_context
    # The download stays offered while no gpt-oss-20b is installed.
    assert dialog.download_button.isVisibleTo(dialog)
    # A machine too small for a model: the row says why, it can't be loaded, the one in use stays.
    w.model_picker.picker.budget = 5 * 10**6
    dialog.refresh()
    refused = rows(dialog)[str(downloaded)].detail.text()
    assert refused.startswith("Won't fit: ") and "GB is available" in refused
    select(dialog, downloaded)
    assert not dialog.load_button.isEnabled()
    assert w.model_picker.picker.switch_to(str(downloaded)).startswith("Won't fit: ")
    assert w.c.ready and w.c.is_demo


def test_switching_loads_the_new_model_before_dropping_the_old_and_the_api_follows(qtbot, window,
                                                                                  tiny_chat_folder):
    import httpx
    from test_app_api_server import InThread, client, free_port

    from app.api_server import LocalApiServer

    w, loader = window
    c = w.c
    c.settings.api_port = free_port()
    api = LocalApiServer(c)
    w.set_api_server(api)
    try:
        assert api.start()
        assert [m.id for m in InThread(lambda: client(api.url).models.list().data).wait(qtbot)] == ["demo"]
        dialog = open_picker(qtbot, w)
        assert dialog.add_folder(str(tiny_chat_folder)) is None
        select(dialog, tiny_chat_folder)
        with qtbot.waitSignal(c.model_ready, timeout=60000):
            dialog.load_button.click()
        assert loader.alive_at_load == [True], "the working model was dropped before the new one loaded"
        gc.collect()
        assert loader.previous() is not None and c.worker.engine is loader.previous()
        tiny = tiny_chat_folder.name
        assert c.folder == str(tiny_chat_folder) and not c.is_demo
        assert [m.id for m in InThread(lambda: client(api.url).models.list().data).wait(qtbot)] == [tiny]
        got = InThread(lambda: client(api.url).chat.completions.create(
            model=tiny, messages=[{"role": "user", "content": "Hi"}], max_tokens=4,
            temperature=0)).wait(qtbot)   # greedy: a sampled random model may break the chat format (a 502)
        assert got.usage.completion_tokens >= 1

        # Unload: the window says so and how to load one; the API answers in one sentence, no 500.
        w.model_picker.unload_action.trigger()
        qtbot.waitUntil(lambda: c.worker.engine is None and not c.ready, timeout=30000)
        qtbot.waitUntil(lambda: w.model_badge.full_text() == "No model loaded", timeout=5000)
        assert "No model is loaded" in w.messages.placeholder.text() and w.status_memory.text() == ""
        assert w.status_model.text().startswith("No model loaded")
        assert not w.composer.send_button.isEnabled()
        reply = InThread(lambda: httpx.post(api.url + "/chat/completions", timeout=30, json={
            "model": tiny, "messages": [{"role": "user", "content": "Hi"}]})).wait(qtbot)
        assert reply.status_code == 503 and "unloaded" in reply.json()["error"]["message"]
        # ... and loading one from the picker again serves it.
        dialog = open_picker(qtbot, w)
        select(dialog, demo_folder())
        with qtbot.waitSignal(c.model_ready, timeout=60000):
            dialog.load_button.click()
        assert [m.id for m in InThread(lambda: client(api.url).models.list().data).wait(qtbot)] == ["demo"]
    finally:
        api.stop(wait=5)


def test_a_gone_or_broken_folder_says_why_in_one_sentence_and_never_costs_the_working_model(
        qtbot, window, tiny_chat_folder, tmp_path, store):
    from app.model_picker import ModelPicker

    w, _ = window
    broken, gone = tmp_path / "broken-model", tmp_path / "gone-model"
    shutil.copytree(tiny_chat_folder, broken)
    shutil.copytree(tiny_chat_folder, gone)
    dialog = open_picker(qtbot, w)
    for folder in (broken, gone):
        assert dialog.add_folder(str(folder)) is None
    (broken / "config.json").write_text("{ not json")
    shutil.rmtree(gone)
    dialog.refresh()
    shown = rows(dialog)
    assert shown[str(broken)].detail.text() == f"The config.json in {broken} is damaged; download the model again " \
                                               "or choose another folder."
    assert shown[str(gone)].detail.text().startswith(f"The folder {gone} does not exist")
    for folder in (broken, gone):
        select(dialog, folder)
        assert not dialog.load_button.isEnabled() and dialog.remove_button.isVisibleTo(dialog)
        why = w.model_picker.picker.switch_to(str(folder))
        assert why == shown[str(folder)].detail.text() and "Traceback" not in why
    assert w.c.ready and w.c.is_demo and w.c.worker.engine is not None
    # The added folders persist (a new picker on the same history lists them), and Remove forgets one.
    again = ModelPicker(w.c)
    assert {f for f, added in again.installed_folders() if added} == {str(broken), str(gone)}
    select(dialog, gone)
    dialog.remove_button.click()
    assert str(gone) not in rows(dialog) and again.added_folders() == [str(broken)]
    # A broken folder is never added in the first place: one sentence, nothing listed.
    dialog.add_folder(str(tmp_path / "nothing-here"))
    assert dialog.notice.text().startswith(f"The folder {tmp_path / 'nothing-here'} does not exist")
    assert again.added_folders() == [str(broken)]


def test_a_load_that_fails_keeps_the_model_in_use(qtbot, store, app_home, tmp_path, monkeypatch,
                                                   tiny_chat_folder):
    from app.ui.main_window import MainWindow

    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_chat_folder, damaged)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    loader = WatchingLoader(refuse=[damaged])
    c = ChatController(store, EngineWorker(loader=loader), flush_ms=10)
    c.settings.context_length = 2048
    w = MainWindow(c)
    qtbot.addWidget(w)
    try:
        with qtbot.waitSignal(c.model_ready, timeout=60000):
            c.load_model(str(demo_folder()))
        w.show_chat()
        picker = w.model_picker.picker
        picker.budget = BIG
        dialog = open_picker(qtbot, w)
        dialog.add_folder(str(damaged))
        select(dialog, damaged)
        with qtbot.waitSignal(picker.notice, timeout=60000) as said:
            dialog.load_button.click()
        assert said.args[0].startswith(f"gpt-oss (2 layers, 4 experts) could not be loaded, so {DEMO.label} is "
                                       "still in use: ")
        assert dialog.notice.text() == said.args[0] and dialog.isVisible()
        assert c.ready and c.is_demo and c.folder == str(demo_folder()) and w.composer.send_button.isEnabled()
        assert Settings.load(store).model_folder != str(damaged)

        # Memory for one model only: the sheet says the demo goes first and comes back if the new one fails.
        assert picker.memory_in_use > 0
        for _ in range(20):   # the plan's peak shrinks with the budget (a smaller prefill chunk): look for one
            choice = picker.choice(str(damaged))
            if choice.fits and not picker.room_for_both(choice):
                break
            picker.budget = choice.peak_bytes + picker.memory_in_use // 2 if choice.fits else picker.budget * 2
        assert choice.fits and not picker.room_for_both(choice)
        dialog.refresh()
        select(dialog, damaged)
        dialog.load_button.click()
        assert dialog.load_button.text() == "Unload and Load" and c.ready
        tiny = "gpt-oss (2 layers, 4 experts)"
        assert dialog.notice.text() == (f"There isn't memory for both models, so {DEMO.label} is unloaded first to "
                                        f"make room for {tiny}; if {tiny} can't be loaded, {DEMO.label} is loaded "
                                        "again.")
        with qtbot.waitSignal(picker.notice, timeout=60000):
            dialog.load_button.click()
        qtbot.waitUntil(lambda: c.ready and c.is_demo, timeout=60000)
        assert loader.alive_at_load[-2:] == [False, False]   # dropped first, then the demo again
        assert w.stack.currentIndex() == 1, "the window left the chat for the setup page meanwhile"
    finally:
        c.shutdown()


def test_switching_while_an_answer_is_written_asks_then_stops_it_and_keeps_every_word(qtbot, store, clock):
    from scripted import ScriptedSession, answer_script, scripted_loader

    from app.ui.main_window import MainWindow

    session = ScriptedSession(answer_script(final="word " * 400, think_s=0, pieces=400), clock=clock, delay=0.02)
    c = ChatController(store, EngineWorker(loader=scripted_loader(session), clock=clock), flush_ms=10)
    w = MainWindow(c)
    qtbot.addWidget(w)
    try:
        with qtbot.waitSignal(c.model_ready, timeout=5000):
            c.load_model("/scripted")
        picker = w.model_picker.picker
        picker.budget = BIG
        assert c.send("Write a long answer.")
        qtbot.waitUntil(lambda: len(c.model.last().text) > 20, timeout=10000)
        w.composer.input.setPlainText("My next question, half typed")
        dialog = open_picker(qtbot, w)
        select(dialog, demo_folder())
        dialog.load_button.click()                      # first click: says what will happen
        assert c.busy and dialog.load_button.text() == "Stop and Load"
        assert "stopped first" in dialog.notice.text()
        with qtbot.waitSignal(c.model_ready, timeout=30000):
            dialog.load_button.click()
        answer = c.model.last()
        assert answer.state == "stopped" and answer.text.startswith("word word")
        assert store.messages(c.current_id)[-1].text == answer.text
        assert c.folder == str(demo_folder()) and w.composer.input.toPlainText() == "My next question, half typed"
    finally:
        c.shutdown()


def test_a_folder_chosen_on_the_setup_page_loads_beside_the_model_in_use(qtbot, store, app_home, tmp_path,
                                                                       monkeypatch, tiny_chat_folder):
    """The setup page's "Choose a folder that has it…" with the demo in use: the demo stays until the
    chosen model is in, and stays in use when the chosen one can't be loaded."""
    from app.launcher import Launcher

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_chat_folder, damaged)
    loader = WatchingLoader(refuse=[damaged])
    Settings(context_length=2048).save(store)
    c = ChatController(store, EngineWorker(loader=loader), flush_ms=10)
    lc = Launcher(c)
    w = lc.window
    qtbot.addWidget(w)
    try:
        with qtbot.waitSignal(c.model_ready, timeout=60000):
            lc.start()
        assert c.is_demo
        lc.show_setup_page()
        with qtbot.waitSignal(w.model_picker.picker.notice, timeout=60000):
            w.setup.folder_chosen.emit(str(damaged))
        assert c.ready and c.is_demo and loader.alive_at_load == [True]
        assert w.setup.message.text().startswith("gpt-oss (2 layers, 4 experts) could not be loaded, so ")
        with qtbot.waitSignal(c.model_ready, timeout=60000):
            w.setup.folder_chosen.emit(str(tiny_chat_folder))
        assert loader.alive_at_load == [True, True] and c.folder == str(tiny_chat_folder)
        assert w.stack.currentIndex() == 1 and Settings.load(store).model_folder == str(tiny_chat_folder)
    finally:
        lc.shutdown()
        c.shutdown()
