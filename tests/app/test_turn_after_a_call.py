"""Issue 29, defects 5 and 6: the answer after a tool call, driven through the controller as the
window drives it (scripted session, fake clock).
5. "Thought for N s" counts the model's time only, not the time the user took to choose Run or
   Don't run. 6. After "Don't run", a reply never ends with no answer and no notice."""
from scripted import FakeClock, ScriptedSession, answer_script, call_script, scripted_loader

from app.controller import ChatController
from app.worker import EngineWorker
from engine.events import MessageEnd, MessageStart, Stop, TextDelta


def thinking(seconds: float, text: str = "Hmm."):
    """An analysis message that takes the model `seconds` (on the fake clock)."""
    return [(0.0, MessageStart("assistant", "analysis")), (seconds, TextDelta("analysis", text)),
            (0.0, MessageEnd("analysis"))]


def controller(qtbot, store, session, clock):
    c = ChatController(store, EngineWorker(loader=scripted_loader(session), clock=clock), flush_ms=10)
    with qtbot.waitSignal(c.model_ready, timeout=5000):
        c.load_model("/nowhere")
    return c


def test_thought_for_counts_the_models_time_not_the_users_choice(qtbot, store):
    clock = FakeClock()
    first = thinking(2.0) + call_script("print(1)", analysis="")[3:]  # 2 s of thought, then the call
    second = thinking(3.0) + answer_script(final="Fine.", think_s=0)[4:]  # 3 s more, then the answer
    session = ScriptedSession(queue=[first, second], clock=clock)
    c = controller(qtbot, store, session, clock)
    c.send("Run something")
    qtbot.waitUntil(lambda: c.waiting_call() is not None, timeout=5000)
    clock.now += 100.0        # the user reads the code for 100 s before deciding
    assert c.answer_tool("decline")
    qtbot.waitUntil(lambda: not c.busy, timeout=5000)
    answer = c.model.last()
    assert answer.text == "Fine." and round(answer.thought_seconds) == 5
    assert round(store.messages(c.current_id)[-1].thought_seconds) == 5
    c.shutdown()


def test_after_dont_run_a_reply_with_no_answer_says_so(qtbot, store):
    clock = FakeClock()
    silent = thinking(1.0, "The user declined.") + [(0.0, Stop("return"))]  # thinks, then ends: no answer
    session = ScriptedSession(queue=[call_script("print(1)"), silent], clock=clock)
    c = controller(qtbot, store, session, clock)
    c.send("Run something")
    qtbot.waitUntil(lambda: c.waiting_call() is not None, timeout=5000)
    assert c.answer_tool("decline")
    qtbot.waitUntil(lambda: not c.busy, timeout=5000)
    answer = c.model.last()
    assert answer.text == "" and answer.state == "done"
    assert answer.notice.startswith("The model ended without an answer")
    assert store.messages(c.current_id)[-1].stats["notice"] == answer.notice  # shown after a restart too
    c.shutdown()
