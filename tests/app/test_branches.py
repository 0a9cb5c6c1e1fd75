"""Alternatives and branches in the window (pytest-qt, offscreen, a scripted session): Regenerate
keeps the old answers behind ‹ k/n ›, Edit on any user message forks the chat there, flipping
swaps what is shown and what the model reads next, all of it after a restart too."""
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from scripted import FakeClock, ScriptedSession, answer_script, scripted_loader

from app.controller import ChatController
from app.tool_steps import calls
from app.store import ChatStore, StoreError
from app.ui.main_window import MainWindow
from app.ui.message_view import AssistantBubble, UserBubble
from app.worker import EngineWorker


def make_window(qtbot, store, session):
    clock = session.clock or FakeClock()     # the session advances the clock the worker stamps events with
    c = ChatController(store, EngineWorker(loader=scripted_loader(session), clock=clock), flush_ms=10)
    w = MainWindow(c)
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(c.model_ready):
        c.load_model("/x")
    w.show_chat()
    return c, w


def send(qtbot, c, w, text):
    w.composer.input.setPlainText(text)
    qtbot.keyClick(w.composer.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not c.busy and not c.model.last().streaming, timeout=5000)


def shown(c):
    return [m.text for m in c.model.messages()]


def sent(session):
    return [m["content"] for m in session.calls[-1]["messages"]]


def test_regenerate_keeps_every_answer_and_the_one_shown_is_the_one_continued(qtbot, store):
    session = ScriptedSession(clock=FakeClock())
    c, w = make_window(qtbot, store, session)
    send(qtbot, c, w, "Q1")
    for final in ("Second try.", "Third try."):
        session.script = answer_script(analysis=f"thinking of {final}", final=final, think_s=len(final))
        qtbot.mouseClick(w.composer.regenerate_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not c.busy, timeout=5000)
    assert shown(c) == ["Q1", "Third try."]
    bubble = w.messages.bubbles[-1]
    assert isinstance(bubble, AssistantBubble) and bubble.switcher.isVisible()
    assert bubble.switcher.label.text() == "3/3" and not bubble.switcher.next.isEnabled()

    qtbot.mouseClick(bubble.switcher.prev, Qt.MouseButton.LeftButton)
    assert shown(c) == ["Q1", "Second try."]
    second = c.model.last()
    assert second.analysis == "thinking of Second try." and round(second.thought_seconds) == len("Second try.")
    assert second.stats.get("generated_tokens")           # each alternative keeps its stats
    assert w.messages.bubbles[-1].switcher.label.text() == "2/3"
    send(qtbot, c, w, "Q2")
    assert sent(session) == ["Q1", "Second try.", "Q2"]     # the model continues from the one shown
    assert [m.text for m in store.messages(c.current_id)] == ["Q1", "Second try.", "Q2", "Third try."]


def test_the_arrows_work_from_the_keyboard_and_keep_the_focus(qtbot, store):
    session = ScriptedSession(clock=FakeClock())
    c, w = make_window(qtbot, store, session)
    send(qtbot, c, w, "Q1")
    session.script = answer_script(final="Another.")
    c.regenerate()
    qtbot.waitUntil(lambda: not c.busy, timeout=5000)
    w.activateWindow()
    arrow = w.messages.bubbles[-1].switcher.prev
    assert arrow.focusPolicy() & Qt.FocusPolicy.TabFocus
    arrow.setFocus()
    qtbot.keyClick(arrow, Qt.Key.Key_Left)
    assert shown(c) == ["Q1", "Hello **there**."]
    switcher = w.messages.bubbles[-1].switcher
    assert switcher.label.text() == "1/2"
    qtbot.waitUntil(lambda: QApplication.focusWidget() in (switcher.prev, switcher.next), timeout=2000)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Right)
    assert shown(c) == ["Q1", "Another."]


def test_editing_an_earlier_message_forks_and_the_old_branch_stays_reachable(qtbot, store):
    session = ScriptedSession(clock=FakeClock())
    c, w = make_window(qtbot, store, session)
    for q in ("Q1", "Q2", "Q3"):
        send(qtbot, c, w, q)
    old = shown(c)
    first = w.messages.bubbles[0]
    assert isinstance(first, UserBubble) and not first.switcher.isVisible()
    qtbot.mouseClick(first.edit_button, Qt.MouseButton.LeftButton)
    assert w.composer.editing and w.composer.input.toPlainText() == "Q1"
    assert "Editing this message" in w.composer.edit_banner.text()
    session.script = answer_script(final="A fresh start.")
    send(qtbot, c, w, "Q1, put better")
    assert shown(c) == ["Q1, put better", "A fresh start."]
    assert sent(session) == ["Q1, put better"]
    assert w.messages.bubbles[0].switcher.label.text() == "2/2"

    qtbot.mouseClick(w.messages.bubbles[0].switcher.prev, Qt.MouseButton.LeftButton)
    assert shown(c) == old                                     # the whole tail swapped back
    assert w.messages.bubbles[0].switcher.label.text() == "1/2"
    session.script = answer_script(final="Fine.")
    send(qtbot, c, w, "Q4")
    assert sent(session) == old + ["Q4"]                      # what the model sees next follows


