"""MCP tool servers in the app, offscreen: a scripted model calls a tool of a real MCP server (the
SDK-written test server, over stdio); the block asks Run / Always for this tool in this chat /
Don't run; the real result goes back to the model; a server off in a chat is never called; a crash
mid-call, Stop during a slow call and an image each end as they should; the local API's clients
never see the app's MCP tools."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from scripted import ScriptedSession, answer_script, call_script, scripted_loader

from app import tool_steps
from app.controller import ChatController
from app.mcp import steps as mcp_steps
from app.worker import EngineWorker

SERVER = Path(__file__).resolve().parents[1] / "mcp" / "mcp_test_server.py"
ENTRY = {"command": sys.executable, "args": [str(SERVER), "stdio"]}
T = 60000


def mcp_call(function: str, args: dict):
    return call_script(json.dumps(args), analysis="I'll use the tool.", recipient=f"functions.{function}")


def make(qtbot, store, session):
    c = ChatController(store, EngineWorker(loader=scripted_loader(session)), flush_ms=10)
    with qtbot.waitSignal(c.model_ready, timeout=5000):
        c.load_model("/nowhere")
    assert c.mcp.add("notes", ENTRY) == ""
    return c


def window(qtbot, c):
    from app.ui.main_window import MainWindow
    w = MainWindow(c)
    qtbot.addWidget(w)
    w.show_chat()
    return w


def blocks(w):
    return w.messages.assistant_bubbles()[-1].steps.blocks()


def test_run_always_and_the_result_goes_back_to_the_model(qtbot, store):
    session = ScriptedSession(queue=[mcp_call("notes__add", {"a": 2, "b": 40}), answer_script(final="It is 42."),
                                     mcp_call("notes__add", {"a": 1, "b": 1}), answer_script(final="2."),
                                     mcp_call("notes__add", {"a": 5, "b": 5}), answer_script(final="10.")])
    c = make(qtbot, store, session)
    w = window(qtbot, c)
    chat = c.new_conversation()
    c.mcp.set_on(chat, "notes", True)
    assert c.send("Add 2 and 40 with the tool.")
    qtbot.waitUntil(lambda: c.waiting_call() is not None, timeout=T)
    offered = [t.name for t in session.calls[0]["tools"]]
    assert "notes__add" in offered and "notes__slow" in offered     # the chat's server's tools, in harmony
    block = blocks(w)[0]
    assert block.header.text() == "▾ Run add from notes?"
    assert block.always_button.text() == "Always for this tool in this chat"
    assert json.loads(block.code.text()) == {"a": 2, "b": 40}        # the arguments, before anything runs
    block.always_button.click()
    qtbot.waitUntil(lambda: not c.busy, timeout=T)
    answer = c.model.last()
    (call,) = tool_steps.calls(answer.steps)
    assert call.status == "done" and call.result == "42" and call.mcp == {"server": "notes", "tool": "add"}
    sent = session.calls[1]["messages"]
    assert sent[-2]["recipient"] == "functions.notes__add"
    assert sent[-1] == {"role": "tool", "name": "functions.notes__add", "channel": "commentary", "content": "42"}
    assert answer.text == "It is 42." and blocks(w)[0].header.text() == "▸ Ran add (notes)"

    assert c.send("And 1 + 1?")            # "Always": runs without asking
    qtbot.waitUntil(lambda: not c.busy, timeout=T)
    assert tool_steps.calls(c.model.last().steps)[0].result == "2"
    # the steps (and which server) survive reopening the chat
    c.open_conversation(chat)
    assert tool_steps.calls(c.model.messages()[1].steps)[0].mcp == {"server": "notes", "tool": "add"}

    other = c.new_conversation()           # another chat: the server is off there
    assert c.send("5 + 5?")
    qtbot.waitUntil(lambda: not c.busy, timeout=T)
    assert "tools" not in session.calls[-2]                    # not offered
    (off,) = tool_steps.calls(c.model.last().steps)
    assert off.status == "off" and off.result == mcp_steps.off_text("notes")
    assert other != chat
    c.shutdown()


def test_dont_run_crash_and_image(qtbot, store):
    session = ScriptedSession(queue=[mcp_call("notes__pid", {}), answer_script(final="Fine."),
                                     mcp_call("notes__crash", {}), answer_script(final="It broke."),
                                     mcp_call("notes__picture", {}), answer_script(final="A red dot.")])
    c = make(qtbot, store, session)
    w = window(qtbot, c)
    c.mcp.set_on(c.new_conversation(), "notes", True)
    assert c.send("Who are you?")
    qtbot.waitUntil(lambda: c.waiting_call() is not None, timeout=T)
    blocks(w)[0].decline_button.click()
    qtbot.waitUntil(lambda: not c.busy, timeout=T)
    (call,) = tool_steps.calls(c.model.last().steps)
    assert call.status == "declined" and session.calls[1]["messages"][-1]["content"] == mcp_steps.DECLINED

    assert c.send("Crash it.")
    qtbot.waitUntil(lambda: c.waiting_call() is not None, timeout=T)
    blocks(w)[0].run_button.click()
    qtbot.waitUntil(lambda: not c.busy, timeout=T)
    (call,) = tool_steps.calls(c.model.last().steps)
    assert call.problem.startswith('The MCP server "notes" stopped during the call')   # one sentence in the chat
    assert session.calls[3]["messages"][-1]["content"] == "Error: " + call.problem      # the model reads it
    assert c.model.last().text == "It broke."

    assert c.send("Show a picture.")          # the server starts again for the next call
    qtbot.waitUntil(lambda: c.waiting_call() is not None, timeout=T)
    blocks(w)[0].run_button.click()
    qtbot.waitUntil(lambda: not c.busy, timeout=T)
    (call,) = tool_steps.calls(c.model.last().steps)
    assert call.result == "[image 1: PNG, 1 KB, shown to the user]" and len(call.images) == 1
    block = blocks(w)[0]
    block.header.click()
    assert len(block.images) == 1 and block.images[0].pixmap().width() == 1
    c.shutdown()


def test_stop_during_a_slow_call(qtbot, store):
    session = ScriptedSession(queue=[mcp_call("notes__slow", {"seconds": 300})])
    c = make(qtbot, store, session)
    c.mcp.set_on(c.new_conversation(), "notes", True)
    c.mcp.allow_always(c.current_id, "notes__slow")
    assert c.send("Wait a long time.")
    qtbot.waitUntil(lambda: (s := tool_steps.open_call(c.model.last().steps)) is not None and s.status == "running",
                    timeout=T)
    c.stop()
    qtbot.waitUntil(lambda: not c.busy, timeout=10000)      # well before the call's own 120 s timeout
    (call,) = tool_steps.calls(c.model.last().steps)
    assert call.status == "stopped" and c.model.last().state == "stopped"
    c.shutdown()


def test_a_server_that_cannot_start_is_one_sentence_and_the_answer_goes_on(qtbot, store):
    session = ScriptedSession(queue=[answer_script(final="Without tools, then.")])
    c = make(qtbot, store, session)
    c.mcp.add("broken", {"command": "no-such-mcp-program-here"})
    c.mcp.set_on(c.new_conversation(), "broken", True)
    assert c.send("Hello")
    qtbot.waitUntil(lambda: not c.busy, timeout=T)
    last = c.model.last()
    assert last.text == "Without tools, then." and last.notice == (
        'The MCP server "broken" could not start: The program "no-such-mcp-program-here" was not found; '
        'put its full path in "command".')
    c.shutdown()


def test_the_local_api_does_not_offer_the_apps_mcp_servers(qtbot, store):
    import threading

    import httpx

    from app.api_server import LocalApiServer
    session = ScriptedSession(queue=[answer_script(final="Hi from the API.")])
    c = make(qtbot, store, session)
    c.mcp.set_on(None, "notes", True)                   # on for every new chat
    rendered, render = [], session.render
    session.render = lambda *a, **kw: (rendered.append(kw), render(*a, **kw))[1]   # what the server asks for
    api = LocalApiServer(c)
    api.set_enabled(True)
    qtbot.waitUntil(lambda: bool(api.running and api.url), timeout=T)
    got = {}
    t = threading.Thread(target=lambda: got.update(r=httpx.post(api.url + "/chat/completions", timeout=60, json={
        "model": "nowhere", "messages": [{"role": "user", "content": "Hi"}],
        "tools": [{"type": "function", "function": {"name": "client_tool", "parameters": {"type": "object"}}}]})))
    t.start()
    qtbot.waitUntil(lambda: not t.is_alive(), timeout=T)
    assert got["r"].status_code == 200, got["r"].text
    names = [tl.name if hasattr(tl, "name") else tl["function"]["name"] for tl in rendered[-1]["tools"]]
    assert names == ["client_tool"]                       # the client's own, nothing else
    assert c.mcp.manager.running() == []                                           # no server was started for it
    api.set_enabled(False)
    c.shutdown()


def test_the_users_own_function_keeps_its_name(qtbot, store):
    session = ScriptedSession(queue=[mcp_call("notes__add", {"a": 1, "b": 2}), answer_script(final="ok")])
    c = make(qtbot, store, session)
    s = c.settings
    s.functions = [{"name": "notes__add", "description": "Mine.", "parameters": None}]
    c.save_settings(s)
    c.mcp.set_on(c.new_conversation(), "notes", True)
    assert c.send("Add.")
    qtbot.waitUntil(lambda: c.waiting_call() is not None, timeout=T)
    names = [t.name for t in session.calls[0]["tools"]]
    assert names.count("notes__add") == 1 and any(n.startswith("notes__add_") for n in names)
    assert c.waiting_call().mcp is None               # answered by hand, as the user's function
    assert c.answer_tool("answer", "3")
    qtbot.waitUntil(lambda: not c.busy, timeout=T)
    c.shutdown()


def test_servers_stop_with_the_app(qtbot, store):
    import psutil
    session = ScriptedSession(queue=[mcp_call("notes__pid", {}), answer_script(final="ok")])
    c = make(qtbot, store, session)
    c.mcp.set_on(c.new_conversation(), "notes", True)
    c.mcp.allow_always(c.current_id, "notes__pid")
    assert c.send("Your pid?")
    qtbot.waitUntil(lambda: not c.busy, timeout=T)
    pid = int(tool_steps.calls(c.model.last().steps)[0].result)
    assert psutil.pid_exists(pid)
    c.shutdown()
    def gone():
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
    qtbot.waitUntil(gone, timeout=20000)


def test_stop_while_the_chats_servers_start(qtbot, store):
    session = ScriptedSession(queue=[answer_script(final="never asked")])
    c = make(qtbot, store, session)
    c.mcp.add("silent", {"command": sys.executable, "args": [str(SERVER), "silent"]})   # never answers
    c.mcp.set_on(c.new_conversation(), "silent", True)
    assert c.send("Hello")
    assert c.model.last().phase == "mcp"        # "Starting this chat's tool servers…", the window live
    c.stop()
    qtbot.waitUntil(lambda: not c.busy, timeout=5000)
    assert c.model.last().state == "stopped" and session.calls == []
    c.shutdown()


def test_a_call_whose_result_is_ready_at_once_still_reaches_the_answer(qtbot, store, monkeypatch):
    """A fast server can answer before the controller attaches its callback to the call's Future;
    the result must still reach the turn (it was dropped, and the answer hung: 1 run in 6 under load)."""
    session = ScriptedSession(queue=[mcp_call("notes__add", {"a": 2, "b": 40}), answer_script(final="It is 42.")])
    c = make(qtbot, store, session)
    real_call = c.mcp.call

    def already_done(*args):
        future = real_call(*args)
        future.result(timeout=30)   # the server has answered before anyone listens
        return future

    monkeypatch.setattr(c.mcp, "call", already_done)
    chat = c.new_conversation()
    c.mcp.set_on(chat, "notes", True)
    assert c.send("Add 2 and 40 with the tool.")
    qtbot.waitUntil(lambda: c.waiting_call() is not None, timeout=T)
    c.answer_tool("run")
    qtbot.waitUntil(lambda: not c.busy, timeout=T)
    (call,) = tool_steps.calls(c.model.last().steps)
    assert call.status == "done" and call.result == "42"
    assert c.model.last().text == "It is 42."
    c.shutdown()
