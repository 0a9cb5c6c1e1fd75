"""The app's "Local API server" switch, end to end: the real engine on the demo model, the official
openai client against the server the app starts, the chat window and the API sharing one engine
thread (taking turns, never generating at once, each answering as it would alone), the count of
requests served, the port freed when switched off, the switch remembered and on again at launch."""
from __future__ import annotations

import gc
import os
import socket
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import httpx
import openai
import pytest

pytest.importorskip("mlx.core")

from app.controller import ChatController  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.worker import EngineWorker  # noqa: E402
from models.registry import demo_folder  # noqa: E402

pytestmark = pytest.mark.skipif(not (demo_folder() / "config.json").is_file(), reason="models/demo not exported")

API_Q, API_A = "What is 486 + 357?", "843"          # both answered right by the demo model at high effort
WINDOW_Q, WINDOW_A = "Multiply 248 by 7.", "1736"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Nothing listens there and a server may take it (as servers do, with SO_REUSEADDR: the
    connections the last one closed may linger in TIME_WAIT for a minute)."""
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=120)


class InThread:
    """Run a blocking client call beside the Qt event loop (which the engine's signals need)."""

    def __init__(self, fn):
        self.result = self.error = None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn):
        try:
            self.result = fn()
        except Exception as e:  # handed to the test, which shows it
            self.error = e

    def wait(self, qtbot, timeout=120000):
        qtbot.waitUntil(lambda: not self.thread.is_alive(), timeout=timeout)
        if self.error is not None:
            raise self.error
        return self.result


def ask_api(url: str, question: str = API_Q):
    """(final, reasoning) of a non-streaming chat completion at high effort."""
    got = client(url).chat.completions.create(model="demo", messages=[{"role": "user", "content": question}],
                                              reasoning_effort="high")
    message = got.choices[0].message
    return message.content, message.model_extra["reasoning"]


class ReleaseCheckingLoader:
    """app.engine_bridge.load_engine, noting at each load whether the previous model is still alive
    (the server must not keep it while the next one loads: two gpt-oss models don't fit)."""

    def __init__(self):
        self.previous = None
        self.alive_at_load: list[bool] = []

    def __call__(self, folder, context_length):
        from app.engine_bridge import load_engine

        if self.previous is not None:
            gc.collect()
            self.alive_at_load.append(self.previous() is not None)
        loaded = load_engine(folder, context_length)
        self.previous = weakref.ref(loaded)
        return loaded


@pytest.fixture
def demo_app(qtbot, store):
    """A controller on the real engine with the demo model loaded, and the app's API server (off)."""
    from app.api_server import LocalApiServer

    loader = ReleaseCheckingLoader()
    c = ChatController(store, EngineWorker(loader=loader), flush_ms=10)
    c.settings.context_length = 2048
    c.settings.api_port = free_port()
    with qtbot.waitSignal(c.model_ready, timeout=60000):
        c.load_model(str(demo_folder()))
    c.set_effort("high")
    api = LocalApiServer(c)
    yield c, api, loader
    api.stop(wait=5)
    c.shutdown()


def test_the_switch_serves_the_model_through_the_openai_client_and_frees_the_port(qtbot, demo_app, store,
                                                                                 tiny_chat_folder):
    from app.ui.settings_dialog import SettingsDialog

    c, api, loader = demo_app
    port = c.settings.api_port
    dialog = SettingsDialog(c.settings, greedy=c.greedy, api=api)
    qtbot.addWidget(dialog)
    dialog.show()
    section = dialog.api_section
    assert not section.switch.isChecked() and not section.url_row.isVisible()
    section.switch.click()
    url = section.url.text()
    assert url == f"http://127.0.0.1:{port}/v1" and section.url_row.isVisible()
    assert "127.0.0.1" in section.reach.text() and section.reach.isVisible()
    assert not api.running        # until Save
    dialog.accept()
    dialog.show()                 # the same widgets, as they look now that it runs
    assert api.running and section.url.text() == url
    assert section.served.text() == "0 requests served" and not section.note.isVisible()
    # Nothing clipped once the URL row appears: every wrapped line and the row fit in the dialog.
    qtbot.waitUntil(lambda: dialog.height() >= dialog.heightForWidth(dialog.width()), timeout=2000)
    assert all(lab.height() >= lab.heightForWidth(lab.width()) for lab in (section.about, section.reach))
    assert section.copy_button.height() >= section.copy_button.sizeHint().height()
    section.copy_button.click()
    from PySide6.QtGui import QGuiApplication
    assert QGuiApplication.clipboard().text() == url
    assert Settings.load(store).api_server is True

    assert [m.id for m in InThread(lambda: client(url).models.list().data).wait(qtbot)] == ["demo"]
    content, reasoning = InThread(lambda: ask_api(url)).wait(qtbot)
    assert API_A in content and reasoning and "<|" not in content
    qtbot.waitUntil(lambda: section.served.text() == "1 request served", timeout=5000)

    section.switch.click()
    dialog.accept()
    assert not section.url_row.isVisible() and Settings.load(store).api_server is False
    qtbot.waitUntil(lambda: port_is_free(port), timeout=5000)
    with pytest.raises(openai.APIConnectionError):
        client(url).models.list()
    # Switched off, the server lets go of the model: loading another one doesn't keep two alive.
    with qtbot.waitSignal(c.model_ready, timeout=60000):
        c.load_model(str(tiny_chat_folder))
    assert loader.alive_at_load == [False]


