"""A reply the engine stopped as malformed (the model left the chat format) never ends in the window
as a finished answer with nothing said: the part written is kept and one sentence says what happened
and what to do (the server's side of the same fault: tests/server/test_broken_replies.py)."""
from scripted import ScriptedSession, scripted_loader

from app.controller import ChatController
from app.worker import EngineWorker
from engine.events import Done, MessageEnd, MessageStart, Stop, TextDelta


class BrokenHeader(ScriptedSession):
    """Thinks a little, then the parser stops the reply: a message header that never ended."""

    def reply(self, messages, **kw):
        self.calls.append({"messages": messages})
        yield MessageStart("assistant", "analysis")
        yield TextDelta("analysis", "Let me think.")
        yield MessageEnd("analysis")
        yield Stop("malformed: message header never ended")
        yield Done(None, "malformed: message header never ended")


def test_a_malformed_stop_shows_a_sentence_not_an_empty_answer(qtbot, store):
    c = ChatController(store, EngineWorker(loader=scripted_loader(BrokenHeader())), flush_ms=10)
    with qtbot.waitSignal(c.model_ready):
        c.load_model("/x")
    c.send("hi")
    qtbot.waitUntil(lambda: c.model.last().role == "assistant" and c.model.last().state != "streaming", timeout=5000)
    last = c.model.last()
    assert last.notice == "The model's reply ended in an unexpected format; try Regenerate."
    assert last.analysis == "Let me think."  # what was written is kept
    assert store.messages(c.current_id)[-1].stats["notice"] == last.notice  # and it survives a restart
    c.shutdown()
