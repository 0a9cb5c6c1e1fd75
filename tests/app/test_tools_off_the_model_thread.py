"""Issue 25.3: tools run off the model's thread. A Python cell running in chat A holds up neither an
answer in chat B nor a local API request; Stop in the window ends its answer at once even while an
API request holds the model, and meanwhile the window says it waits for the model, not "Thinking".
Scripted model, real sandboxed kernel, real local API server (uvicorn) and the openai client."""
from __future__ import annotations

import socket
import threading

import openai
import pytest
from scripted import ScriptedSession, answer_script, call_script, scripted_loader

from app import tool_steps
from app.controller import ChatController
from app.tools_worker import ToolsWorker
from app.ui.message_view import thinking_text
from app.worker import EngineWorker
from engine.python_tool import Limits, PythonToolPool

# Says it started, then runs until the test lets it finish (a condition, not a clock).
CELL = """
import os, time
open('started', 'w').close()
while not os.path.exists('go'):
    time.sleep(0.02)
print('done')
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GatedSession(ScriptedSession):
    """The first reply (the API's) holds the model until `gate` is set."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.gate = threading.Event()

    def reply(self, *a, **k):
        if len(self.calls) == 0:
            self.started.set()
            assert self.gate.wait(30)
        yield from super().reply(*a, **k)


@pytest.fixture
def app_with_api(qtbot, store, tmp_path):
    from app.api_server import LocalApiServer

    made = []

    def make(session):
        pool = PythonToolPool(tmp_path / "python", Limits(timeout=60.0))
        c = ChatController(store, EngineWorker(loader=scripted_loader(session)), flush_ms=10, tools=ToolsWorker(pool))
        c.settings.api_port = free_port()
        with qtbot.waitSignal(c.model_ready, timeout=5000):
            c.load_model("/nowhere")
        api = LocalApiServer(c)
        assert api.start()
        made.append((c, api, pool))
        return c, api, pool

    yield make
    for c, api, pool in made:
        api.stop(wait=5)
        c.shutdown()
        pool.close_all()


def ask_in_thread(url: str) -> dict:
    out: dict = {}

    def run():
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=60)
        out["text"] = client.chat.completions.create(model="nowhere", messages=[{"role": "user", "content": "hi"}]
                                                     ).choices[0].message.content
    out["thread"] = threading.Thread(target=run, daemon=True)
    out["thread"].start()
    return out


def test_a_running_cell_holds_up_neither_another_chat_nor_the_api(qtbot, app_with_api):
    session = ScriptedSession(queue=[call_script(CELL), answer_script(final="B's answer."),
                                     answer_script(final="The API's answer."), answer_script(final="A's answer.")])
    c, api, pool = app_with_api(session)
    c.send("Run a long cell")
    chat_a = c.current_id
    qtbot.waitUntil(lambda: c.waiting_call() is not None, timeout=5000)
    assert c.answer_tool("run")
    folder = pool.folder(str(chat_a))
    qtbot.waitUntil(lambda: (folder / "started").exists(), timeout=60000)   # the cell is running now

    c.new_conversation()
    assert c.can_send() and c.send("Meanwhile, in chat B")
    qtbot.waitUntil(lambda: c.turn is None, timeout=10000)
    assert c.model.last().text == "B's answer."
    api_call = ask_in_thread(api.url)
    qtbot.waitUntil(lambda: not api_call["thread"].is_alive(), timeout=30000)
    assert api_call["text"] == "The API's answer."
    step = tool_steps.calls(c.turns[chat_a].message.steps)[0]
    assert step.status == "running" and not (folder / "go").exists()   # both answered while the cell ran

    (folder / "go").touch()
    qtbot.waitUntil(lambda: not c.busy, timeout=60000)
    c.open_conversation(chat_a)
    assert c.model.last().text == "A's answer." and step.result.strip() == "done"


def test_stop_ends_the_windows_answer_at_once_while_an_api_request_holds_the_model(qtbot, app_with_api):
    session = GatedSession(queue=[answer_script(final="The API's answer."), answer_script(final="never")])
    c, api, _pool = app_with_api(session)
    api_call = ask_in_thread(api.url)
    assert session.started.wait(30)            # the API's reply holds the model
    assert c.send("hi")
    qtbot.waitUntil(lambda: c.model.last().phase == "queued", timeout=2000)
    assert thinking_text(c.model.last()) == "Waiting for the model…"
    c.stop()
    assert not c.busy and c.model.last().state == "stopped"   # at once: not after the API's answer
    session.gate.set()
    qtbot.waitUntil(lambda: not api_call["thread"].is_alive(), timeout=30000)
    assert api_call["text"] == "The API's answer."
    assert len(session.calls) == 1             # the window's stopped request never reached the model
