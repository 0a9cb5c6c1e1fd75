"""The workers' results, handed to the turn they belong to (on the Qt thread).

The engine worker puts its token events in an outbox (a queue, filled on the engine thread); a
QTimer drains it every `flush_ms` while an answer is being written, so each turn applies a batch
and its row is repainted once per batch. The engine's started/finished/failed reports and the
tools' results (app/tool_calls.py) come by signal; each carries the request id that finds its turn
(the engine's and the tools' requests share one counter).
"""
from __future__ import annotations

import queue
from typing import Callable

from PySide6.QtCore import QObject, QTimer

from app.turn import Turn
from app.worker import EngineWorker, done_stats
from engine.events import Done


class TurnRouter(QObject):
    """Routes to `turns` (the answers being written, by conversation id: the owner's own dict);
    `show(turn)` repaints a turn's row, `freed()` is called after a request to the model ended."""

    def __init__(self, turns: dict[int, Turn], worker: EngineWorker, show: Callable[[Turn], None],
                 freed: Callable[[], None], flush_ms: int = 30, parent=None):
        super().__init__(parent)
        self.turns, self._worker, self._show, self._freed = turns, worker, show, freed
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)
        worker.started.connect(self._on_started)
        self._timer = QTimer(self)
        self._timer.setInterval(flush_ms)
        self._timer.timeout.connect(self.flush)

    def start(self) -> None:
        """A request is out: drain its events as they come."""
        self._timer.start()

    def stop(self) -> None:
        """No answer is being written: nothing to drain."""
        self._timer.stop()

    def flush(self) -> None:
        """Apply every queued token event to the answers being written, then repaint each once."""
        changed: set[Turn] = set()
        while True:
            try:
                rid, t, ev = self._worker.outbox.get_nowait()
            except queue.Empty:
                break
            turn = self.turn_for(rid)
            if turn is not None:
                turn.apply(t, ev)
                changed.add(turn)
        for turn in changed:
            self._show(turn)
            turn.save_progress(force=False)

    def turn_for(self, request_id: int) -> Turn | None:
        return next((t for t in self.turns.values() if t.request_id == request_id), None)

    def _on_started(self, request_id: int) -> None:
        turn = self.turn_for(request_id)
        if turn is not None:
            turn.on_started()

    def _on_finished(self, request_id: int, done: Done) -> None:
        self.flush()
        turn = self.turn_for(request_id)
        if turn is not None:
            turn.on_finished(done_stats(done), str(done.stop_reason))
            self._freed()   # a call may have freed the model for other chats

    def _on_failed(self, request_id: int, message: str) -> None:
        self.flush()
        turn = self.turn_for(request_id)
        if turn is not None:
            turn.on_failed(message)

    def on_tool_finished(self, request_id: int, out: dict) -> None:
        """A tool's result (app/tool_calls.py's `finished`)."""
        turn = self.turn_for(request_id)
        if turn is not None:
            turn.on_tool_finished(out)
