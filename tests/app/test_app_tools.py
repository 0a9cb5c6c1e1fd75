"""The tool loop in the app: python calls run in the real sandboxed kernel (engine/python_tool)
after the user's consent, the developer's functions are answered by hand, Stop interrupts running
code, images show, and everything survives a restart. The model side is a scripted session that
yields the engine's own events, ToolCall included, so each case is exact (the demo model's own tool
call runs end to end in test_demo_tool_e2e.py).
"""
from __future__ import annotations

import json

import pytest
from scripted import ScriptedSession, answer_script, call_script, scripted_loader

from app import tool_steps
from engine.answer_format import AnswerFormat
from engine.tools import Tool
from app.controller import ChatController
from app.store import ChatStore
from app.tools_worker import ToolsWorker
from app.worker import EngineWorker
from engine.python_tool import Limits, PythonToolPool, sandbox_problem

pytestmark = pytest.mark.skipif(sandbox_problem() is not None, reason=f"the sandbox can't run here: {sandbox_problem()}")

# A real 24x16 PNG written by the code itself (no imaging library inside the sandbox).
PNG_CODE = """
import struct, zlib
def chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)
w, h = 24, 16
raw = b''.join(b'\\x00' + b''.join(bytes([x * 10, y * 15, 128]) for x in range(w)) for y in range(h))
png = b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b'')
open('plot.png', 'wb').write(png)
print('saved', len(png), 'bytes')
"""


@pytest.fixture
def pool(tmp_path):
    p = PythonToolPool(tmp_path / "python", Limits(timeout=60.0))
    yield p
    p.close_all()


def make_controller(qtbot, store, session, pool):
    c = ChatController(store, EngineWorker(loader=scripted_loader(session)), flush_ms=10,
                       tools=ToolsWorker(pool))
    with qtbot.waitSignal(c.model_ready, timeout=5000):
        c.load_model("/nowhere")
    return c


def wait_idle(qtbot, c, timeout=60000):
    qtbot.waitUntil(lambda: not c.busy, timeout=timeout)


def window(qtbot, c):
    from app.ui.main_window import MainWindow
    w = MainWindow(c)
    qtbot.addWidget(w)
    w.show_chat()
    return w


def blocks(w):
    return w.messages.assistant_bubbles()[-1].steps.blocks()


def test_run_asks_first_shows_the_code_then_runs_it_and_the_answer_continues(qtbot, store, pool):
    session = ScriptedSession(queue=[call_script("x = 6 * 7\nprint(x)"), answer_script(final="It is **42**.")])
    c = make_controller(qtbot, store, session, pool)
    w = window(qtbot, c)
    assert c.send("What is 6 times 7?")
    qtbot.waitUntil(lambda: c.waiting_call() is not None, timeout=5000)
    assert session.calls[0]["python"] is True            # the tool was offered to the model
    block = blocks(w)[0]
    assert block.is_open and "Run this Python code?" in block.header.text()
    assert "6" in block.code.text() and "print" in block.code.text()   # the code, highlighted, before it runs
    block.run_button.click()
    wait_idle(qtbot, c)
    answer = c.model.last()
    assert answer.text == "It is **42**." and answer.state == "done"
    call = tool_steps.calls(answer.steps)[0]
    assert call.status == "done" and call.result.strip() == "42"
    # The model got its own call back, then the kernel's real output, on the call's channel.
    sent = session.calls[1]["messages"]
    assert sent[0] == {"role": "user", "content": "What is 6 times 7?", "channel": "final"}
    assert sent[1] == {"role": "assistant", "channel": "analysis", "content": "I'll compute it."}
    assert sent[2]["recipient"] == "python" and sent[2]["content"] == "x = 6 * 7\nprint(x)"
    assert sent[3]["role"] == "tool" and sent[3]["name"] == "python" and sent[3]["content"].strip() == "42"
    # Finished: the block folds to one line, and opens on a click to show code and output.
    block = blocks(w)[0]
    assert not block.is_open and block.header.text() == "▸ Ran Python code"
    block.header.click()
    assert block.is_open and block.output.text().strip() == "42"
    # "Run" was for this code only: the chat is not set to run without asking.
    assert not c.python_always(c.current_id)
    c.shutdown()


