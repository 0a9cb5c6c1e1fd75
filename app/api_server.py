"""The app's "Local API server" switch: server/ (the OpenAI-compatible API) served by uvicorn on a
background thread, answering with the chat window's model on the chat window's engine thread.

One engine thread: each API request is posted to the EngineWorker (`post`, thread-safe) and queues there,
in order, with the window's own replies, so the two never generate at the same time and share one
model (and its session's cache). The model is attached to the server's runner on the engine thread
right after each load, and detached before the next load starts, so the server never keeps an old
model alive while a new one loads. No widgets here: app/ui shows this object's state.

Who may reach it (Settings' port, API key, this computer or the network) is applied by apply() on
Save: a new port or reach rebinds, a new key only swaps the API behind the open port. Every request
answered goes to `requests` (app.request_log.RequestLog), recorded by the server's own hook.
"""
from __future__ import annotations

import logging
import os
import socket
import threading

from PySide6.QtCore import QObject, Qt, Signal

from app.api_access import EVERYWHERE, LOOPBACK, NEEDS_KEY, base_url
from app.qt_compat import emit
from app.request_log import RequestLog

log = logging.getLogger(__name__)

HOST = LOOPBACK          # this computer only, unless Settings opens it to the network (with a key)
PORTS_TRIED = 20         # at launch: the preferred port and the next ones, when it is taken
REBIND_S = 5.0           # how long a restart waits for its own old socket to let go of the port
MAX_WAITING = 16         # requests waiting for the engine before new ones get 429
NO_MODEL = "the app has no model yet; choose or download one in the app."
UNLOADED = "no model is loaded in the app (it was unloaded); choose one in the app's model picker."
SWITCHED_OFF = "The local API server was switched off in the app; switch it on again in Settings to continue."


def someone_listens(host: str, port: int) -> bool:
    """A program already accepts connections there (on macOS a bind could still succeed beside it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((LOOPBACK if host == EVERYWHERE else host, port)) == 0


def listen_exactly(host: str, port: int) -> tuple[socket.socket | None, str]:
    """(a socket listening on host:port, "") or (None, one sentence saying why not)."""
    sock = bind_free_port(host, port, tries=1)
    if sock is not None:
        return sock, ""
    if someone_listens(host, port):
        return None, f"Port {port} is in use by another program"
    return None, f"The server can't listen on port {port} here"


def bind_free_port(host: str, preferred: int, tries: int = PORTS_TRIED) -> socket.socket | None:
    """A listening socket on `preferred` or the next free port after it; None when all are taken."""
    for port in range(preferred, min(preferred + tries, 65536)):
        if someone_listens(host, port):
            continue
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if os.name != "nt":  # the port our last run left in TIME_WAIT is free to take again
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen(128)
        except OSError:
            sock.close()
            continue
        return sock
    return None


class SwappableApp:
    """ASGI app forwarding to `inner`: a model switch swaps the API (its model id) while the port stays open."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        await self.inner(scope, receive, send)


def _hosted_runner(post):
    """server.runner.EngineRunner in hosted mode, plus close(): the job running stops at its next
    token and the jobs still waiting get a 503 instead of an answer."""
    from server.errors import APIError
    from server.runner import EngineRunner

    class HostedRunner(EngineRunner):
        closed = False
        _current = None

        def close(self) -> None:
            self.closed = True
            job = self._current
            if job is not None:
                job.cancel.set()

        def execute(self, job) -> None:
            self._current = job  # set before checking `closed`, so close() either sees it or is seen
            try:
                if self.closed and not job.cancel.is_set():
                    job.put(APIError(503, SWITCHED_OFF))
                    job.cancel.set()
                super().execute(job)
            finally:
                self._current = None

    return HostedRunner(post=post, max_waiting=MAX_WAITING)


