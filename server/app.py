"""The FastAPI application: routes, API key, errors, streaming, and cancelling on disconnect."""

from __future__ import annotations

import asyncio
import hmac
import json
import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sse_starlette.sse import EventSourceResponse

from server import chat_api, responses_api
from server.errors import APIError, bad_request
from server.reply import ReplyReader
from server.runner import END, EngineRunner, Job


def create_app(runner: EngineRunner, model_id: str, api_key: str | None = None) -> FastAPI:
    """The API over one engine runner; when api_key is set, every /v1 request must carry it."""
    app = FastAPI(title="gpt-oss chat local API", docs_url=None, redoc_url=None)
    app.state.runner, app.state.requests_served = runner, 0
    store = responses_api.ResponseStore()

    @app.exception_handler(APIError)
    async def _api_error(_, exc: APIError):
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_, exc):
        return bad_request("The request body is not valid JSON.").response()

    @app.middleware("http")
    async def _auth(request: Request, call_next):
        if api_key and request.url.path.startswith("/v1"):
            sent = request.headers.get("authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {api_key}".encode()):
                return APIError(401, "A valid API key is required: send it as 'Authorization: Bearer KEY'.",
                                code="invalid_api_key").response()
        return await call_next(request)

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
        reader = ReplyReader(stops)
        completion = chat_api.ChatCompletion(model_id, reader, _counter(runner))
        first = await _start(runner, job)
        app.state.requests_served += 1
        if not stream:
            await _drain(request, job, reader, first)
            return completion.whole()

        async def chunks():
            yield {"data": completion.chunk({"role": "assistant", "content": ""})}
            async for piece in _pieces(job, reader, first):
                yield {"data": completion.chunk(completion.delta(piece))}
            yield {"data": completion.chunk({}, reader.finish_reason)}
            if include_usage:
                yield {"data": completion.usage_chunk()}
            yield {"data": "[DONE]"}

        return _sse(chunks(), job)

    @app.post("/v1/responses")
    async def responses(request: Request):
        body = await _json(request)
        job, stream, messages, names = responses_api.parse(body, model_id, store)
        reader = ReplyReader()
        built = responses_api.ResponseBuilder(model_id, body, reader, _counter(runner))
        first = await _start(runner, job)
        app.state.requests_served += 1

        def keep():
            store.put(built.id, built.conversation(messages), names)

        if not stream:
            await _drain(request, job, reader, first, built.feed)
            built.close()
            keep()
            return built.response("completed")

        async def events():
            for kind in ("response.created", "response.in_progress"):
                yield _event(built.event(kind, response=built.response("in_progress")))
            async for piece in _pieces(job, reader, first):
                for ev in built.feed(piece):
                    yield _event(ev)
            for ev in built.close():
                yield _event(ev)
            keep()
            yield _event(built.event("response.completed", response=built.response("completed")))

        return _sse(events(), job)

    return app


def _model_card(model_id: str) -> dict:
    return {"id": model_id, "object": "model", "created": int(time.time()), "owned_by": "local"}


def _counter(runner: EngineRunner):
    return lambda text: runner.chat.count_tokens(text) if runner.chat else 0


def _event(ev: dict) -> dict:
    return {"event": ev["type"], "data": json.dumps(ev)}


async def _json(request: Request) -> dict:
    try:
        body = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError):
        raise bad_request("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


async def _start(runner: EngineRunner, job: Job):
    """Queue the job and wait for its first item, so errors found before generating (413) get
    their own status instead of arriving inside a 200 stream."""
    runner.submit(job)
    try:
        first = await job.events.get()
    except asyncio.CancelledError:
        job.cancel.set()
        raise
    if isinstance(first, APIError):
        raise first
    return first


async def _items(job: Job, first):
    item = first
    while item is not END:
        if isinstance(item, APIError):
            raise item
        yield item
        item = await job.events.get()


async def _pieces(job: Job, reader: ReplyReader, first):
    try:
        async for ev in _items(job, first):
            for piece in reader.feed(ev):
                yield piece
            if reader.hit_stop:
                job.cancel.set()  # a client stop string ended the answer: stop generating now
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
        async for piece in _pieces(job, reader, first):
            if on_piece:
                on_piece(piece)
    finally:
        watcher.cancel()


def _sse(generator, job: Job) -> EventSourceResponse:
    async def guarded():
        try:
            async for item in generator:
                yield item
        except APIError as e:  # after the stream began, an error is sent as an error event
            yield {"data": json.dumps(e.body())}
        finally:
            job.cancel.set()

    return EventSourceResponse(guarded(), ping=15, sep="\n")