class ReplySpy:
    """Records, for every reply the shared session generates, when it ran and on which thread."""

    def __init__(self, session):
        self.spans: list[tuple[float, float, int]] = []
        self.started = 0
        reply = session.reply

        def spy(*a, **k):
            start = time.monotonic()
            self.started += 1
            yield from reply(*a, **k)
            self.spans.append((start, time.monotonic(), threading.get_ident()))
        session.reply = spy

    def assert_one_at_a_time_on_one_thread_but_this_one(self) -> None:
        """Window replies run on the engine thread by construction: one thread for all means the API's too."""
        spans = sorted(self.spans)
        threads = {t for _, _, t in spans}
        assert len(threads) == 1 and threading.get_ident() not in threads
        for (_, end, _), (start, _, _) in zip(spans, spans[1:]):
            assert end <= start, "a window reply and an API request generated at the same time"


def window_answer(c):
    last = c.model.last()
    assert last.role == "assistant" and last.state == "done"
    return last.text, last.analysis


def test_window_and_api_take_turns_on_one_engine_thread_and_answer_as_each_alone(qtbot, demo_app):
    c, api, _ = demo_app
    spy = ReplySpy(c.worker.engine)
    assert api.start()
    url = api.url

    # The API first; the window's send is taken at once and waits its turn.
    api_call = InThread(lambda: ask_api(url))
    qtbot.waitUntil(lambda: spy.started == 1, timeout=60000)
    c.new_conversation()
    assert c.send(WINDOW_Q)
    assert not spy.spans, "the API's answer was still being written when the window sent"
    api_first = api_call.wait(qtbot)
    qtbot.waitUntil(lambda: not c.busy, timeout=120000)
    window_second = window_answer(c)

    # The window first; the API's request waits for it.
    c.new_conversation()
    assert c.send(WINDOW_Q)
    api_call = InThread(lambda: ask_api(url))
    qtbot.waitUntil(lambda: api.waiting == 1, timeout=10000)   # queued behind the window's answer
    assert c.busy
    qtbot.waitUntil(lambda: not c.busy, timeout=120000)
    window_first = window_answer(c)
    api_second = api_call.wait(qtbot)

    # Each alone.
    api_alone = InThread(lambda: ask_api(url)).wait(qtbot)
    c.new_conversation()
    assert c.send(WINDOW_Q)
    qtbot.waitUntil(lambda: not c.busy, timeout=120000)
    window_alone = window_answer(c)

    assert API_A in api_alone[0] and WINDOW_A in window_alone[0]
    assert api_first == api_second == api_alone
    assert window_first == window_second == window_alone
    assert len(spy.spans) == 6
    spy.assert_one_at_a_time_on_one_thread_but_this_one()
    qtbot.waitUntil(lambda: api.served == 3, timeout=5000)


