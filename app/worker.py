"""The engine thread: a QObject moved to a dedicated QThread that loads the model and generates.

MLX streams belong to the thread that created them, so loading and every generation run here,
and nothing else does (tools run on app/tools_worker.py's thread). Every entry point is either
a slot reached by a queued signal (`load`, `generate`, and `post(fn)`'s jobs, which run in turn
with them) or documented as safe from any thread (`cancel`, `post`). The session's events
(engine.events dataclasses, which import no MLX) go out as they are: token events on `outbox`,
which the GUI drains on a timer so a fast model never floods the event loop; the closing Done by
the `finished` signal. Each outbox item is (request_id, monotonic_time, event).
"""
from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from pathlib import Path

from app.qt_compat import emit
from PySide6.QtCore import QObject, QThread, Qt, Signal, Slot

from app.engine_bridge import LoadRefused, load_engine, memory_in_use
from engine.events import Done, Stop
from engine.errors import STOP_SIGNALS, ModelError

log = logging.getLogger(__name__)


def stats_to_dict(stats) -> dict:
    """GenerationStats (or anything dataclass-like) -> plain dict for signals and the store."""
    if stats is None:
        return {}
    if dataclasses.is_dataclass(stats):
        return dataclasses.asdict(stats)
    return dict(getattr(stats, "__dict__", {}))


def done_stats(done: Done) -> dict:
    """The figures a finished answer keeps: the generation's stats plus the session's own time to
    first token (cache rewind and prefill included) and prompt/reuse counts."""
    stats = stats_to_dict(done.stats)
    for key in ("ttft_s", "reused_tokens", "prompt_tokens"):
        if getattr(done, key, None):
            stats[key] = getattr(done, key)
    return stats


def load_failure(e: BaseException) -> str:
    """The sentence for a load that failed in a way the loader did not put into words."""
    return (f"The model could not be loaded ({type(e).__name__}: {e}); "
            "choose another model folder or download it again.")


