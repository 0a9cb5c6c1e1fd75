"""At a fork the engine's prompt cache (engine/prompt_cache.py) resumes from the shared prefix, so
only the new part is read: a regenerated answer reads one token, an edit reads the edited message,
and a branch switched back to resumes where it was. The real engine on a tiny checkpoint; the
figures are the answers' own stats (reused_tokens of prompt_tokens)."""
import pytest

pytest.importorskip("mlx.core")

from app.controller import ChatController  # noqa: E402
from app.store import ChatStore  # noqa: E402
from app.worker import EngineWorker  # noqa: E402


def answer(qtbot, c, act, *args):
    assert act(*args)
    qtbot.waitUntil(lambda: not c.busy, timeout=60000)
    stats = c.model.last().stats
    assert c.model.last().state == "done", c.model.last().notice
    return stats["prompt_tokens"], stats.get("reused_tokens", 0)


def test_a_fork_prefills_only_what_is_new(qtbot, tmp_path, app_home, tiny_chat_folder):
    store = ChatStore(tmp_path / "h.sqlite3")
    c = ChatController(store, EngineWorker())     # the app's own loader and prompt cache
    c.settings.max_tokens = 4
    with qtbot.waitSignal(c.model_ready, timeout=60000):
        c.load_model(str(tiny_chat_folder))
    count = c.worker.engine.count_tokens

    first, _ = answer(qtbot, c, c.send, "Tell me about lighthouses and the keepers who lived in them. " * 3)
    total, reused = answer(qtbot, c, c.regenerate)
    assert (total, reused) == (first, first - 1)          # the same prompt: only its last token is fed again

    answer(qtbot, c, c.send, "And the lenses they used?")
    third, _ = answer(qtbot, c, c.send, "Who made them?")
    edited = "Which lenses were the brightest ever built?"
    total, reused = answer(qtbot, c, c.edit_at, 2, edited)   # fork at the second question
    assert 0 < total - reused <= count(edited) + 8        # the edited message and its frame, nothing before
    assert c.model.message(2).alternatives == (2, 2)

    assert c.switch_alternative(2, -1)                    # the old branch, and carry on there
    total, reused = answer(qtbot, c, c.send, "Thanks.")
    assert reused >= third - 1                            # resumed at its last question, nothing read again
    assert total - reused <= count(c.model.messages()[-3].text) + count("Thanks.") + 16
    c.shutdown()
    store.close()