def test_work_left_running_is_told_to_the_model_and_shown_in_the_tool_step(qtbot, store, pool):
    code = ("import subprocess, threading, time\n"
            "threading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n"
            "child = subprocess.Popen(['sleep', '600'])\nprint('started')")
    session = ScriptedSession(queue=[call_script(code), answer_script(final="Started.")])
    c = make_controller(qtbot, store, session, pool)
    w = window(qtbot, c)
    c.send("Start something in the background")
    qtbot.waitUntil(lambda: c.waiting_call() is not None, timeout=5000)
    blocks(w)[0].run_button.click()
    wait_idle(qtbot, c)
    notes = ("[A background thread started by this code (or a library it used) was paused; it resumes during "
             "the next call.]", "[A background process started by this code was ended when the call returned.]")
    tool_msg = session.calls[1]["messages"][-1]
    assert tool_msg["role"] == "tool" and tool_msg["content"] == "started\n\n" + "\n".join(notes)
    block = blocks(w)[0]
    block.header.click()
    assert all(note in block.output.text() for note in notes)
    c.shutdown()


def test_dont_run_sends_back_that_the_user_declined_and_nothing_runs(qtbot, store, pool):
    code = "open('ran.txt', 'w').write('yes')"
    session = ScriptedSession(queue=[call_script(code), answer_script(final="Fine, I won't.")])
    c = make_controller(qtbot, store, session, pool)
    w = window(qtbot, c)
    c.send("Write a file")
    qtbot.waitUntil(lambda: c.waiting_call() is not None, timeout=5000)
    blocks(w)[0].decline_button.click()
    wait_idle(qtbot, c)
    assert not (pool.folder(str(c.current_id)) / "ran.txt").exists()
    tool_msg = session.calls[1]["messages"][-1]
    assert tool_msg["role"] == "tool" and tool_msg["content"] == tool_steps.DECLINED_CODE
    assert c.model.last().text == "Fine, I won't."
    assert "you declined" in blocks(w)[0].header.text()
    c.shutdown()


def test_always_in_this_chat_runs_later_code_without_asking_and_only_in_this_chat(qtbot, store, pool):
    session = ScriptedSession(queue=[call_script("n = 5\nprint(n)"), answer_script(final="5."),
                                     call_script("print(n * 2)"), answer_script(final="10."),
                                     call_script("print(1)"), answer_script(final="1.")])
    c = make_controller(qtbot, store, session, pool)
    c.send("first")
    qtbot.waitUntil(lambda: c.waiting_call() is not None, timeout=5000)
    assert c.answer_tool("always")
    wait_idle(qtbot, c)
    first_chat = c.current_id
    waited = []
    c.model.dataChanged.connect(lambda *a: waited.append(c.waiting_call()))
    c.send("second")
    wait_idle(qtbot, c)
    assert not any(waited)                     # never asked
    second = tool_steps.calls(c.model.last().steps)[0]
    assert second.result.strip() == "10"    # the same kernel: n survived between turns
    # The earlier turn's python call was sent back as written (harmony drops it, not the app).
    assert any(m.get("recipient") == "python" for m in session.calls[2]["messages"])
    c.new_conversation()                       # another chat asks again
    c.send("third")
    qtbot.waitUntil(lambda: c.waiting_call() is not None, timeout=5000)
    assert c.python_always(first_chat) and not c.python_always(c.current_id)
    c.answer_tool("decline")
    wait_idle(qtbot, c)
    c.shutdown()