class EngineWorker(QObject):
    """Owns the model. Slots run on the engine thread; results go out by signal and `outbox`."""

    loaded = Signal(str, bool)              # model display name, greedy (its folder asks for it)
    load_failed = Signal(str)               # one sentence for the user
    finished = Signal(int, object)          # request id, engine.events.Done (object: see qt_compat)
    failed = Signal(int, str)               # request id, one sentence
    memory = Signal("qint64")               # bytes in use
    started = Signal(int)                   # request id: the engine took it (it may have waited behind others)
    switch_failed = Signal(str)             # load_beside: the new model didn't load; the old one is still in use
    unloaded = Signal()                     # unload(): no model is loaded now
    _job = Signal(object)                   # post(): a function for this thread, queued with the requests

    def __init__(self, loader=None, clock=time.monotonic):
        super().__init__()
        self.python_offered = lambda: False  # set by the controller: the tools worker's answer (thread-safe)
        # The app's own loader keeps conversations' caches where `prompt_cache` says (the controller
        # names the data folder); a test's loader takes (folder, context_length) and keeps none.
        self.prompt_cache: dict = {}  # cache_folder, cache_disk_bytes
        self._loader = loader or (lambda folder, context_length: load_engine(folder, context_length,
                                                                             **self.prompt_cache))
        self.clock = clock
        self.outbox: queue.SimpleQueue = queue.SimpleQueue()
        self._engine = None
        self.folder = ""                    # the loaded model's folder (set on this thread before `loaded`)
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._current = -1
        self._cancelled: set[int] = set()
        self._job.connect(self._run_job, Qt.ConnectionType.QueuedConnection)

    def cancel(self, request_id: int) -> None:
        """Stop generation `request_id` (callable from the GUI thread; the loop checks per token)."""
        with self._lock:
            self._cancelled.add(request_id)
            if self._current == request_id:
                self._cancel.set()

    def context_info(self) -> tuple[int, tuple]:
        """(context the loaded model was opened with, the lengths it allows); read after `loaded`."""
        engine = self._engine
        return (getattr(engine, "context_length", 0), tuple(getattr(engine, "context_lengths", ()))) \
            if engine is not None else (0, ())

    def cancel_current(self) -> None:
        """Stop whatever is being generated now (any thread)."""
        with self._lock:
            self._cancel.set()

    @Slot(str, int)
    def load(self, folder: str, context_length: int) -> None:
        self._close_engine()  # the old model's cached conversations go to disk first
        try:
            self._engine = self._loader(folder, context_length)
        except LoadRefused as e:
            emit(self.load_failed, str(e))
            return
        except STOP_SIGNALS:
            raise
        except BaseException as e:  # never let a load bug (or a Rust panic) reach the user as a traceback
            log.exception("unexpected load failure")
            emit(self.load_failed, load_failure(e))
            return
        self.folder = folder
        emit(self.loaded, self._engine.name, bool(self._engine.greedy))
        emit(self.memory, memory_in_use())

    @Slot(str, int)
    def load_beside(self, folder: str, context_length: int) -> None:
        """Switch models without a gap (app/model_picker.py, when memory holds both): the new model
        loads while the old one stays; only then is the old one dropped. On failure the old one
        stays in use and `switch_failed` says why."""
        try:
            new = self._loader(folder, context_length)
        except STOP_SIGNALS:
            raise
        except BaseException as e:  # never a traceback; the working model is kept
            if not isinstance(e, LoadRefused):
                log.exception("unexpected load failure")
            emit(self.switch_failed, str(e) if isinstance(e, LoadRefused) else load_failure(e))
            return
        self._close_engine()
        self._engine, self.folder = new, folder
        emit(self.loaded, new.name, bool(new.greedy))
        emit(self.memory, memory_in_use())

    @Slot()
    def unload(self) -> None:
        """Drop the model (its cached conversations go to disk first) and free its memory."""
        self._close_engine()
        emit(self.memory, memory_in_use())
        emit(self.unloaded)      # last: the window then shows no memory figure for a model that isn't there

    @Slot(int, object, object)
    def generate(self, request_id: int, messages: list, options: dict) -> None:
        with self._lock:
            self._current = request_id
            self._cancel = threading.Event()
            if request_id in self._cancelled:
                self._cancel.set()
            cancel = self._cancel
        if self._engine is None:
            emit(self.failed, request_id, "No model is loaded yet; wait for loading to finish or pick a model.")
            return
        if cancel.is_set():   # stopped while it waited its turn: never touch the model for it
            with self._lock:
                self._current = -1
                self._cancelled.discard(request_id)
            emit(self.finished, request_id, Done(None, "cancelled"))
            return
        emit(self.started, request_id)
        done = None
        try:
            engine = self._engine
            python = bool(options.get("python")) and self.python_offered()
            events = engine.reply(
                messages, effort=options.get("effort", "medium"), developer=options.get("developer") or None,
                sampling=engine.sampling(options.get("temperature"), options.get("top_p")),
                max_tokens=int(options.get("max_tokens", 2048)), cancel=cancel, python=python,
                tools=list(options.get("tools") or []) or None, answer_format=options.get("answer_format"),
                browser=list(options.get("browser") or []) or None, owner="window")  # browser: the chat's sources
            for ev in events:
                if isinstance(ev, Done):
                    done = ev
                elif not isinstance(ev, Stop):  # Stop is summarised by Done
                    self.outbox.put((request_id, self.clock(), ev))
        except ModelError as e:  # the engine's own sentence (e.g. NaN from damaged weights)
            emit(self.failed, request_id, str(e))
            return
        except STOP_SIGNALS:
            raise
        except BaseException as e:  # a bug, or a Rust panic (a BaseException): the engine thread goes on
            log.exception("generation failed")
            emit(self.failed, request_id, f"The answer stopped because of an engine error ({type(e).__name__}: {e}); "
                                         "what was written so far is kept. Try Regenerate.")
            return
        finally:
            with self._lock:
                self._current = -1
                self._cancelled.discard(request_id)
        emit(self.finished, request_id, done if done is not None else Done(None, "stop"))
        emit(self.memory, memory_in_use())

    @property
    def engine(self):
        """The loaded engine.session.ChatSession or None; use it on the engine thread only."""
        return self._engine

    # -- the prompt cache (engine/prompt_cache.py, engine/prompt_store.py) -------------------
    def keep_prompt_cache(self, folder: str, disk_bytes: int) -> None:
        """Before the first load (the controller names the data folder): the app's loader keeps
        conversations' caches there, at most `disk_bytes` of them."""
        self.prompt_cache = {"cache_folder": folder, "cache_disk_bytes": disk_bytes}

    def clear_prompt_cache_soon(self) -> None:
        """Settings' "Clear cached conversations" (any thread): done on the engine thread, in turn."""
        self.post(self.clear_prompt_cache)

    def set_prompt_cache_bytes_soon(self, n: int) -> None:
        """Settings' disk space for them (any thread): applied on the engine thread, in turn."""
        self.post(lambda: self.set_prompt_cache_bytes(n))

    @Slot()
    def clear_prompt_cache(self) -> None:
        """Settings' button: forget the cached conversations, in memory and on disk (every model's)."""
        cache = getattr(self._engine, "prompt_cache", None)
        if cache is not None:
            cache.clear()
            self._engine.conversation = None
            if cache.store is not None:
                cache.store.clear()
        folder = self.prompt_cache.get("cache_folder")
        if folder:
            for path in Path(folder).glob("*/*.safetensors"):
                path.unlink(missing_ok=True)

    @Slot("qint64")
    def set_prompt_cache_bytes(self, n: int) -> None:
        self.prompt_cache["cache_disk_bytes"] = int(n)
        store = getattr(getattr(self._engine, "prompt_cache", None), "store", None)
        if store is not None:
            store.budget_bytes = int(n)  # the writer applies it after its next file

    def _close_engine(self) -> None:
        """On the engine thread: write the cached conversations to disk (the app quits or loads another model)."""
        close = getattr(self._engine, "close", None)
        self._engine, self.folder = None, ""
        if close is not None:
            try:
                close()
            except Exception:  # never let it stop the app from quitting
                log.exception("the cached conversations could not be written")

    def post(self, fn) -> None:
        """Run fn() on the engine thread, in turn with the window's requests (any thread; the local
        API's jobs and the launcher's memory check come this way)."""
        emit(self._job, fn)

    @Slot(object)
    def _run_job(self, fn) -> None:
        try:
            fn()
        except STOP_SIGNALS:
            raise
        except BaseException:  # a job's bug (or a Rust panic) must not end the engine thread
            log.exception("engine job failed")


class WorkerThread(QObject):
    """Starts a worker QObject on a QThread of its own and stops it cleanly (before_stop, quit, wait)."""

    def __init__(self, worker: QObject, name: str, before_stop=None, parent=None):
        super().__init__(parent)
        self.worker, self.before_stop = worker, before_stop
        self.thread = QThread()
        self.thread.setObjectName(name)
        worker.moveToThread(self.thread)
        self.thread.start()

    def stop(self, timeout_ms: int = 10000) -> None:
        if self.before_stop is not None:
            self.before_stop()
        self.thread.quit()
        self.thread.wait(timeout_ms)


def EngineThread(worker: EngineWorker) -> WorkerThread:  # noqa: N802 (a thread, named as one)
    """The engine worker's thread; stopping it cancels the answer being generated first."""
    thread = WorkerThread(worker, "engine", worker.cancel_current)
    # Emitted on the engine thread as its loop ends: the session writes its cache there (MLX's thread).
    thread.thread.finished.connect(worker._close_engine, Qt.ConnectionType.DirectConnection)
    return thread
