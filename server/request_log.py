"""One record per request the API answered, handed to whoever asked for them (the desktop app's
request log): when, from where, what, for which model, how it ended, tokens and time.

Never the body, the headers or the query string: the key and what the client wrote stay out. The
recorder is pure ASGI and wraps the gate, so refusals (401, 403, 413) are recorded too. Routes add
what only they know through the request's state: `model` (the name the body gave) and `reader`
(server.reply.ReplyReader: its Done event has the token counts; `failed` the status of an error sent
after a stream began).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

MAX_TEXT = 120  # a client's path or model name is shown cut to this (it is the client's text)
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
CLIENT_GONE = 499  # the client went away before an answer started (nginx's name for it)


@dataclass(frozen=True)
class RequestRecord:
    at: float  # time.time() when the request arrived
    client: str  # the client's IP address
    method: str
    path: str
    model: str  # the model the body named ("" when it named none)
    status: int  # HTTP status; for a stream that began (200) and then failed, the error's status
    tokens_in: int | None  # the rendered prompt (None: nothing was generated)
    tokens_out: int | None
    duration_s: float

    @property
    def failed(self) -> bool:
        return self.status >= 400


class RequestRecorder:
    """ASGI middleware: calls `on_request(RequestRecord)` once each HTTP request has ended (on the
    server's thread; the callback must be quick and thread-safe)."""

    def __init__(self, app, on_request):
        self.app = app
        self.on_request = on_request

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        at, start = time.time(), time.monotonic()
        status = CLIENT_GONE
        state = scope.setdefault("state", {})

        async def noting(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting)
        except Exception:
            status = 500  # the outer error handler answers it
            raise
        finally:
            self._record(scope, state, at, time.monotonic() - start, status)

    def _record(self, scope, state: dict, at: float, duration: float, status: int) -> None:
        reader = state.get("reader")
        done = getattr(reader, "done", None)
        model = state.get("model")
        record = RequestRecord(
            at=at, client=(scope.get("client") or ("", 0))[0], method=scope["method"],
            path=_cut(scope.get("path", "")), model=_cut(model) if isinstance(model, str) else "",
            status=getattr(reader, "failed", None) or status,
            tokens_in=done.prompt_tokens if done else None, tokens_out=done.stats.generated_tokens if done else None,
            duration_s=duration)
        try:
            self.on_request(record)
        except Exception:  # a listener's bug must not turn an answered request into a failure
            log.exception("the request log's listener failed")


def _cut(text: str) -> str:
    """The client's text, printable (no terminal escapes in a printed log) and cut to MAX_TEXT."""
    text = CONTROL.sub("\ufffd", text)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"


def log_line(r: RequestRecord) -> str:
    """One line for a terminal: '14:03:12 127.0.0.1 POST /v1/chat/completions demo 200 85->32 tokens 0.41 s'."""
    tokens = f" {r.tokens_in}->{r.tokens_out} tokens" if r.tokens_in is not None else ""
    model = f" {r.model}" if r.model else ""
    return (f"{time.strftime('%H:%M:%S', time.localtime(r.at))} {r.client} {r.method} {r.path}{model} {r.status}"
            f"{tokens} {r.duration_s:.2f} s")