def test_stop_interrupts_running_code_and_keeps_the_answer_as_stopped(qtbot, store, pool):
    session = ScriptedSession(queue=[call_script("open('started', 'w').close()\nwhile True:\n    pass")])
    c = make_controller(qtbot, store, session, pool)
    w = window(qtbot, c)
    c.send("loop forever")
    qtbot.waitUntil(lambda: c.waiting_call() is not None, timeout=5000)
    blocks(w)[0].run_button.click()
    step = tool_steps.calls(c.model.last().steps)[0]
    assert step.status == "running" and c.busy
    started = pool.folder(str(c.current_id)) / "started"
    qtbot.waitUntil(started.exists, timeout=60000)  # the kernel started and the code is in its loop
    assert c.busy
    assert w.composer.send_button.text() == "Stop"
    w.composer.send_button.click()             # the user's Stop
    wait_idle(qtbot, c, timeout=15000)         # well inside the 60 s time limit: Stop did it
    answer = c.model.last()
    assert answer.state == "stopped"
    assert step.status == "stopped" and "The code was stopped." in step.result
    assert len(session.calls) == 1             # the model was not asked to carry on
    saved = store.messages(c.current_id)[-1]
    assert saved.state == "stopped" and store.tool_steps(c.current_id)[saved.id][-1]["status"] == "stopped"
    c.shutdown()


def test_an_image_the_code_saved_shows_inline_and_everything_survives_a_restart(qtbot, tmp_path, pool):
    path = tmp_path / "history.sqlite3"
    store = ChatStore(path)
    session = ScriptedSession(queue=[call_script(PNG_CODE, preamble="Let me draw that."),
                                     answer_script(final="Here is the picture.")])
    c = make_controller(qtbot, store, session, pool)
    w = window(qtbot, c)
    c.send("Draw a gradient")
    qtbot.waitUntil(lambda: c.waiting_call() is not None, timeout=5000)
    c.answer_tool("run")
    wait_idle(qtbot, c)
    step = tool_steps.calls(c.model.last().steps)[0]
    assert [p.rsplit("/", 1)[-1] for p in step.images] == ["plot.png"]
    block = blocks(w)[0]
    block.header.click()
    assert len(block.images) == 1 and block.images[0].pixmap().size().toTuple() == (24, 16)
    bubble = w.messages.assistant_bubbles()[-1]
    preambles = [x for x in bubble.steps.widgets if x.objectName() == "Preamble"]
    assert [p.source() for p in preambles] == ["Let me draw that."]     # a preamble is normal text
    chat = c.current_id
    c.shutdown()
    w.close()
    store.close()

    store2 = ChatStore(path)                   # the app starts again
    c2 = make_controller(qtbot, store2, ScriptedSession(), pool)
    w2 = window(qtbot, c2)
    c2.open_conversation(chat)
    answer = c2.model.last()
    assert answer.text == "Here is the picture." and tool_steps.calls(answer.steps)[0].result.startswith("saved")
    block = blocks(w2)[0]
    assert not block.is_open and block.header.text() == "▸ Ran Python code"
    block.header.click()
    assert len(block.images) == 1 and block.code_text == PNG_CODE
    assert "zlib" in block.code.text() and "color:" in block.code.text()     # shown with highlighting
    # The chain of thought stays hidden: not in any widget's text.
    texts = [lbl.text() for lbl in w2.findChildren(type(block.output))]
    assert not any("I'll compute it." in t for t in texts)
    c2.shutdown()
    store2.close()


def test_an_image_swapped_for_a_link_is_not_shown(qtbot, store, pool, tmp_path):
    """The code owns its folder: a PNG replaced by a symlink to a file outside is never read."""
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 64)
    session = ScriptedSession(queue=[call_script(PNG_CODE), answer_script(final="ok")])
    c = make_controller(qtbot, store, session, pool)
    c.set_python_always(c.current_id if c.current_id != -1 else c.new_conversation(), True)
    c.send("draw")
    wait_idle(qtbot, c)
    step = tool_steps.calls(c.model.last().steps)[0]
    from pathlib import Path
    image = Path(step.images[0])
    image.unlink()
    image.symlink_to(secret)
    from app.ui.tool_block import ToolBlock
    block = ToolBlock(step)
    qtbot.addWidget(block)
    assert block.images == []
    c.shutdown()


