"""The FastAPI application: routes, typed bodies, errors in OpenAI's shape, streaming, and cancelling on
disconnect. What every request passes first (Host, Origin, key, content type, size): server.gate."""

from __future__ import annotations

import asyncio
import json
import logging
import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from server import chat_api, responses_api, web_search
from server.errors import APIError, bad_request
from server.gate import Gate, default_max_body
from server.reply import ReplyReader, merge
from server.request_log import RequestRecorder
from server.requests import check_model
from server.runner import END, EngineRunner, Job
from server.schemas import ChatRequest, ErrorBody, ResponsesRequest, parse_body

log = logging.getLogger(__name__)

PING_S = 15.0  # an SSE comment this often while nothing else is sent keeps proxies from timing out
PING = b": ping\n\n"


def create_app(runner: EngineRunner, model_id: str, api_key: str | None = None, sources=None, *, aliases=(),
               allowed_origins=(), max_body: int | None = None, loopback_only: bool = True,
               on_request=None) -> FastAPI:
    """The API over one engine runner. `aliases`: other names `model` may give (server.names);
    `api_key`: required on everything but a bare liveness answer; `sources`: server.web_search.Sources
    for the built-in web_search tool (None: not offered); `allowed_origins`: web pages that may call
    the API; `max_body`: bytes a request body may have (server.gate.default_max_body); `on_request`:
    called with a server.request_log.RequestRecord once each request has been answered."""
    app = FastAPI(title="gpt-oss chat local API", docs_url=None, redoc_url=None,
                  description="OpenAI-compatible Chat Completions and Responses over a local gpt-oss model.")
    app.state.runner, app.state.requests_served = runner, 0
    names = (model_id, *[a for a in aliases if a != model_id])
    store = responses_api.ResponseStore()

    @app.exception_handler(APIError)
    async def _api_error(_, exc: APIError):
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_, exc):
        return bad_request("The request is not valid; see /openapi.json.").response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return APIError(404, f"There is no {request.url.path} here; this server answers /v1/chat/completions, "
                                 "/v1/responses and /v1/models.", code="unknown_url").response()
        if exc.status_code == 405:
            response = APIError(405, f"{request.method} is not allowed on {request.url.path}; see /openapi.json.",
                                code="method_not_allowed").response()
            response.headers["Allow"] = ", ".join(_methods_at(app, request.scope))  # RFC 9110
            return response
        return APIError(exc.status_code, str(exc.detail)).response()

    @app.exception_handler(Exception)
    async def _unexpected(_, exc: Exception):  # a bug of ours: one sentence, the traceback in the log only
        log.exception("request failed")
        return APIError(500, f"The server failed on this request ({type(exc).__name__}); retry, and report "
                             "it if it happens again.").response()

    app.add_middleware(Gate, api_key=api_key, allowed_origins=allowed_origins,
                       max_body=max_body or default_max_body(8192), loopback_only=loopback_only)
    if on_request is not None:  # added last, so it wraps the gate and records its refusals too
        app.add_middleware(RequestRecorder, on_request=on_request)

    @app.get("/health", responses=ERRORS)
    async def health(request: Request):
        """Liveness for anyone; the details (model, counts, last stop) only with the key."""
        if runner.load_error:
            status, code = "error", 503
        else:
            status = "ok" if runner.loaded.is_set() else "loading"
            code = 200 if status == "ok" else 503
        if not request.scope["state"].get("authorized"):
            return JSONResponse({"status": status}, status_code=code)
        if runner.load_error:
            return JSONResponse({"status": "error", "error": runner.load_error}, status_code=503)
        last = runner.last_done
        return JSONResponse({"status": status, "model": model_id, "aliases": list(names[1:]),
                             "waiting": runner.waiting, "generating": runner.active, "served": runner.served,
                             "last_stop": last.stop_reason if last else None,
                             "last_generated_tokens": last.stats.generated_tokens if last else None},
                            status_code=code)

    @app.get("/v1/models", responses=ERRORS)
    async def models():
        return {"object": "list", "data": [_model_card(model_id)]}

    @app.get("/v1/models/{name}", responses=ERRORS)
    async def model(name: str):
        check_model({"model": name}, names)
        return _model_card(model_id)

    @app.post("/v1/chat/completions", openapi_extra=body_of(ChatRequest), responses=answers())
    async def chat_completions(request: Request):
        body = parse_body(ChatRequest, await request.body())
        request.state.model = body.get("model")  # for the request log
        job, stream, include_usage, stops = chat_api.parse(body, names)
        tool = web_search.chat_browser(body, sources, job, _counter(runner))
        reader = request.state.reader = ReplyReader(stops, enc=_enc_if(job, runner))
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

    @app.post("/v1/responses", openapi_extra=body_of(ResponsesRequest), responses=answers())
    async def responses(request: Request):
        body = parse_body(ResponsesRequest, await request.body())
        request.state.model = body.get("model")  # for the request log
        rest, browsing = web_search.split_tools(body.get("tools"))
        job, stream, messages, names_of_calls = responses_api.parse({**body, "tools": rest} if browsing else body,
                                                                    names, store)
        reader = request.state.reader = ReplyReader(enc=_enc_if(job, runner))
        built = responses_api.ResponseBuilder(model_id, body, reader, _counter(runner))
        tool = web_search.responses_browser(browsing, body, sources, job, built, _counter(runner))
        first = await _start(runner, job)
        app.state.requests_served += 1

        def keep():
            if built.stored:
                store.put(built.id, job.browsed or built.conversation(messages), built.call_names(names_of_calls),
                          built.response("completed"))
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

    @app.get("/v1/responses/{response_id}", responses=ERRORS)
    async def get_response(response_id: str):
        """The response as it was sent (unless it was made with store: false, or deleted)."""
        return store.response(response_id)

    @app.delete("/v1/responses/{response_id}", responses=ERRORS)
    async def delete_response(response_id: str):
        store.delete(response_id)
        return {"id": response_id, "object": "response.deleted", "deleted": True}

    @app.api_route("/v1/completions", methods=["GET", "POST"], include_in_schema=False)
    @app.api_route("/v1/embeddings", methods=["GET", "POST"], include_in_schema=False)
    async def not_served(request: Request):
        raise APIError(404, f"{request.url.path} is not served here: this server runs a chat model only; use "
                            "/v1/chat/completions or /v1/responses.", code="not_served")

    app.openapi = lambda: _openapi(app)
    return app


