"""ChatController on a scripted engine: send, streaming, stop, regenerate, edit, effort, history."""
from scripted import FakeClock, ScriptedSession, answer_script, scripted_loader

from app.controller import ChatController
from app.worker import EngineWorker


def wait_idle(qtbot, c, timeout=5000):
    qtbot.waitUntil(lambda: not c.busy, timeout=timeout)


def test_send_streams_analysis_and_final_apart(qtbot, controller, scripted, store):
    assert controller.send("Hi there")
    assert controller.busy
    wait_idle(qtbot, controller)
    user, answer = controller.model.messages()
    assert (user.role, user.text) == ("user", "Hi there")
    assert answer.text == "Hello **there**." and answer.analysis == "Let me think."
    assert answer.state == "done" and answer.stats["generated_tokens"] > 0
    # The fake clock advanced 3 s while the analysis channel was open.
    assert abs(answer.thought_seconds - 3.0) < 0.01
    saved = store.messages(controller.current_id)
    assert saved[1].analysis == "Let me think." and saved[1].text == "Hello **there**."
    assert store.conversation(controller.current_id).title == "Hi there"
    # The engine got the whole conversation, final channel only.
    assert scripted.calls[0]["messages"] == [{"role": "user", "content": "Hi there", "channel": "final"}]


def test_tokens_arrive_in_batches_not_one_repaint_per_token(qtbot, store):
    clock = FakeClock()
    session = ScriptedSession(answer_script(final="x" * 400, pieces=400), clock=clock)
    c = ChatController(store, EngineWorker(loader=scripted_loader(session), clock=clock), flush_ms=50)
    with qtbot.waitSignal(c.model_ready):
        c.load_model("/x")
    repaints = []
    c.model.dataChanged.connect(lambda *a: repaints.append(1))
    c.send("go")
    wait_idle(qtbot, c)
    assert c.model.last().text == "x" * 400
    assert len(repaints) < 50   # 400+ events, a handful of batched updates
    c.shutdown()


def test_stop_keeps_partial_text_and_saves_it(qtbot, store):
    clock = FakeClock()
    session = ScriptedSession(answer_script(final="word " * 200, pieces=200), clock=clock, delay=0.005)
    c = ChatController(store, EngineWorker(loader=scripted_loader(session), clock=clock), flush_ms=10)
    with qtbot.waitSignal(c.model_ready):
        c.load_model("/x")
    c.send("long please")
    qtbot.waitUntil(lambda: len(c.model.last().text) > 20, timeout=5000)
    c.stop()
    wait_idle(qtbot, c)
    last = c.model.last()
    assert last.state == "stopped" and 20 < len(last.text) < len("word " * 200)
    saved = store.messages(c.current_id)[-1]
    assert saved.state == "stopped" and saved.text == last.text
    c.shutdown()


def test_regenerate_replaces_the_last_answer(qtbot, controller, scripted, store):
    controller.send("Q1")
    wait_idle(qtbot, controller)
    scripted.script = answer_script(final="Second try.")
    assert controller.regenerate()
    wait_idle(qtbot, controller)
    assert [m.text for m in controller.model.messages()] == ["Q1", "Second try."]
    assert [m.text for m in store.messages(controller.current_id)] == ["Q1", "Second try."]
    assert scripted.calls[1]["messages"] == scripted.calls[0]["messages"]


def test_edit_last_user_message_and_resend(qtbot, controller, scripted, store):
    controller.send("Q1")
    wait_idle(qtbot, controller)
    controller.send("Typo qestion")
    wait_idle(qtbot, controller)
    assert controller.last_user_text() == "Typo qestion"
    assert controller.edit_last("Fixed question")
    wait_idle(qtbot, controller)
    texts = [m.text for m in store.messages(controller.current_id)]
    assert texts == ["Q1", "Hello **there**.", "Fixed question", "Hello **there**."]
    assert [m["content"] for m in scripted.calls[-1]["messages"]] == ["Q1", "Hello **there**.", "Fixed question"]


