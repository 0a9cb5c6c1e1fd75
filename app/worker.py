"""The engine thread: a QObject moved to a dedicated QThread that loads the model and generates.

MLX streams belong to the thread that created them, so loading and every generation run here.
The GUI talks to the worker only through queued signals (plus `cancel()`, which just sets a
threading.Event and is safe from any thread). The session's events (engine.events dataclasses,
which import no MLX) go out as they are: token events on `outbox`, which the GUI drains on a
timer so a fast model never floods the event loop; the closing Done by the `finished` signal.
Each outbox item is (request_id, monotonic_time, event).
"""
from __future__ import annotations

import dataclasses
import inspect
import logging
import queue
import threading
import time
from pathlib import Path

from app.qt_compat import emit
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from app.engine_bridge import LoadRefused, load_engine, memory_in_use
from engine.events import Done, Stop
from engine.errors import ModelError

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


def _accepts(function, name: str) -> bool:
    """Whether `function` takes the keyword `name` (an engine without tools simply isn't offered them)."""
    try:
        params = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


class EngineWorker(QObject):
    """Owns the model. Slots run on the engine thread; results go out by signal and `outbox`."""

    loaded = Signal(str)                    # model display name
    load_failed = Signal(str)               # one sentence for the user
    finished = Signal(int, object)          # request id, engine.events.Done (object: see qt_compat)
    failed = Signal(int, str)               # request id, one sentence
    memory = Signal("qint64")               # bytes in use
    tool_finished = Signal(int, object)     # request id, dict: text, images, error, restarted, folder

    def __init__(self, loader=load_engine, clock=time.monotonic, pool=None):
        super().__init__()
        self._pool = pool                   # engine.python_tool.PythonToolPool, made on first use
        self._python_enabled = True
        self._loader = loader
        self.clock = clock
        self.outbox: queue.SimpleQueue = queue.SimpleQueue()
        self._engine = None
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._current = -1
        self._cancelled: set[int] = set()
        self.prompt_cache = {}  # cache_folder, cache_disk_bytes for the loader (set by the controller)

    def cancel(self, request_id: int) -> None:
        """Stop generation `request_id` (callable from the GUI thread; the loop checks per token)."""
        with self._lock:
            self._cancelled.add(request_id)
            if self._current == request_id:
                self._cancel.set()

    @Slot(str, int)
    def load(self, folder: str, context_length: int) -> None:
        self._close_engine()  # the old model's cached conversations go to disk first
        extra = {k: v for k, v in self.prompt_cache.items() if _accepts(self._loader, k)}
        try:
            self._engine = self._loader(folder, context_length, **extra)
        except LoadRefused as e:
            emit(self.load_failed, str(e))
            return
        except Exception as e:  # never let a load bug reach the user as a traceback
            log.exception("unexpected load failure")
            emit(self.load_failed, f"The model could not be loaded ({type(e).__name__}: {e}); "
                                  "choose another model folder or download it again.")
            return
        emit(self.loaded, self._engine.model_name)
        emit(self.memory, memory_in_use())

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
        done = None
        try:
            sampling = self._engine.sampling(options.get("temperature", 1.0), options.get("top_p", 1.0))
            events = self._engine.session.reply(
                messages, effort=options.get("effort", "medium"), developer=options.get("developer") or None,
                sampling=sampling, max_tokens=int(options.get("max_tokens", 2048)), cancel=cancel,
                **self._tool_options(options), **self._owner())
            for ev in events:
                if isinstance(ev, Done):
                    done = ev
                elif not isinstance(ev, Stop):  # Stop is summarised by Done
                    self.outbox.put((request_id, self.clock(), ev))
        except ModelError as e:  # the engine's own sentence (e.g. NaN from damaged weights)
            emit(self.failed, request_id, str(e))
            return
        except Exception as e:
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

    # -- the prompt cache (engine/prompt_cache.py, engine/prompt_store.py) -------------------
    def _owner(self) -> dict:
        """The window's conversations are evicted from memory after the API's, each one's newest last."""
        return {"owner": "window"} if _accepts(self._engine.session.reply, "owner") else {}

    @Slot()
    def clear_prompt_cache(self) -> None:
        """Settings' button: forget the cached conversations, in memory and on disk."""
        session = getattr(self._engine, "session", None)
        cache = getattr(session, "prompt_cache", None)
        if cache is not None:
            cache.clear()
            session.conversation = None
            if cache.store is not None:
                cache.store.clear()
        folder = self.prompt_cache.get("cache_folder")
        if folder:  # files of models not loaded now go too
            for path in Path(folder).glob("*/*.safetensors"):
                path.unlink(missing_ok=True)

    @Slot("qint64")
    def set_prompt_cache_bytes(self, n: int) -> None:
        self.prompt_cache["cache_disk_bytes"] = int(n)
        store = getattr(getattr(getattr(self._engine, "session", None), "prompt_cache", None), "store", None)
        if store is not None:
            store.budget_bytes = int(n)  # the writer applies it after its next file

    def _close_engine(self) -> None:
        """On the engine thread: write the cached conversations to disk (the app quits or loads another model)."""
        close = getattr(getattr(self._engine, "session", None), "close", None)
        self._engine = None
        if close is not None:
            try:
                close()
            except Exception:  # never let it stop the app from quitting
                log.exception("the cached conversations could not be written")

    @property
    def engine(self):
        """The loaded engine (app.engine_bridge.LoadedEngine) or None; use it on the engine thread only."""
        return self._engine

    @Slot(object)
    def run(self, fn) -> None:
        """Run fn() here, in turn with the window's generate requests (the local API's jobs come this way)."""
        try:
            fn()
        except Exception:  # a job's bug must not end the engine thread
            log.exception("engine job failed")

    # -- tools -------------------------------------------------------------------------
    def python_pool(self):
        """The chats' Python kernels (engine/python_tool), folders under the app-data folder."""
        if self._pool is None:
            from app.paths import app_data_dir
            from engine.python_tool import PythonToolPool
            self._pool = PythonToolPool(app_data_dir() / "python", enabled=self._python_enabled)
        return self._pool

    def set_python_enabled(self, on: bool) -> None:
        """The settings switch; switching off ends every kernel (their folders stay)."""
        self._python_enabled = on
        if self._pool is not None:
            self._pool.enabled = on

    def _tool_options(self, options: dict) -> dict:
        # Only named when used, so a session without tools keeps working.
        extra = {}
        if options.get("python") and self._python_enabled and self.python_pool().offered():
            extra["python"] = True
        if options.get("tools"):
            extra["tools"] = list(options["tools"])
        if options.get("response_format"):
            extra["response_format"] = options["response_format"]
        return {k: v for k, v in extra.items() if _accepts(self._engine.session.reply, k)}

    @Slot(int, str, str)
    def run_python(self, request_id: int, chat: str, code: str) -> None:
        """Run a python call in chat `chat`'s sandboxed kernel; the result goes out by tool_finished."""
        pool = self.python_pool()
        tool = pool.tool(chat)
        folder = str(pool.folder(chat))
        if tool is None:
            out = {"text": "The python tool is switched off.", "images": [], "error": "The Python tool is switched off "
                   "in Settings.", "restarted": False, "folder": folder}
        else:
            try:
                result = tool.run(code)
                out = {"text": result.text, "images": [str(p) for p in result.images], "error": result.error,
                       "restarted": result.restarted, "folder": folder}
            except Exception as e:  # the tool promises sentences, but never let a bug end the turn badly
                log.exception("python tool failed")
                out = {"text": f"[The code could not be run: {type(e).__name__}]", "images": [], "restarted": False,
                       "error": f"The code could not be run ({type(e).__name__}: {e}).", "folder": folder}
        emit(self.tool_finished, request_id, out)

    @Slot(str)
    def warm_python(self, chat: str) -> None:
        """Start chat `chat`'s kernel (a few seconds) while the user reads the code; runs nothing."""
        tool = self.python_pool().tool(chat)
        if tool is not None:
            tool.start()

    def interrupt_tool(self, chat: str) -> None:
        """Stop the code running in `chat` (callable from the GUI thread)."""
        if self._pool is not None:
            self._pool.interrupt(chat)

    def forget_python(self, chat: str) -> None:
        """A deleted chat: end its kernel now, off the GUI thread (its folder stays for Undo)."""
        if self._pool is not None:
            threading.Thread(target=self._pool.close, args=(chat,), name="python-close", daemon=True).start()

    def sweep_python_folders(self, chat_ids, history_file) -> None:
        """Remove the Python folders of chats the history no longer holds (lock holder only). Only
        folders that live beside `history_file` belong to that history; others are left alone."""
        pool = self.python_pool()
        if pool.root.parent.resolve() == Path(history_file).parent.resolve():
            pool.remove_folders_except(chat_ids)

    def close_tools(self) -> None:
        if self._pool is not None:
            self._pool.close_all()


class EngineThread(QObject):
    """Starts the worker on its own QThread and stops it cleanly (cancel, quit, wait)."""

    def __init__(self, worker: EngineWorker, parent=None):
        super().__init__(parent)
        self.worker = worker
        self.thread = QThread()
        self.thread.setObjectName("engine")
        worker.moveToThread(self.thread)
        # Emitted on the engine thread as its loop ends: the session writes its cache there (MLX's thread).
        self.thread.finished.connect(worker._close_engine, Qt.ConnectionType.DirectConnection)
        self.thread.start()

    def stop(self, timeout_ms: int = 10000) -> None:
        with self.worker._lock:
            self.worker._cancel.set()
        self.thread.quit()
        self.thread.wait(timeout_ms)