def test_editing_the_middle_keeps_the_earlier_part_and_forks_after_it(qtbot, store):
    session = ScriptedSession(clock=FakeClock())
    c, w = make_window(qtbot, store, session)
    for q in ("Q1", "Q2", "Q3"):
        send(qtbot, c, w, q)
    assert c.edit_at(2, "Q2 again")
    qtbot.waitUntil(lambda: not c.busy, timeout=5000)
    assert shown(c) == ["Q1", "Hello **there**.", "Q2 again", "Hello **there**."]
    assert [m.alternatives for m in c.model.messages()] == [(), (), (2, 2), ()]
    assert sent(session) == ["Q1", "Hello **there**.", "Q2 again"]


def test_branches_are_there_after_a_restart(qtbot, tmp_path):
    store = ChatStore(tmp_path / "h.sqlite3")
    session = ScriptedSession(clock=FakeClock())
    c, w = make_window(qtbot, store, session)
    send(qtbot, c, w, "Q1")
    session.script = answer_script(final="Two.")
    c.regenerate()
    qtbot.waitUntil(lambda: not c.busy, timeout=5000)
    assert c.edit_last("Q1 edited")
    qtbot.waitUntil(lambda: not c.busy, timeout=5000)
    chat = c.current_id
    c.shutdown()
    w.close()
    store.close()

    store = ChatStore(tmp_path / "h.sqlite3")               # the app starts again
    c, w = make_window(qtbot, store, ScriptedSession(clock=FakeClock()))
    c.open_conversation(chat)
    assert shown(c) == ["Q1 edited", "Two."]
    assert w.messages.bubbles[0].switcher.label.text() == "2/2"
    assert c.switch_alternative(0, -1)
    assert shown(c) == ["Q1", "Two."]
    assert w.messages.bubbles[1].switcher.label.text() == "2/2"
    assert c.switch_alternative(1, -1)
    assert shown(c) == ["Q1", "Hello **there**."]
    c.shutdown()
    store.close()


def test_nothing_flips_or_edits_while_the_chat_answers(qtbot, store):
    session = ScriptedSession(clock=FakeClock())
    c, w = make_window(qtbot, store, session)
    send(qtbot, c, w, "Q1")
    session.script = answer_script(final="Other.")
    c.regenerate()
    qtbot.waitUntil(lambda: not c.busy, timeout=5000)
    session.delay = 0.05
    c.send("Q2")
    qtbot.waitUntil(lambda: c.model.last().streaming and len(w.messages.bubbles) == 4, timeout=5000)
    assert not w.messages.bubbles[0].edit_button.isEnabled()
    assert not w.messages.bubbles[1].switcher.prev.isEnabled()
    assert not c.switch_alternative(1, -1) and len(shown(c)) == 4
    c.stop()
    qtbot.waitUntil(lambda: not c.busy, timeout=5000)
    assert w.messages.bubbles[0].edit_button.isEnabled() and w.messages.bubbles[1].switcher.prev.isEnabled()


class RefusesLong(ScriptedSession):
    """Refuses (as the engine would: too long) a prompt whose last message starts with LONG."""

    def reply(self, messages, **kw):
        from engine.events import Done, PromptTooLong
        from scripted import FakeStats
        if messages[-1]["content"].startswith("LONG"):
            yield PromptTooLong("message", 9000, 8900, 30000, 0, 60, 4096, 8192, 4096)
            yield Done(FakeStats(stop_reason="too_long"), "too_long")
        else:
            yield from super().reply(messages, **kw)


def test_a_refused_edit_keeps_both_texts(qtbot, store):
    session = RefusesLong(clock=FakeClock())
    c, w = make_window(qtbot, store, session)
    send(qtbot, c, w, "Q1")
    send(qtbot, c, w, "Q2")
    before = shown(c)
    w.messages.bubbles[2].edit_button.click()
    w.composer.input.setPlainText("LONG " + "x" * 100)
    qtbot.keyClick(w.composer.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not c.busy and w.composer.input.toPlainText().startswith("LONG"), timeout=5000)
    assert shown(c) == before                                  # the old branch is back, whole
    assert [m.alternatives for m in c.model.messages()] == [(), (), (), ()]
    assert [m.text for m in store.messages(c.current_id)] == before