def test_effort_is_remembered_per_conversation_and_sent(qtbot, controller, scripted, store):
    first = controller.new_conversation()
    controller.set_effort("high")
    controller.send("deep question")
    wait_idle(qtbot, controller)
    assert scripted.calls[-1]["effort"] == "high"
    second = controller.new_conversation()
    assert controller.effort == "high"          # a new chat starts from the last choice
    controller.set_effort("low")
    controller.send("quick one")
    wait_idle(qtbot, controller)
    assert scripted.calls[-1]["effort"] == "low"
    controller.open_conversation(first)
    assert controller.effort == "high"
    assert store.conversation(second).effort == "low"


def test_delete_and_undo(qtbot, controller):
    cid = controller.new_conversation()
    controller.send("keep this")
    wait_idle(qtbot, controller)
    controller.delete(cid)
    assert cid not in [c.id for c in controller.conversations()]
    assert controller.undo_delete() == cid
    assert controller.current_id == cid and controller.model.messages()[0].text == "keep this"


def test_history_survives_a_restart(qtbot, tmp_path):
    from app.store import ChatStore
    path = tmp_path / "h.sqlite3"
    clock = FakeClock()
    store = ChatStore(path)
    c = ChatController(store, EngineWorker(loader=scripted_loader(ScriptedSession(clock=clock)), clock=clock))
    with qtbot.waitSignal(c.model_ready):
        c.load_model("/x")
    c.set_effort("low")
    c.send("remember me")
    wait_idle(qtbot, c)
    c.shutdown()
    store.close()
    store2 = ChatStore(path)
    c2 = ChatController(store2, EngineWorker(loader=scripted_loader(ScriptedSession())))
    (conv,) = c2.conversations()
    c2.open_conversation(conv.id)
    assert c2.effort == "low"
    assert [m.text for m in c2.model.messages()] == ["remember me", "Hello **there**."]
    assert c2.model.messages()[1].analysis == "Let me think."
    c2.shutdown()
    store2.close()


def test_engine_error_mid_answer_keeps_text_and_explains(qtbot, store):
    class Broken(ScriptedSession):
        def reply(self, *a, **k):
            for i, ev in enumerate(super().reply(*a, **k)):
                if i == 20:
                    raise RuntimeError("metal went away")
                yield ev
    c = ChatController(store, EngineWorker(loader=scripted_loader(Broken(answer_script(final="abcdefghijklmnop", pieces=16)))))
    with qtbot.waitSignal(c.model_ready):
        c.load_model("/x")
    c.send("hi")
    wait_idle(qtbot, c)
    last = c.model.last()
    assert last.state == "error" and "engine error" in last.notice and last.text  # partial kept
    assert store.messages(c.current_id)[-1].state == "error"
    c.shutdown()


def test_load_refusal_is_one_sentence(qtbot, store):
    from app.engine_bridge import LoadRefused

    def refuse(folder, ctx):
        raise LoadRefused("Not enough memory to load this model: needs 14 GB, 10 GB free. Close other apps.")
    c = ChatController(store, EngineWorker(loader=refuse))
    with qtbot.waitSignal(c.model_failed) as sig:
        c.load_model("/x")
    assert sig.args[0].startswith("Not enough memory") and not c.ready
    assert not c.send("hello")
    c.shutdown()


def test_engine_events_reach_the_view_as_objects_trimmed_and_reading_progress(qtbot, store):
    from app.ui.message_view import thinking_text
    from engine.events import ContextTrimmed, PrefillProgress

    clock = FakeClock()
    script = [(0.0, ContextTrimmed(3)), (0.0, PrefillProgress(200, 500))] + answer_script()
    session = ScriptedSession(script, clock=clock, delay=0.05)
    c = ChatController(store, EngineWorker(loader=scripted_loader(session), clock=clock), flush_ms=10)
    with qtbot.waitSignal(c.model_ready):
        c.load_model("/x")
    c.send("a long question")
    qtbot.waitUntil(lambda: thinking_text(c.model.last()) == "Reading your message… 40%", timeout=5000)
    wait_idle(qtbot, c)
    last = c.model.last()
    assert last.text == "Hello **there**." and last.state == "done"
    assert "oldest 3 messages" in last.notice
    assert last.stats["prompt_tokens"] == 12 and last.stats["ttft_s"] == 0.05  # from Done, via the signal
    c.shutdown()