class LocalApiServer(QObject):
    """Start/stop the API (127.0.0.1, or every interface with a key); `url`, `served` and `note` say
    what Settings shows."""

    changed = Signal()              # switched on or off, or the note changed
    served_changed = Signal(int)    # requests served since it was switched on
    answering_changed = Signal(bool)  # an API request is on the engine now (the window's send waits)
    _failed = Signal(object, str)   # the uvicorn.Server that stopped by itself, one sentence

    def __init__(self, controller, parent=None):
        super().__init__(parent)
        self.c = controller
        self.host = HOST            # where it listens: Settings' reach decides (start, apply)
        self.port = 0
        self.note = ""              # one sentence: another port was taken, or it could not start
        self._runner = None
        self._server = None         # the uvicorn.Server while switched on
        self._thread: threading.Thread | None = None
        self._asgi: SwappableApp | None = None
        self._model_id = ""
        self._folder = controller.folder
        self._loading = False
        self.requests = RequestLog(parent=self)   # the last requests answered, kept across restarts
        worker = controller.worker
        # Direct: called on the engine thread inside the load, before any job queued behind it.
        worker.loaded.connect(lambda *_: self._attach_current(), Qt.ConnectionType.DirectConnection)
        worker.load_failed.connect(self._attach_failed_load, Qt.ConnectionType.DirectConnection)
        worker.unloaded.connect(lambda: self._attach_failed_load(UNLOADED), Qt.ConnectionType.DirectConnection)
        controller.model_loading.connect(self._on_loading)
        self._failed.connect(self._on_failed)
        controller.model_ready.connect(lambda _name: self._set_loading(False))
        controller.model_failed.connect(lambda _msg: self._set_loading(False))

    # -- state for the UI ----------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        """The base URL clients use (OpenAI's base_url), e.g. http://127.0.0.1:8000/v1; on the
        network, this computer's network address."""
        return base_url(self.host, self.port) if self.port else ""

    @property
    def on_network(self) -> bool:
        return self.running and self.host == EVERYWHERE

    @property
    def served(self) -> int:
        return self._runner.served if self._runner is not None else 0

    @property
    def waiting(self) -> int:
        """API requests queued for the engine (behind the window's answer or each other)."""
        return self._runner.waiting if self._runner is not None else 0

    # -- switching -----------------------------------------------------------------------
    def set_enabled(self, on: bool) -> bool:
        """The switch: remember the choice (it is restored at launch), then start or stop. False when
        it could not start (`note` says why)."""
        started = self.start() if on else (self.stop() or True)
        self.c.settings.api_server = bool(on) and started   # the switch shows off when it could not start
        self.c.settings.save(self.c.store)
        return started

    def start(self) -> bool:
        """Listen on the preferred port (Settings.api_port) or the next free one; False when none is
        free, or when Settings asks for the network without a key (`note` says why)."""
        if self.running:
            return True
        if self._thread is not None:  # the last run is still closing its connections
            self._thread.join(5)
        s = self.c.settings
        if s.api_network and not s.api_key:
            self.note = NEEDS_KEY
            emit(self.changed)
            return False
        host = EVERYWHERE if s.api_network else HOST
        preferred = int(s.api_port)
        sock = bind_free_port(host, preferred)
        if sock is None:
            self.note = (f"Ports {preferred} to {preferred + PORTS_TRIED - 1} are all in use by other programs; "
                         "close one of them and switch the server on again.")
            emit(self.changed)
            return False
        port = sock.getsockname()[1]
        self.note = "" if port == preferred else (
            f"Port {preferred} is in use by another program, so the server listens on port {port}.")
        self._serve_on(host, sock)
        return True

    def apply(self, on: bool, port: int, key: str, network: bool) -> str:
        """Settings' Save: switch on or off, on this port, with this key ("": none), on the network or
        not. Rebinds only for a new port or reach; a new key swaps the API behind the open port. ""
        when done; else one sentence, and nothing changed (the old server keeps running, or it stays off)."""
        s = self.c.settings
        if on and network and not key:
            return NEEDS_KEY
        host = EVERYWHERE if network else HOST
        moved = port not in (s.api_port, self.port)   # the port it listens on now is no move either
        if on and (not self.running or moved or host != self.host):
            old = (s.api_key, s.api_network)
            s.api_key, s.api_network = key, network   # what the new server's gate reads
            problem = self._rebind(host, port)
            if problem:
                s.api_key, s.api_network = old
                return problem
        elif not on:
            self.stop()
            self.note = ""          # what it said about its last start is history
        elif key != s.api_key and self._asgi is not None:
            s.api_key = key
            self._asgi.inner = self._api(self._runner, self._model_id)
        s.api_server, s.api_port, s.api_key, s.api_network = on, port, key, network
        s.save(self.c.store)
        emit(self.changed)
        return ""

    def _rebind(self, host: str, port: int) -> str:
        """Serve on exactly host:port, the old server (if any) replaced; one sentence when that can't be."""
        sock, problem = listen_exactly(host, port)
        if sock is None and self.running and port == self.port:   # our own socket holds the port
            old_host = self.host
            self.stop()
            sock, problem = _listen_within(host, port, REBIND_S)
            if sock is None:   # put the old server back where it was
                back, _ = _listen_within(old_host, port, REBIND_S)
                if back is not None:
                    self._serve_on(old_host, back)
                return f"{problem}; the server keeps listening as before."
        if sock is None:
            free = bind_free_port(host, port + 1) if port < 65535 else None
            hint = f" ({free.getsockname()[1]} is free)" if free is not None else ""
            if free is not None:
                free.close()
            keeps = f"; the server keeps listening on port {self.port}" if self.running else ""
            return f"{problem}: choose another port{hint}{keeps}."
        self.stop()
        self.note = ""
        self._serve_on(host, sock)
        return ""

    def _serve_on(self, host: str, sock: socket.socket) -> None:
        """Start uvicorn on its own thread with a listening socket."""
        self.host, self.port = host, sock.getsockname()[1]
        import uvicorn  # here, not at import: the app starts without the server's dependencies loaded

        runner = _hosted_runner(self._post)
        self._runner = runner
        self._model_id = self._current_model_id()
        self._asgi = SwappableApp(self._api(runner, self._model_id))
        config = uvicorn.Config(self._asgi, lifespan="off", log_level="warning", access_log=False,
                                timeout_graceful_shutdown=3)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, args=(self._server, sock), name="local-api",
                                        daemon=True)
        self._thread.start()
        self.c.worker.post(lambda: self._attach_current(runner))
        emit(self.changed)
        emit(self.served_changed, 0)
        log.info("local API server listening on %s:%d", host, self.port)

    def _api(self, runner, model_id: str):
        """The API app for `model_id`: no web page may call it unless Settings allows its origin; the
        body limit follows the context length."""
        from server.app import create_app
        from server.gate import default_max_body
        from server.names import aliases_for

        s = self.c.settings
        return create_app(runner, model_id, s.api_key or None, aliases=aliases_for(self._folder) if self._folder else (),
                          allowed_origins=s.api_allowed_origins, max_body=default_max_body(s.context_length),
                          loopback_only=self.host != EVERYWHERE, on_request=self.requests.add)

    def stop(self, wait: float = 0.0) -> None:
        """Stop listening at once (the port is free within a moment); the request answering stops at
        its next token and waiting ones get a 503. `wait`: seconds to wait for the thread to end."""
        if self._server is not None:
            runner = self._runner
            runner.close()
            self._server.should_exit = True
            self._server = None
            # Let go of the model after the job running now, so a later load doesn't keep two alive.
            self.c.worker.post(lambda: runner.attach(None))
            emit(self.changed)
        if wait and self._thread is not None:
            self._thread.join(wait)

    # -- the model -----------------------------------------------------------------------
    def _current_model_id(self) -> str:
        from engine.front_door import model_name

        return model_name(self._folder) if self._folder else "none"

    def _set_loading(self, loading: bool) -> None:
        self._loading = loading

    def _on_loading(self, folder: str) -> None:
        """GUI thread, just before the load request is queued: detach first, in the same queue."""
        self._folder, self._loading = folder, True
        runner = self._runner
        if runner is not None:
            self.c.worker.post(lambda: runner.attach(None))

    def _attach_current(self, runner=None) -> None:
        """Engine thread: hand the runner the loaded model (or say why there is none)."""
        runner = runner or self._runner
        if runner is None or runner.closed:
            return
        engine = self.c.worker.engine
        if engine is None:
            runner.attach(None, None if self._loading else (self.c.model_error or NO_MODEL))
            return
        self._folder = self.c.worker.folder or self._folder   # a model picker switch loads without model_loading
        model_id = self._current_model_id()
        if model_id != self._model_id and self._asgi is not None:
            self._asgi.inner, self._model_id = self._api(runner, model_id), model_id
        runner.attach(engine)

    def _attach_failed_load(self, message: str) -> None:
        runner = self._runner
        if runner is not None and not runner.closed:
            runner.attach(None, message)

    def _post(self, fn) -> None:
        """The runner's `post` (called on the server's thread): run fn on the engine thread, then
        tell the UI the new count."""
        runner = self._runner

        def job():
            emit(self.answering_changed, True)
            try:
                fn()
            finally:
                emit(self.answering_changed, False)
                emit(self.served_changed, runner.served)

        self.c.worker.post(job)

    # -- the server's own thread ---------------------------------------------------------
    def _serve(self, server, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as e:  # SystemExit too: uvicorn exits that way when startup fails
            log.exception("local API server stopped")
            emit(self._failed, server, f"The local API server stopped because of an error ({type(e).__name__}); "
                                       "switch it on again.")
        finally:
            sock.close()

    def _on_failed(self, server, message: str) -> None:
        if self._server is server:
            self._runner.close()
            self._server, self.note = None, message
            emit(self.changed)


def _listen_within(host: str, port: int, seconds: float) -> tuple[socket.socket | None, str]:
    """listen_exactly, retried while a server we just stopped lets go of the port (its thread closes
    the listening socket within a tick of its loop)."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        sock, problem = listen_exactly(host, port)
        if sock is not None or time.monotonic() > deadline:
            return sock, problem
        time.sleep(0.05)
