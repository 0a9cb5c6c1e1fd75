"""The FastAPI application: routes, API key, errors, streaming, and cancelling on disconnect."""

from __future__ import annotations

import asyncio
import hmac
import json
import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse

from server import chat_api, responses_api, web_search
from server.errors import APIError, bad_request
from server.reply import ReplyReader, merge
from server.runner import END, EngineRunner, Job

PING_S = 15.0  # an SSE comment this often while nothing else is sent keeps proxies from timing out
PING = b": ping\n\n"


def create_app(runner: EngineRunner, model_id: str, api_key: str | None = None, sources=None) -> FastAPI:
    """The API over one engine runner; when api_key is set, every /v1 request must carry it.
    sources: server.web_search.Sources for the built-in web_search tool (None: not offered)."""
    app = FastAPI(title="gpt-oss chat local API", docs_url=None, redoc_url=None)
    app.state.runner, app.state.requests_served = runner, 0
    store = responses_api.ResponseStore()

    @app.exception_handler(APIError)
    async def _api_error(_, exc: APIError):
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_, exc):
        return bad_request("The request body is not valid JSON.").response()

    if api_key:
        app.add_middleware(RequireKey, api_key=api_key)

    @app.get("/health")
    async def health():
        if runner.load_error:
            return JSONResponse({"status": "error", "error": runner.load_error}, status_code=503)
        status = "ok" if runner.loaded.is_set() else "loading"
        last = runner.last_done
        return JSONResponse({"status": status, "model": model_id, "waiting": runner.waiting,
                             "generating": runner.active, "served": runner.served,
                             "last_stop": last.stop_reason if last else None,
                             "last_generated_tokens": last.stats.generated_tokens if last else None},
                            status_code=200 if status == "ok" else 503)

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [_model_card(model_id)]}

    @app.get("/v1/models/{name}")
    async def model(name: str):
        if name != model_id:
            raise APIError(404, f"The model {name!r} does not exist here; this server runs {model_id!r}.",
                           "model", "model_not_found")
        return _model_card(model_id)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        body = await _json(request)
        job, stream, include_usage, stops = chat_api.parse(body, model_id)
        tool = web_search.chat_browser(body, sources, job, _counter(runner))
        reader = ReplyReader(stops)
        completion = chat_api.ChatCompletion(model_id, reader, _counter(runner))
        first = await _start(runner, job)
        app.state.requests_served += 1
        if not stream:
            await _drain(request, job, reader, first)
            return web_search.with_chat_annotations(completion.whole(), reader, tool)

        def closing():
            notes = web_search.chat_annotations(reader.content, tool)
            frames = [_data(completion.chunk({"annotations": notes}))] if notes else []
            frames += [_data(completion.chunk({}, reader.finish_reason))]
            if include_usage:
                frames.append(_data(completion.usage_chunk()))
            return frames + ["data: [DONE]\n\n"]

        opening = [_data(completion.chunk({"role": "assistant", "content": ""}))]
        frames_of = lambda piece: [] if piece.kind == "web_search" else [completion.piece_frame(piece)]  # noqa: E731
        return _sse(_framed(job, reader, first, opening, frames_of, closing), job)

    @app.post("/v1/responses")
    async def responses(request: Request):
        body = await _json(request)
        rest, browsing = web_search.split_tools(body.get("tools"))
        job, stream, messages, names = responses_api.parse({**body, "tools": rest} if browsing else body, model_id, store)
        reader = ReplyReader()
        built = responses_api.ResponseBuilder(model_id, body, reader, _counter(runner))
        tool = web_search.responses_browser(browsing, body, sources, job, built, _counter(runner))
        first = await _start(runner, job)
        app.state.requests_served += 1

        def keep():
            store.put(built.id, job.browsed or built.conversation(messages), names)
            if tool is not None:
                sources.keep(built.id, tool)  # its pages stay open for previous_response_id

        if not stream:
            await _drain(request, job, reader, first, built.feed)
            built.close()
            keep()
            return built.response("completed")

        def closing():
            frames = [_event(ev) for ev in built.close()]
            keep()
            return frames + [_event(built.event("response.completed", response=built.response("completed")))]

        opening = [_event(built.event(kind, response=built.response("in_progress")))
                   for kind in ("response.created", "response.in_progress")]
        return _sse(_framed(job, reader, first, opening, lambda piece: [_event(ev) for ev in built.feed(piece)],
                            closing), job)

    return app