def test_a_developer_function_is_answered_by_hand(qtbot, store, pool):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    session = ScriptedSession(queue=[call_script('{"city": "Paris"}', recipient="functions.get_weather"),
                                     answer_script(final="It is sunny in Paris.")])
    c = make_controller(qtbot, store, session, pool)
    s = c.settings
    s.functions = [{"name": "get_weather", "description": "Weather now", "parameters": schema}]
    c.save_settings(s)
    w = window(qtbot, c)
    c.send("Weather in Paris?")
    qtbot.waitUntil(lambda: c.waiting_call() is not None, timeout=5000)
    assert session.calls[0]["tools"] == [Tool("get_weather", "Weather now", schema)]  # the engine's own type
    block = blocks(w)[0]
    assert "get_weather is waiting for your answer" in block.header.text() and '"Paris"' in block.code.text()
    block.answer_box.setPlainText('{"sky": "sunny"}')
    block.send_button.click()
    wait_idle(qtbot, c)
    sent = session.calls[1]["messages"]
    assert sent[-2] == {"role": "assistant", "channel": "commentary", "recipient": "functions.get_weather",
                        "content": '{"city": "Paris"}', "content_type": "<|constrain|>json"}
    assert sent[-1] == {"role": "tool", "name": "functions.get_weather", "channel": "commentary",
                        "content": '{"sky": "sunny"}'}
    assert c.model.last().text == "It is sunny in Paris."
    c.shutdown()


def test_python_switched_off_is_not_offered_and_a_call_is_refused_without_asking(qtbot, store, pool):
    session = ScriptedSession(queue=[call_script("print(1)"), answer_script(final="Without code: 1.")])
    c = make_controller(qtbot, store, session, pool)
    s = c.settings
    s.python_tool = False
    c.save_settings(s)
    assert not pool.enabled
    c.send("one?")
    wait_idle(qtbot, c)
    assert "python" not in session.calls[0]
    assert session.calls[1]["messages"][-1]["content"] == tool_steps.PYTHON_OFF
    assert not pool.folder(str(c.current_id)).exists()
    c.shutdown()


def test_stop_while_the_call_waits_for_consent_ends_the_answer(qtbot, store, pool):
    session = ScriptedSession(queue=[call_script("print(1)")])
    c = make_controller(qtbot, store, session, pool)
    c.send("go")
    qtbot.waitUntil(lambda: c.waiting_call() is not None, timeout=5000)
    c.stop()
    assert not c.busy and c.model.last().state == "stopped"
    step = tool_steps.calls(c.model.last().steps)[0]
    assert step.status == "stopped" and step.result == tool_steps.STOPPED
    # The next turn hands the model its unanswered call with that result (never a dangling call).
    session.queue = [answer_script(final="ok")]
    c.send("never mind")
    wait_idle(qtbot, c)
    roles = [(m["role"], m.get("recipient")) for m in session.calls[1]["messages"]]
    assert roles == [("user", None), ("assistant", None), ("assistant", "python"), ("tool", None), ("user", None)]
    c.shutdown()


def test_a_call_the_engine_found_invalid_goes_back_to_the_model_without_asking(qtbot, store, pool):
    from engine.tools import ToolCall
    from engine.events import Stop
    bad = [(0.0, ToolCall("functions.nope", "{}", error="There is no tool 'functions.nope'.")), (0.0, Stop("call"))]
    session = ScriptedSession(queue=[bad, answer_script(final="Sorry.")])
    c = make_controller(qtbot, store, session, pool)
    c.send("x")
    wait_idle(qtbot, c)
    assert session.calls[1]["messages"][-1]["content"] == "There is no tool 'functions.nope'."
    assert tool_steps.calls(c.model.last().steps)[0].status == "invalid"
    c.shutdown()