def test_an_edit_that_cant_be_saved_stays_in_the_box(qtbot, store, monkeypatch):
    session = ScriptedSession(clock=FakeClock())
    c, w = make_window(qtbot, store, session)
    send(qtbot, c, w, "Q1")
    errors = []
    c.history_error.connect(errors.append)

    def full(*a, **k):
        raise StoreError("The disk is full, so the chat history can't be saved; free some space.")
    monkeypatch.setattr(c.branches, "fork", full)
    w.messages.bubbles[0].edit_button.click()
    w.composer.input.setPlainText("Q1 changed")
    qtbot.keyClick(w.composer.input, Qt.Key.Key_Return)
    assert w.composer.input.toPlainText() == "Q1 changed" and w.composer.editing
    assert "still in the message box" in errors[0]
    assert shown(c) == ["Q1", "Hello **there**."]


def test_a_draft_in_the_box_comes_back_after_an_edit(qtbot, store):
    session = ScriptedSession(clock=FakeClock())
    c, w = make_window(qtbot, store, session)
    send(qtbot, c, w, "Q1")
    w.composer.input.setPlainText("half a thought")
    w.messages.bubbles[0].edit_button.click()
    assert w.composer.input.toPlainText() == "Q1"
    qtbot.keyClick(w.composer.input, Qt.Key.Key_Escape)       # cancelled
    assert w.composer.input.toPlainText() == "half a thought" and not w.composer.editing
    w.messages.bubbles[0].edit_button.click()
    send(qtbot, c, w, "Q1 again")                              # sent
    assert shown(c)[0] == "Q1 again" and w.composer.input.toPlainText() == "half a thought"


def test_an_alternative_keeps_its_tool_calls_and_the_model_reads_them_when_it_is_shown(qtbot, store):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    from scripted import call_script
    session = ScriptedSession(clock=FakeClock(), queue=[
        call_script('{"city": "Paris"}', recipient="functions.get_weather"),
        answer_script(final="It is sunny in Paris."), answer_script(final="No idea, sorry.")])
    c, w = make_window(qtbot, store, session)
    s = c.settings
    s.functions = [{"name": "get_weather", "description": "Weather now", "parameters": schema}]
    c.save_settings(s)
    c.send("Weather in Paris?")
    qtbot.waitUntil(lambda: c.waiting_call() is not None, timeout=5000)
    assert c.answer_tool("answer", '{"sky": "sunny"}')
    qtbot.waitUntil(lambda: not c.busy, timeout=5000)
    assert c.regenerate()
    qtbot.waitUntil(lambda: not c.busy, timeout=5000)
    assert shown(c)[-1] == "No idea, sorry." and not calls(c.model.last().steps)
    assert c.switch_alternative(1, -1)
    kept = c.model.last()
    assert kept.text == "It is sunny in Paris." and [st.result for st in calls(kept.steps)] == ['{"sky": "sunny"}']
    (block,) = w.messages.bubbles[-1].steps.blocks()                # its call block is shown again
    assert "get_weather" in block.header.text()
    session.script = answer_script(final="Yes.")
    c.send("Sure?")
    qtbot.waitUntil(lambda: not c.busy, timeout=5000)
    sent_now = [m.get("content") for m in session.calls[-1]["messages"]]
    assert sent_now[0] == "Weather in Paris?" and sent_now[-2:] == ["It is sunny in Paris.", "Sure?"]
    assert '{"city": "Paris"}' in sent_now and '{"sky": "sunny"}' in sent_now and "No idea, sorry." not in sent_now


def test_editing_does_not_widen_the_window_at_its_minimum_size(qtbot, store):
    c, w = make_window(qtbot, store, ScriptedSession(clock=FakeClock()))
    send(qtbot, c, w, "Q1")
    w.resize(w.minimumSize())
    w.messages.bubbles[0].edit_button.click()
    assert w.composer.edit_banner.isVisible()
    qtbot.waitUntil(lambda: w.composer.width() > 0 and w.width() == w.minimumSize().width())
    assert w.composer.minimumSizeHint().width() <= w.composer.width()   # the banner wraps instead


def test_flipping_an_earlier_message_keeps_it_in_view(qtbot, store):
    session = ScriptedSession(clock=FakeClock(), script=answer_script(final="A long answer. " * 60))
    c, w = make_window(qtbot, store, session)
    w.resize(w.minimumSize())
    send(qtbot, c, w, "Q1")
    assert c.edit_at(0, "Q1 edited")
    qtbot.waitUntil(lambda: not c.busy, timeout=5000)
    for q in ("Q2", "Q3"):
        send(qtbot, c, w, q)
    view = w.messages
    qtbot.waitUntil(lambda: view.verticalScrollBar().value() > 0)     # at the chat's end, Q1 out of view
    qtbot.mouseClick(view.bubbles[0].switcher.prev, Qt.MouseButton.LeftButton)
    assert shown(c)[0] == "Q1"

    def q1_in_view():
        top = view.bubbles[0].mapTo(view.viewport(), view.bubbles[0].rect().topLeft()).y()
        return 0 <= top < view.viewport().height()
    qtbot.waitUntil(q1_in_view, timeout=2000)