ERRORS = {status: {"model": ErrorBody, "description": what} for status, what in (
    (400, "The request is not valid (the field is named in `param`)"), (401, "The API key is missing or wrong"),
    (403, "A web page's origin or host that is not allowed"), (404, "No such model, response or route"),
    (413, "The body or the conversation is too long"), (415, "The body is not JSON"),
    (429, "Too many requests wait for the model"), (502, "The model's reply broke the chat format"),
    (503, "The model is loading or could not be loaded"))}


def answers(streamed_too: bool = True) -> dict:
    """The documented responses of a generating route: JSON, or server-sent events when streaming."""
    content = {"application/json": {"schema": {"type": "object"}}}
    if streamed_too:
        content["text/event-stream"] = {"schema": {}}  # JSON events, then "[DONE]" (Chat Completions)
    return {200: {"description": "The answer (server-sent events with stream: true)", "content": content}, **ERRORS}


def body_of(model) -> dict:
    """The OpenAPI request body of a route that reads and checks its body itself (server.schemas)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", by_alias=True)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _openapi(app: FastAPI) -> dict:
    """/openapi.json, with the request bodies' own definitions moved where their $refs point."""
    if app.openapi_schema is None:
        spec = get_openapi(title=app.title, version="1", description=app.description, routes=app.routes)
        components = spec.setdefault("components", {}).setdefault("schemas", {})
        for path in spec["paths"].values():
            for op in path.values():
                schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
                components.update(schema.pop("$defs", {}))
        app.openapi_schema = spec
    return app.openapi_schema


def _methods_at(app: FastAPI, scope) -> list[str]:
    """Every method some route serves at this path (Starlette's 405 names only the first route's)."""
    methods = set()
    for route in app.routes:
        if isinstance(route, APIRoute) and route.matches(scope)[0] != Match.NONE:
            methods |= route.methods
    return sorted(methods)


def _model_card(model_id: str) -> dict:
    return {"id": model_id, "object": "model", "created": int(time.time()), "owned_by": "local"}


def _enc_if(job: Job, runner: EngineRunner):
    """The tokenizer, when the job asked for log-probabilities (their entries show each token's text)."""
    return getattr(runner.session, "enc", None) if job.logprobs is not None else None


def _counter(runner: EngineRunner):
    return lambda text: runner.session.count_tokens(text) if runner.session else 0


def _data(payload: str) -> str:
    return f"data: {payload}\n\n"


def _event(ev: dict) -> str:
    return f"event: {ev['type']}\ndata: {json.dumps(ev)}\n\n"


def broken_reply(reason: str) -> APIError:
    """The model's reply left the chat format (the engine stopped it): an error the client sees, never a
    200 that looks like an empty answer. 502: our upstream, the model, gave an invalid reply."""
    return APIError(502, "The model's reply broke the chat format and was stopped "
                         f"({reason.removeprefix('malformed: ')}); retry, or lower the temperature.",
                    code="invalid_model_output")


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
            if ended and reader.stop_reason.startswith("malformed"):
                raise broken_reply(reader.stop_reason)
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
    try:
        async for pieces in _pieces(job, reader, first):
            if pieces is None:
                yield PING
                continue
            frames += [frame for piece in pieces for frame in frames_of(piece)]
            yield "".join(frames).encode()  # one write for everything that was ready
            frames = []
    except APIError as e:  # sent as an error event (_sse); the request log shows it as a failure
        reader.failed = e.status
        raise
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
