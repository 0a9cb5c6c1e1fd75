"""app/turn_router.py: each of the workers' results reaches the turn whose request it answers (by
request id), token events are applied in order and each changed turn is repainted once per batch;
a result for a request no turn waits for (a stopped one) is dropped."""
from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from app.turn_router import TurnRouter  # noqa: E402
from app.worker import EngineWorker  # noqa: E402
from engine.events import Done, TextDelta  # noqa: E402


class RecordingTurn:
    """Records what the router hands it (a Turn's entry points, nothing else)."""

    def __init__(self, request_id: int):
        self.request_id, self.got, self.saves = request_id, [], 0

    def apply(self, t, ev):
        self.got.append(("apply", ev.text))

    def save_progress(self, force=True):
        self.saves += 1

    def on_started(self):
        self.got.append(("started",))

    def on_finished(self, stats, reason):
        self.got.append(("finished", reason))

    def on_failed(self, message):
        self.got.append(("failed", message))

    def on_tool_finished(self, out):
        self.got.append(("tool", out["text"]))


@pytest.fixture
def routed(qtbot):
    worker, shown, freed = EngineWorker(), [], []
    a, b = RecordingTurn(1), RecordingTurn(2)
    router = TurnRouter({10: a, 20: b}, worker, shown.append, lambda: freed.append(True))
    return worker, router, a, b, shown, freed


def test_token_events_reach_their_turn_in_order_and_each_turn_is_repainted_once(routed):
    worker, router, a, b, shown, _ = routed
    for rid, text in ((1, "Hel"), (3, "lost"), (1, "lo"), (2, "Hi")):
        worker.outbox.put((rid, 0.0, TextDelta("final", text)))
    router.flush()
    assert a.got == [("apply", "Hel"), ("apply", "lo")] and b.got == [("apply", "Hi")]
    assert sorted(t.request_id for t in shown) == [1, 2] and (a.saves, b.saves) == (1, 1)


def test_started_finished_failed_and_tool_results_reach_their_turn(routed):
    worker, router, a, b, _, freed = routed
    worker.outbox.put((1, 0.0, TextDelta("final", "tail")))
    worker.started.emit(1)
    worker.finished.emit(1, Done(stats=None, stop_reason="stop"))   # its last tokens are applied first
    worker.failed.emit(2, "The model stopped.")
    router.on_tool_finished(2, {"text": "42"})
    worker.finished.emit(7, Done(stats=None, stop_reason="stop"))   # nobody waits for request 7
    assert a.got == [("started",), ("apply", "tail"), ("finished", "stop")]
    assert b.got == [("failed", "The model stopped."), ("tool", "42")]
    assert freed == [True]