def _model_card(model_id: str) -> dict:
    return {"id": model_id, "object": "model", "created": int(time.time()), "owned_by": "local"}


def _counter(runner: EngineRunner):
    return lambda text: runner.session.count_tokens(text) if runner.session else 0


def _data(payload: str) -> str:
    return f"data: {payload}\n\n"


def _event(ev: dict) -> str:
    return f"event: {ev['type']}\ndata: {json.dumps(ev)}\n\n"


class RequireKey:
    """Every /v1 request must carry the API key (pure ASGI: streamed chunks pass straight through)."""

    def __init__(self, app, api_key: str):
        self.app, self.expected = app, f"Bearer {api_key}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith("/v1"):
            sent = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(sent, self.expected):
                response = APIError(401, "A valid API key is required: send it as 'Authorization: Bearer KEY'.",
                                    code="invalid_api_key").response()
                return await response(scope, receive, send)
        await self.app(scope, receive, send)


async def _json(request: Request) -> dict:
    try:
        body = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError):
        raise bad_request("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


async def _start(runner: EngineRunner, job: Job) -> list:
    """Queue the job and wait for its first items, so errors found before generating (413) get
    their own status instead of arriving inside a 200 stream."""
    runner.submit(job)
    try:
        first = []
        while not first:
            first = await job.take()
    except asyncio.CancelledError:
        job.cancel.set()
        raise
    if isinstance(first[0], APIError):
        raise first[0]
    return first


async def _pieces(job: Job, reader: ReplyReader, first: list):
    """The reply's pieces, one merged list per batch of engine events (see server.reply.merge), until
    the job ends; None when a ping is due and nothing else came. A batch is whatever the engine
    queued while the previous one was being sent: nothing waits for more."""
    items = first
    try:
        while True:
            pieces, error, ended = [], None, False
            for item in items:
                if item is END:
                    ended = True
                    break
                if isinstance(item, APIError):
                    error = item
                    break
                pieces += reader.feed(item)
            if reader.hit_stop:
                job.cancel.set()  # a client stop string ended the answer: stop generating now
            if pieces:
                yield merge(pieces)
            elif not items and job.ping_due:
                job.ping_due = False
                yield None
            if error is not None:
                raise error
            if ended:
                return
            items = await job.take()
    finally:
        job.cancel.set()  # the client went away (or we finished): either way nothing more is wanted


async def _drain(request: Request, job: Job, reader: ReplyReader, first, on_piece=None) -> None:
    """Run a non-streaming request to its end, cancelling it if the client disconnects."""

    async def watch():
        while not job.cancel.is_set():
            if await request.is_disconnected():
                job.cancel.set()
                return
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch())
    try:
        async for pieces in _pieces(job, reader, first):
            if on_piece and pieces:
                for piece in pieces:
                    on_piece(piece)
    finally:
        watcher.cancel()


async def _framed(job: Job, reader: ReplyReader, first: list, opening: list[str], frames_of, closing):
    """A streamed reply as SSE bytes: the `opening` frames, then for each batch of ready pieces the
    frames `frames_of(piece)` gives, all in one write (a keep-alive comment when one is due and
    nothing came), then the frames `closing()` gives once the reply has ended."""
    frames = opening
    async for pieces in _pieces(job, reader, first):
        if pieces is None:
            yield PING
            continue
        frames += [frame for piece in pieces for frame in frames_of(piece)]
        yield "".join(frames).encode()  # one write for everything that was ready
        frames = []
    yield "".join(frames + closing()).encode()


def _sse(generator, job: Job) -> StreamingResponse:
    """Server-sent events from `generator` (bytes, already framed), with a keep-alive comment every
    PING_S seconds when nothing else came."""

    async def guarded():
        loop = asyncio.get_running_loop()

        def tick():
            nonlocal timer
            job.ping_due = True
            job.wake()
            timer = loop.call_later(PING_S, tick)

        timer = loop.call_later(PING_S, tick)
        try:
            async for item in generator:
                yield item
        except APIError as e:  # after the stream began, an error is sent as an error event
            yield _data(json.dumps(e.body())).encode()
        finally:
            timer.cancel()

    return _EventStream(guarded(), job)


class _EventStream(StreamingResponse):
    """Starlette stops the stream when the client disconnects; however it ends (even before the
    first chunk), the job is cancelled: nothing more is wanted."""

    def __init__(self, content, job: Job):
        super().__init__(content, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.job = job

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.job.cancel.set()
