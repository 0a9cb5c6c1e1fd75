"""Issue 29 item 2: Settings offers only the context lengths the model and the memory plan allow; a
setting the model refuses never unloads a working model, and a fixed setting loads it again."""
from dataclasses import replace

import pytest
from scripted import ScriptedSession

from app.controller import ChatController
from app.engine_bridge import LoadRefused, fitting_contexts
from app.settings import CONTEXT_LENGTHS, Settings
from app.ui.settings_dialog import SettingsDialog
from app.worker import EngineWorker
from models.registry import demo_folder

needs_demo = pytest.mark.skipif(not (demo_folder() / "config.json").is_file(), reason="models/demo not exported")


def offered(dialog) -> list[int]:
    return [dialog.context.itemData(i) for i in range(dialog.context.count())]


@needs_demo
def test_the_demo_model_allows_what_its_config_takes():
    # The demo's config.json: max_position_embeddings 8192; its memory is a few MB, so any budget fits.
    assert fitting_contexts(str(demo_folder()), budget=8 << 30) == (4096, 8192)
    assert fitting_contexts(str(demo_folder()), budget=1) == ()


@needs_demo
def test_a_saved_context_the_demo_refuses_loads_it_at_the_longest_it_takes(qtbot, store):
    pytest.importorskip("mlx.core")
    Settings(context_length=131072).save(store)
    c = ChatController(store, EngineWorker(), flush_ms=10)
    with qtbot.waitSignal(c.model_ready, timeout=60000):
        c.load_model(str(demo_folder()))
    assert c.ready and c.context_lengths == (4096, 8192)
    assert c.settings.context_length == 8192 and Settings.load(store).context_length == 8192
    c.shutdown()


class PickyLoader:
    """Loads when the context is at most 8K, refuses beyond (as a model's config or memory would)."""

    def __init__(self):
        self.asked: list[int] = []

    def __call__(self, folder, ctx):
        self.asked.append(ctx)
        if ctx > 8192:
            raise LoadRefused("Not enough memory to load this model; choose a shorter context length.")
        session = ScriptedSession(name="picky model")
        session.context_length, session.context_lengths = ctx, (4096, 8192)   # as load_engine's handle says
        return session


def test_settings_offers_only_allowed_lengths_and_a_refused_one_keeps_the_model(qtbot, store):
    loader = PickyLoader()
    c = ChatController(store, EngineWorker(loader=loader), flush_ms=10)
    with qtbot.waitSignal(c.model_ready, timeout=5000):
        c.load_model("/picky")
    d = SettingsDialog(c.settings, context_lengths=c.context_lengths)
    qtbot.addWidget(d)
    assert offered(d) == [4096, 8192] and "at most 8K" in d.context_note.text()
    assert offered(SettingsDialog(c.settings)) == list(CONTEXT_LENGTHS)    # unknown: everything
    # e.g. a caller that skips the dialog
    c.save_settings(replace(c.settings, context_length=131072))
    assert c.ready and loader.asked == [8192] and c.settings.context_length == 8192
    c.shutdown()


def test_a_fixed_context_loads_the_model_again_after_a_refusal(qtbot, store):
    loader = PickyLoader()
    Settings(context_length=131072).save(store)
    c = ChatController(store, EngineWorker(loader=loader), flush_ms=10)
    with qtbot.waitSignal(c.model_failed, timeout=5000):
        c.load_model("/picky")
    with qtbot.waitSignal(c.model_ready, timeout=5000):
        c.save_settings(replace(c.settings, context_length=8192))
    assert c.ready and loader.asked == [131072, 8192]
    c.shutdown()


class RefusingSession(ScriptedSession):
    """A session whose every prompt is too long for its context (as the engine reports it)."""

    def reply(self, messages, **kw):
        from engine.events import Done, PromptTooLong
        from scripted import FakeStats
        yield PromptTooLong("message", 9000, 8900, 30000, 0, 60, 4096, 8192, 4096)
        yield Done(FakeStats(stop_reason="too_long"), "too_long")


@pytest.mark.parametrize("allowed, suggests", [((4096, 8192), False), ((4096, 8192, 16384), True)])
def test_the_too_long_sentence_suggests_a_longer_context_only_when_there_is_one(qtbot, store, allowed, suggests):
    refused = []
    session = RefusingSession(name="m")
    session.context_lengths = allowed
    loader = lambda folder, ctx: session  # noqa: E731
    c = ChatController(store, EngineWorker(loader=loader), flush_ms=10)
    c.message_refused.connect(lambda text, notice: refused.append(notice))
    with qtbot.waitSignal(c.model_ready, timeout=5000):
        c.load_model("/m")
    assert c.send("x" * 30000)
    qtbot.waitUntil(lambda: not c.busy and bool(refused), timeout=5000)
    assert "30,000 characters" in refused[0]
    assert ("longer context in Settings" in refused[0]) == suggests
    c.shutdown()
