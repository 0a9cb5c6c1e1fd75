"""The server's one engine thread: it opens the model and serves requests one at a time, in order.

MLX streams belong to the thread that made them, so the model is loaded and every reply generated
on this thread; the web side (asyncio) only submits jobs and reads their events. A job's events
cross over in batches: the engine thread appends to the job's inbox and wakes the event loop only
when no wake-up is already on its way, so a request that fell behind takes every waiting event in
one go (one chunk per batch instead of one per token: less work exactly when time is short).
Cancelling a job (client gone) stops it at the next token, or skips it if it is still waiting.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import queue
import threading
from dataclasses import dataclass, field

from engine.errors import STOP_SIGNALS
from engine.session import Done
from server.errors import APIError
from server.openai_format import engine_options

log = logging.getLogger(__name__)
END = object()  # the last item of every job's event stream


@dataclass
class Job:
    """One request for the engine: the conversation and how to answer it."""

    messages: list[dict]
    effort: str = "medium"
    developer: str | None = None
    temperature: float | None = None  # None: the model folder's default (the session decides; greedy for the demo)
    top_p: float | None = None
    seed: int | None = None
    max_tokens: int | None = None
    logprobs: int | None = None  # report log-probabilities, with this many top ones (None: not asked)
    extra: dict = field(default_factory=dict)  # tools / tool_choice / response_format as sent (engine_options reads them)
    cancel: threading.Event = field(default_factory=threading.Event)
    loop: asyncio.AbstractEventLoop | None = None
    _inbox: collections.deque = field(default_factory=collections.deque)  # appended on the engine thread
    _signalled: bool = False  # a wake-up is on its way to the loop: the next put need not send another
    _ready: asyncio.Event | None = None
    ping_due: bool = False  # set on the loop by a streaming response's keep-alive timer
    browser: object = None  # engine.browser.BrowserTool when web_search is on (server.web_search)
    sources: object = None  # server.web_search.Sources that runs its calls
    browsed: list | None = None  # the conversation with the browsing turn, once answered

    def put(self, item) -> None:
        """Called on the engine thread: hand one item to the waiting request."""
        self._inbox.append(item)
        if not self._signalled:
            self._signalled = True
            self.loop.call_soon_threadsafe(self._ready.set)

    def wake(self) -> None:
        """On the loop: make a waiting take() return (with nothing, if nothing came)."""
        self._ready.set()

    async def take(self) -> list:
        """On the loop: every item waiting now, in order; waits for one when there is none.
        Returns [] when woken by wake() with nothing new."""
        inbox = self._inbox
        if not inbox:
            self._ready.clear()
            self._signalled = False
            if not inbox:  # a put between the first look and clearing the flag sent no wake-up
                await self._ready.wait()
        items = []
        while inbox:
            items.append(inbox.popleft())
        return items


class EngineRunner:
    """Serves jobs on the one thread that owns the model.

    Standalone (python -m server): `opener()` runs on a thread of the runner's own, which then
    serves jobs in arrival order. Hosted (the desktop app): `post(fn)` runs fn on the host's engine
    thread, queued with the host's own work (the chat window's replies), and the host calls
    `attach(session)` once it has loaded a model. Either way `session` is engine.open_chat's handle.
    """

    def __init__(self, opener=None, max_waiting: int = 16, post=None):
        self._opener = opener
        self._jobs: queue.Queue = queue.Queue()
        self._post = post or self._jobs.put
        self._waiting = 0
        self._lock = threading.Lock()
        self.max_waiting = max_waiting
        self.session = None  # engine.session.ChatSession, once loaded
        self.load_error: str | None = None
        self.loaded = threading.Event()
        self.served = 0
        self.active = False
        self.last_done = None  # the last request's Done event (its stop reason and token counts)
        self._thread = threading.Thread(target=self._run, name="engine", daemon=True) if post is None else None

    def start(self) -> "EngineRunner":
        if self._thread is not None:
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0, closing=None) -> None:
        """End the engine thread after the jobs queued; `closing()` runs on it last (a pipeline closes)."""
        if self._thread is not None:
            if closing is not None:
                self._jobs.put(closing)
            self._jobs.put(None)
            self._thread.join(timeout)

    def attach(self, session, error: str | None = None) -> None:
        """Hosted mode: the host loaded `session` (or failed with `error`, one sentence)."""
        self.session, self.load_error = session, error
        self.loaded.set()

    @property
    def waiting(self) -> int:
        return self._waiting

    def submit(self, job: Job) -> Job:
        """Queue a job (on the event loop). Raises APIError 503/429 when it can't be served."""
        if self.load_error:
            raise APIError(503, f"The model could not be loaded: {self.load_error}")
        with self._lock:
            if self._waiting >= self.max_waiting:
                raise APIError(429, f"The server is busy ({self._waiting} requests are waiting for the "
                                    "model); retry in a moment.")
            self._waiting += 1
        job.loop = asyncio.get_running_loop()
        job._ready = asyncio.Event()
        self._post(lambda: self.execute(job))
        return job

    # ------------------------------------------------------------------ on the engine thread

    def _run(self) -> None:
        try:
            self.session = self._opener()
        except STOP_SIGNALS:
            raise
        except BaseException as e:  # the opener's errors are already one sentence (ModelError); or a panic
            self.load_error = str(e).rstrip(".") + "."
            log.error("model load failed: %s", e)
        finally:
            self.loaded.set()
        while True:
            work = self._jobs.get()
            if work is None:
                self._close_chat()
                return
            work()

    def _close_chat(self) -> None:
        """On the engine thread, at stop: the session writes its cached conversations to disk (if it keeps them)."""
        close = getattr(self.session, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                log.exception("the prompt cache could not be written at exit")

    def execute(self, job: Job) -> None:
        """Serve one job to its end; every job's stream ends with END, whatever happens."""
        with self._lock:
            self._waiting -= 1
        self.active = True
        try:
            if not job.cancel.is_set():
                self._serve(job)
        except APIError as e:
            job.put(e)
        except STOP_SIGNALS:
            raise
        except BaseException as e:  # a bug or a Rust panic (a BaseException) must not kill the engine thread
            log.exception("generation failed")
            job.put(APIError(500, f"The engine failed while answering ({type(e).__name__}); retry."))
        finally:
            self.served += 1
            self.active = False
            job.put(END)

    def _serve(self, job: Job) -> None:
        if self.session is None:
            raise APIError(503, f"The model could not be loaded: {self.load_error}" if self.load_error else
                           "The model is still loading; retry in a moment.")
        if job.browser is not None:  # web_search: the browsing loop (server/web_search.py)
            from server import web_search

            return web_search.serve(self, job)
        session = self.session
        try:  # rendered once: its length decides 413, then the session answers it as it is
            options = engine_options(job.extra)  # tools, tool_choice, answer_format: the engine's types
            prompt = session.render(job.messages, effort=job.effort, developer=job.developer, **options)
        except ValueError as e:  # the engine's checks: one sentence each
            raise APIError(400, str(e), code="invalid_tool_or_format") from None
        prompt_len = len(prompt.ids)
        context = session.context_length
        if prompt_len >= context:
            raise APIError(413, f"The messages are {prompt_len} tokens, more than this model's context of "
                                f"{context} tokens; shorten them.", code="context_length_exceeded")
        # Clamp to the room left so the session never has to drop part of the conversation.
        room = context - prompt_len
        max_tokens = min(job.max_tokens or room, room)
        sampling = session.sampling(job.temperature, job.top_p, job.seed)
        if job.logprobs is not None:  # the extra host work only when asked
            sampling = dataclasses.replace(sampling, logprobs=job.logprobs)
        for ev in session.reply(job.messages, sampling=sampling, max_tokens=max_tokens, cancel=job.cancel,
                                prompt=prompt, owner="api"):
            if isinstance(ev, Done):
                self.last_done = ev
            job.put(ev)