def test_old_history_without_tool_steps_opens_and_gains_the_table(tmp_path):
    import sqlite3
    from app.store import _SCHEMA_V1
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA_V1 + "PRAGMA user_version=1;")
    db.execute("INSERT INTO conversations (title, effort, created, updated) VALUES ('old', 'medium', 0, 0)")
    db.execute("INSERT INTO messages (conversation_id, position, role, final_text, created) VALUES (1, 0, 'user', 'hi', 0)")
    db.commit()
    db.close()
    store = ChatStore(path)
    assert [m.text for m in store.messages(1)] == ["hi"] and store.tool_steps(1) == {}
    store.set_tool_steps(1, [{"type": "call", "recipient": "python"}])
    assert store.tool_steps(1) == {1: [{"type": "call", "recipient": "python"}]}
    store.delete_messages_from(1, 0)
    assert store.tool_steps(1) == {}           # gone with its message
    store.close()


def test_steps_json_round_trip_keeps_what_the_model_wrote():
    from engine.events import MessageStart, TextDelta
    steps: list = []
    for _, ev in call_script("print(2)", preamble="Checking."):
        tool_steps.apply_event(steps, ev)
    tool_steps.calls(steps)[0].resolve("done", "2")
    again = tool_steps.from_json(json.loads(json.dumps(tool_steps.to_json(steps))))
    assert tool_steps.engine_messages(again) == tool_steps.engine_messages(steps)
    assert [s.type for s in steps] == ["analysis", "preamble", "call"]
    assert not any(getattr(s, "open", False) for s in steps)
    # A call cut off while being written is dropped when the turn ends; it was never a call.
    tool_steps.apply_event(steps, MessageStart("assistant", "analysis", "python"))
    tool_steps.apply_event(steps, TextDelta("analysis", "pri"))
    tool_steps.close_open_steps(steps)
    assert [s.type for s in steps] == ["analysis", "preamble", "call"]


def test_function_schemas_are_checked_with_one_sentence():
    from app.user_functions import check_function
    ok, problem = check_function("get_weather", "Weather", '{"type": "object", "properties": {"city": {"type": "string"}}}')
    assert problem == "" and ok["parameters"]["properties"]["city"] == {"type": "string"}
    assert check_function("get weather", "", "")[1].startswith("The name may use only")
    assert "not valid JSON" in check_function("f", "", '{"type": "object",')[1]
    problem = check_function("f", "", '{"type": "object", "properties": {"a": {"type": "strng"}}}')[1]
    assert problem.startswith("The JSON Schema is not valid at properties/a/type: 'strng' is not a type")
    assert "must be \"object\"" in check_function("f", "", '{"type": "string"}')[1]
    assert "already a function" in check_function("f", "", "", taken={"f"})[1]
    assert check_function("no_args", "", "") == ({"name": "no_args", "description": "", "parameters": None}, "")


def test_settings_dialog_python_switch_and_functions_are_saved(qtbot, store):
    from app.settings import Settings
    from app.ui.settings_dialog import SettingsDialog
    settings = Settings.load(store)
    assert settings.python_tool is True and settings.functions == []   # on by default, consent per chat
    d = SettingsDialog(settings)
    qtbot.addWidget(d)
    d.python_tool.setChecked(False)
    fd = d.functions.dialog()
    qtbot.addWidget(fd)
    fd.name.setText("lookup")
    fd.schema.setPlainText('{"type": "object", "properties": {"q": {"type": "nope"}}}')
    fd.accept()
    assert not fd.error.isHidden()
    assert "properties/q/type" in fd.error.text() and fd.function is None and fd.name.text() == "lookup"
    fd.schema.setPlainText('{"type": "object", "properties": {"q": {"type": "string"}}}')
    fd.accept()
    assert fd.function is not None
    d.functions.add_checked(fd.function)
    saved = d.result_settings()
    saved.save(store)
    again = Settings.load(store)
    assert again.python_tool is False
    assert again.functions == [{"name": "lookup", "description": "", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}]


