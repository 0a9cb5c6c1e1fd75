"""Issue 29, "server settings in the app": the port, an API key, this computer or the network (only
with a key), and a request log. The app's own server (app.api_server.LocalApiServer) on a free port,
reached with the official openai client and raw httpx; the model is scripted (its words don't matter
here) except in the request-log test, which needs the real demo model's token counts."""
from __future__ import annotations

import socket
import threading

import httpx
import openai
import pytest

from app.api_access import EVERYWHERE, NEEDS_KEY, lan_address, new_api_key
from app.settings import Settings

QUESTION = "What is 486 + 357?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def off_thread(qtbot, fn, timeout=60000):
    """fn() on a thread of its own while the Qt loop runs (the engine's signals need it)."""
    out = {}

    def run():
        try:
            out["value"] = fn()
        except Exception as e:  # handed to the test
            out["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    qtbot.waitUntil(lambda: not t.is_alive(), timeout=timeout)
    if "error" in out:
        raise out["error"]
    return out["value"]


def get(qtbot, url, key=None, **headers):
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return off_thread(qtbot, lambda: httpx.get(url, headers=headers, timeout=30))


def ask(qtbot, url, key, stream=False, model="gpt-oss"):
    """(answer, usage) from the official openai client; "gpt-oss" is the alias every model answers to."""
    client = openai.OpenAI(base_url=url, api_key=key or "unused", max_retries=0, timeout=120)

    def call():
        got = client.chat.completions.create(model=model, messages=[{"role": "user", "content": QUESTION}],
                                             stream=stream, **({"stream_options": {"include_usage": True}}
                                                               if stream else {}))
        if not stream:
            return got.choices[0].message.content, got.usage
        text, usage = "", None
        for chunk in got:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
            usage = chunk.usage or usage
        return text, usage
    return off_thread(qtbot, call)


@pytest.fixture
def api(qtbot, controller):
    from app.api_server import LocalApiServer

    controller.settings.api_port = free_port()
    server = LocalApiServer(controller)
    yield server
    server.stop(wait=5)


def test_the_key_is_enforced_and_a_new_key_swaps_in_without_a_restart(qtbot, api, controller, store):
    port, key = controller.settings.api_port, new_api_key()
    assert api.apply(True, port, key, False) == ""
    models = api.url + "/models"
    assert api.url == f"http://127.0.0.1:{port}/v1"
    missing = get(qtbot, models)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_api_key"
    assert get(qtbot, models, "sk-local-wrong").status_code == 401
    assert get(qtbot, models, key).status_code == 200
    with pytest.raises(openai.AuthenticationError):
        ask(qtbot, api.url, "sk-local-wrong")
    text, _ = ask(qtbot, api.url, key)
    assert text == "Hello **there**."
    saved = Settings.load(store)
    assert (saved.api_server, saved.api_port, saved.api_key, saved.api_network) == (True, port, key, False)

    server, thread = api._server, api._thread
    other = new_api_key()
    assert api.apply(True, port, other, False) == ""
    assert api._server is server and api._thread is thread, "a new key restarted the server"
    assert get(qtbot, models, key).status_code == 401 and get(qtbot, models, other).status_code == 200
    assert api.apply(True, port, "", False) == ""       # no key: any program on this computer
    assert get(qtbot, models).status_code == 200 and api._server is server


def test_this_computer_only_refuses_a_page_s_host_and_is_not_on_the_network(qtbot, api, controller):
    port = controller.settings.api_port
    assert api.apply(True, port, "", False) == ""
    refused = get(qtbot, api.url + "/models", Host="evil.example")   # a web page's name rebound to 127.0.0.1
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "host_not_allowed"
    lan = lan_address()
    if lan.count(".") == 3:     # a network address: nothing answers there
        assert not listening(lan, port)


def test_the_network_needs_a_key_and_with_one_answers_at_the_network_address(qtbot, api, controller, store):
    port = controller.settings.api_port
    assert api.apply(True, port, "", True) == NEEDS_KEY
    assert not api.running and not listening("127.0.0.1", port)
    assert Settings.load(store).api_network is False
    controller.settings.api_network = True      # a hand-edited settings file: refused at launch too
    assert api.start() is False and api.note == NEEDS_KEY and not api.running
    controller.settings.api_network = False

    key = new_api_key()
    assert api.apply(True, port, key, True) == ""
    assert api.host == EVERYWHERE and api.on_network
    lan = lan_address()
    assert api.url == f"http://{lan}:{port}/v1"
    if lan.count(".") != 3:
        pytest.skip("this machine has no network address to reach the server at")
    assert get(qtbot, api.url + "/models").status_code == 401
    answered = get(qtbot, api.url + "/models", key)          # Host is the network address: not refused
    assert answered.status_code == 200
    text, _ = ask(qtbot, api.url, key)
    assert text == "Hello **there**."
    assert Settings.load(store).api_network is True
    # Back to this computer only: the network address stops answering.
    assert api.apply(True, port, key, False) == ""
    assert api.host == "127.0.0.1" and not listening(lan, port)
    assert get(qtbot, f"http://127.0.0.1:{port}/v1/models", key).status_code == 200


def test_a_port_in_use_is_one_sentence_and_the_old_server_keeps_running(qtbot, api, controller, store):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    busy = taken.getsockname()[1]
    try:
        problem = api.apply(True, busy, "", False)       # switched on at a taken port: stays off
        assert problem.startswith(f"Port {busy} is in use by another program: choose another port")
        assert problem.count(".") == 1 and "\n" not in problem and not api.running
        assert Settings.load(store).api_server is False

        first = controller.settings.api_port
        assert api.apply(True, first, "", False) == ""
        problem = api.apply(True, busy, "", False)       # moved to a taken port: the old one keeps running
        assert problem.endswith(f"; the server keeps listening on port {first}.") and "Traceback" not in problem
        assert api.running and api.port == first
        assert get(qtbot, api.url + "/models").status_code == 200
        assert Settings.load(store).api_port == first

        second = free_port()
        assert api.apply(True, second, "", False) == ""   # a free one: moved there, the first let go
        assert api.port == second and get(qtbot, api.url + "/models").status_code == 200
        qtbot.waitUntil(lambda: not listening("127.0.0.1", first), timeout=5000)
        assert api.apply(False, second, "", False) == ""
        qtbot.waitUntil(lambda: not listening("127.0.0.1", second), timeout=5000)
        assert Settings.load(store).api_server is False
    finally:
        taken.close()


def test_the_request_log_records_what_was_answered_never_the_key_or_bodies(qtbot, store):
    """The real demo model: token counts are the engine's, equal to what the client was told."""
    pytest.importorskip("mlx.core")
    from app.api_server import LocalApiServer
    from app.controller import ChatController
    from app.worker import EngineWorker
    from models.registry import demo_folder

    c = ChatController(store, EngineWorker(), flush_ms=10)
    c.settings.context_length = 2048
    with qtbot.waitSignal(c.model_ready, timeout=60000):
        c.load_model(str(demo_folder()))
    api = LocalApiServer(c)
    try:
        key, port = new_api_key(), free_port()
        assert api.apply(True, port, key, False) == ""
        assert get(qtbot, api.url + "/models").status_code == 401
        text, usage = ask(qtbot, api.url, key, model="demo")
        streamed, streamed_usage = ask(qtbot, api.url, key, stream=True, model="demo")
        assert text and streamed and usage.prompt_tokens > 0 and streamed_usage.completion_tokens > 0
        wrong = off_thread(qtbot, lambda: httpx.post(api.url + "/chat/completions", timeout=30, json={
            "model": "gpt-4o", "messages": [{"role": "user", "content": QUESTION}]},
            headers={"Authorization": f"Bearer {key}"}))
        assert wrong.status_code == 404
        qtbot.waitUntil(lambda: len(api.requests.records()) == 4, timeout=5000)
        no_key, plain, stream, unknown = api.requests.records()
        assert (no_key.method, no_key.path, no_key.status, no_key.failed) == ("GET", "/v1/models", 401, True)
        for r in (plain, stream):
            assert (r.method, r.path, r.model, r.status, r.failed) == ("POST", "/v1/chat/completions", "demo", 200,
                                                                       False)
            assert r.client == "127.0.0.1" and r.duration_s > 0
        assert (plain.tokens_in, plain.tokens_out) == (usage.prompt_tokens, usage.completion_tokens)
        assert (stream.tokens_in, stream.tokens_out) == (streamed_usage.prompt_tokens,
                                                         streamed_usage.completion_tokens)
        assert (unknown.model, unknown.status, unknown.tokens_in) == ("gpt-4o", 404, None)
        assert api.requests.failures == 2
        everything = repr(api.requests.records())
        for secret in (key, QUESTION, text[:20], "Bearer"):
            assert secret not in everything
        api.requests.clear()
        assert api.requests.records() == [] and api.requests.failures == 0
    finally:
        api.stop(wait=5)
        c.shutdown()


def test_naming_the_port_it_already_took_at_launch_keeps_it_running(qtbot, api, controller):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        controller.settings.api_port = taken.getsockname()[1]
        assert api.start() and api.port != controller.settings.api_port    # the next free one, at launch
        server, port = api._server, api.port
        assert api.apply(True, port, "", False) == ""
        assert api._server is server and api.port == port and controller.settings.api_port == port
    finally:
        taken.close()