def test_the_switch_is_remembered_and_on_at_launch_on_the_next_free_port(qtbot, store, app_home, tmp_path,
                                                                        monkeypatch, tiny_chat_folder):
    from app.launcher import Launcher
    from app.ui.settings_dialog import SettingsDialog

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))  # no gpt-oss: the demo loads
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    saved = Settings(context_length=2048, api_server=True, api_port=port)
    saved.save(store)

    loader = ReleaseCheckingLoader()
    c = ChatController(store, EngineWorker(loader=loader), flush_ms=10)
    lc = Launcher(c)
    qtbot.addWidget(lc.window)
    try:
        with qtbot.waitSignal(c.model_ready, timeout=60000):
            lc.start()
        api = lc.api_server
        assert api.running and api.port != port
        assert api.note == f"Port {port} is in use by another program, so the server listens on port {api.port}."
        dialog = SettingsDialog(c.settings, greedy=c.greedy, api=api)
        qtbot.addWidget(dialog)
        dialog.show()
        assert dialog.api_section.switch.isChecked() and dialog.api_section.url.text() == api.url
        assert dialog.api_section.note.isVisible() and str(port) in dialog.api_section.note.text()
        health = InThread(lambda: httpx.get(api.url.removesuffix("/v1") + "/health", timeout=30).json()).wait(qtbot)
        assert health["status"] == "ok" and health["model"] == "demo"
        assert lc.window.status_api.isVisibleTo(lc.window)
        assert lc.window.status_api.text() == f"API on 127.0.0.1:{api.port} · 0 requests served"

        # Another model in the window: the API serves that one (attached again), under its own id.
        with qtbot.waitSignal(c.model_ready, timeout=60000):
            c.load_model(str(tiny_chat_folder))
        tiny = tiny_chat_folder.name
        assert loader.alive_at_load == [False], "the server kept the old model while the new one loaded"
        assert [m.id for m in InThread(lambda: client(api.url).models.list().data).wait(qtbot)] == [tiny]
        shown = []   # the status bar while the request runs (the window's slot is connected first)
        api.answering_changed.connect(lambda _on: shown.append(lc.window.status_api.text()))
        # Greedy: the tiny model's weights are random, and sampled it sometimes wrote a reserved token
        # into its reply's header (a 502, seen 1 run in 4 of this file beside its neighbours).
        got = InThread(lambda: client(api.url).chat.completions.create(
            model=tiny, messages=[{"role": "user", "content": "Hi"}], max_tokens=4, temperature=0)).wait(qtbot)
        assert got.usage.completion_tokens >= 1
        where = f"API on 127.0.0.1:{api.port}"
        qtbot.waitUntil(lambda: lc.window.status_api.text() == f"{where} · 1 request served", timeout=5000)
        assert shown[0] == f"{where} · answering a request"
        with pytest.raises(openai.NotFoundError):
            InThread(lambda: client(api.url).chat.completions.create(
                model="demo", messages=[{"role": "user", "content": "Hi"}])).wait(qtbot)
    finally:
        lc.shutdown()
        c.shutdown()
        taken.close()
    assert port_is_free(api.port)


def test_the_app_starts_without_loading_the_server_or_mlx_until_switched_on():
    root = Path(__file__).resolve().parents[2]
    code = ("import sys, app.launcher, app.ui.settings_dialog, app.api_server; "
            "print(sorted(m for m in ('mlx.core', 'uvicorn', 'fastapi', 'server.app') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(root), "QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_with_no_model_in_the_app_the_api_says_so_in_one_sentence(qtbot, store):
    from app.api_server import LocalApiServer

    c = ChatController(store, EngineWorker(), flush_ms=10)
    c.settings.api_port = free_port()
    api = LocalApiServer(c)
    try:
        assert api.start()
        with pytest.raises(openai.InternalServerError) as raised:
            InThread(lambda: client(api.url).chat.completions.create(
                model="none", messages=[{"role": "user", "content": "Hi"}])).wait(qtbot)
        assert raised.value.status_code == 503
        message = raised.value.body["message"]
        assert "choose or download one in the app" in message and "\n" not in message
    finally:
        api.stop(wait=5)
        c.shutdown()


def test_web_pages_reach_the_api_only_from_the_origins_settings_allow(qtbot, store):
    """A page the user visits can't make the app's model work (any Origin is refused), unless
    Settings lists its origin; the answer then carries the CORS header its page needs."""
    from app.api_server import LocalApiServer

    c = ChatController(store, EngineWorker(), flush_ms=10)
    c.settings.api_port = free_port()
    c.settings.api_allowed_origins = ["http://localhost:3000"]
    api = LocalApiServer(c)
    try:
        assert api.start()
        models = api.url + "/models"
        foreign = InThread(lambda: httpx.get(models, headers={"Origin": "https://evil.example"})).wait(qtbot)
        assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "origin_not_allowed"
        page = InThread(lambda: httpx.get(models, headers={"Origin": "http://localhost:3000"})).wait(qtbot)
        assert page.status_code == 200 and page.headers["access-control-allow-origin"] == "http://localhost:3000"
        simple = InThread(lambda: httpx.post(api.url + "/chat/completions", content=b'{"model": "none"}', headers={
            "Origin": "http://localhost:3000", "Content-Type": "text/plain"})).wait(qtbot)
        assert simple.status_code == 415  # even an allowed page sends JSON as JSON
    finally:
        api.stop(wait=5)
        c.shutdown()