def test_a_structured_answer_is_requested_with_the_schema_and_shown_as_json(qtbot, store, pool):
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "temp_c": {"type": "number"}},
              "required": ["city", "temp_c"]}
    session = ScriptedSession(queue=[answer_script(final='{"city": "Paris", "temp_c": 21}')])
    c = make_controller(qtbot, store, session, pool)
    s = c.settings
    s.answer_schema = json.dumps(schema)
    c.save_settings(s)
    w = window(qtbot, c)
    c.send("Weather in Paris as JSON")
    wait_idle(qtbot, c)
    assert session.calls[0]["answer_format"] == AnswerFormat(schema, name="answer")  # the engine's type, shown as "answer"
    view = w.messages.assistant_bubbles()[-1].rendered
    assert [b.code for b in view.code_blocks] == ['{\n  "city": "Paris",\n  "temp_c": 21\n}']
    c.shutdown()


def test_settings_dialog_keeps_a_bad_answer_format_open_with_one_sentence(qtbot, store):
    from app.settings import Settings
    from app.ui.settings_dialog import SettingsDialog
    d = SettingsDialog(Settings.load(store))
    qtbot.addWidget(d)
    d.show()
    d.answer_schema.setPlainText('{"type": "objekt"}')
    d.accept()
    assert d.isVisible() and d.answer_schema_error.text().startswith("The answer format is not a valid JSON Schema")
    d.answer_schema.setPlainText('{"type": "object"}')
    d.accept()
    assert not d.isVisible() and d.result_settings().answer_schema == '{"type": "object"}'


def test_editing_a_function_keeps_its_own_name_and_a_misspelt_type_is_named(qtbot):
    from app.ui.functions_editor import FunctionsEditor
    editor = FunctionsEditor([{"name": "get_weather", "description": "", "parameters": None},
                              {"name": "other", "description": "", "parameters": None}])
    qtbot.addWidget(editor)
    d = editor.dialog({"name": "get_weather", "description": "", "parameters": None})   # a copy, as after a reload
    qtbot.addWidget(d)
    d.description.setText("Weather now")
    d.accept()
    assert d.function == {"name": "get_weather", "description": "Weather now", "parameters": None}
    d2 = editor.dialog(editor.functions()[0])
    qtbot.addWidget(d2)
    d2.name.setText("other")
    d2.schema.setPlainText('{"type": "object", "properties": {"city": {"type": "strin"}}}')
    d2.accept()
    assert d2.function is None and "already a function named other" in d2.error.text()
    d2.name.setText("get_weather")
    d2.accept()
    assert d2.error.text() == ("The JSON Schema is not valid at properties/city/type: 'strin' is not a type; use one of "
                               "string, number, integer, boolean, object, array, null.")


def test_a_plain_answer_stores_no_steps(qtbot, store, pool):
    session = ScriptedSession(queue=[answer_script(final="Hi.")])
    c = make_controller(qtbot, store, session, pool)
    c.send("hello")
    wait_idle(qtbot, c)
    assert c.model.last().text == "Hi." and store.tool_steps(c.current_id) == {}
    c.shutdown()


def test_settings_say_why_python_cannot_run_when_the_sandbox_cannot(qtbot, store, monkeypatch):
    import engine.python_tool as python_tool
    from app.settings import Settings
    from app.ui.settings_dialog import SettingsDialog
    monkeypatch.setattr(python_tool, "sandbox_problem", lambda: "The Python tool needs bubblewrap: install it.")
    d = SettingsDialog(Settings.load(store))
    qtbot.addWidget(d)
    assert not d.python_tool.isEnabled() and d.python_tool.isChecked()
    assert any("Python can't run here: The Python tool needs bubblewrap" in label.text()
               for label in d.findChildren(type(d.answer_schema_error)))


def test_quitting_while_code_runs_interrupts_it_and_keeps_the_answer(qtbot, store, pool):
    import time
    session = ScriptedSession(queue=[call_script("open('started', 'w').close()\nwhile True:\n    pass")])
    c = make_controller(qtbot, store, session, pool)
    c.set_python_always(c.new_conversation(), True)
    c.send("spin")
    qtbot.waitUntil(lambda: any(s.status == "running" for s in tool_steps.calls(c.model.last().steps)),
                    timeout=5000)
    qtbot.waitUntil((pool.folder(str(c.current_id)) / "started").exists, timeout=60000)  # in its loop now
    started = time.monotonic()
    c.shutdown()
    assert time.monotonic() - started < 12
    saved = store.messages(c.current_id)[-1]
    assert saved.state == "stopped"
    assert store.tool_steps(c.current_id)[saved.id][-1]["status"] == "stopped"


def test_a_model_that_keeps_calling_is_stopped(qtbot, store, pool, monkeypatch):
    monkeypatch.setattr(tool_steps, "MAX_CALLS_PER_TURN", 2)
    session = ScriptedSession(queue=[call_script(f"print({i})") for i in range(3)])
    c = make_controller(qtbot, store, session, pool)
    c.set_python_always(c.new_conversation(), True)
    c.send("loop")
    wait_idle(qtbot, c)
    assert len(session.calls) == 3 and "called tools more than 2 times" in c.model.last().notice
    c.shutdown()


def test_a_deleted_chat_loses_its_kernel_at_once_and_its_files_when_purged(qtbot, tmp_path, pool):
    """A deleted chat's kernel ends at once (Undo keeps the folder); when it is purged at the next start
    its folder goes too, so a new chat that gets the same id never sees the old chat's files."""
    path = tmp_path / "history.sqlite3"
    store = ChatStore(path)
    session = ScriptedSession(queue=[call_script("open('secret.txt', 'w').write('mine')"), answer_script(final="Saved.")])
    c = make_controller(qtbot, store, session, pool)
    c.send("Save a secret")
    qtbot.waitUntil(lambda: c.waiting_call() is not None, timeout=5000)
    c.answer_tool("run")
    wait_idle(qtbot, c)
    chat = c.current_id
    folder = pool.folder(str(chat))
    assert (folder / "secret.txt").read_text() == "mine"
    tool = pool.tool(str(chat))
    assert tool.has_kernel
    c.delete(chat)
    qtbot.waitUntil(lambda: not tool.has_kernel, timeout=10000)   # no kernel left running for a deleted chat
    c.undo_delete()
    assert (folder / "secret.txt").exists()      # Undo brings the chat back with its files
    c.delete(chat)
    c.shutdown()
    store.close()

    store2 = ChatStore(path)                     # the app starts again: the deleted chat is purged
    c2 = make_controller(qtbot, store2, ScriptedSession(), pool)
    assert not folder.exists()
    fresh = store2.create_conversation("New")
    assert fresh.id == chat                      # SQLite hands the id out again...
    assert not (pool.folder(str(fresh.id)) / "secret.txt").exists()   # ...but not the old files
    c2.shutdown()
    store2.close()


def test_a_python_folder_no_chat_owns_is_removed_at_start_but_live_chats_keep_theirs(qtbot, tmp_path, pool):
    """A folder left by a crash between purge and cleanup (or by an older version) is swept at start."""
    path = tmp_path / "history.sqlite3"
    store = ChatStore(path)
    kept = store.create_conversation("Mine")
    for name in (str(kept.id), "999"):
        pool.folder(name).mkdir(parents=True)
        (pool.folder(name) / "data.csv").write_text("1,2\n")
    c = make_controller(qtbot, store, ScriptedSession(), pool)
    assert (pool.folder(str(kept.id)) / "data.csv").exists() and not pool.folder("999").exists()
    c.shutdown()
    store.close()
