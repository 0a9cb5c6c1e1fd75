"""A stream that goes quiet (the engine busy between events) sends SSE keep-alive comments, which
clients ignore, and its data stays whole. The session here is scripted: what is tested is the
server's streaming, with its real app, runner and ASGI stack.

The scripted engine stays quiet until the client has received a ping (no fixed pause that a slow
machine could outlast): the test drives the ASGI app directly, so it sees each chunk as it is sent."""

from __future__ import annotations

import asyncio
import json
import threading

import server.app
from engine.events import Done, MessageEnd, MessageStart, Stop, TextDelta
from engine.generate import GenerationStats
from engine.session import RenderedPrompt
from server.runner import EngineRunner


class QuietSession:
    """Answers "Hello" in two deltas, quiet between them until `resume` is set (or 30 s pass)."""

    context_length = 4096

    def __init__(self):
        self.resume = threading.Event()

    def sampling(self, temperature=None, top_p=None, seed=None):
        return None

    def count_tokens(self, text):
        return len(text.split())

    def render(self, messages, **options):
        return RenderedPrompt([1, 2, 3])

    def reply(self, messages, prompt=None, **kw):
        yield MessageStart("assistant", "final")
        yield TextDelta("final", "Hel")
        self.resume.wait(30)  # a server that never pings fails the assertions below, late but surely
        yield TextDelta("final", "lo")
        yield MessageEnd("final")
        yield Stop("return")
        yield Done(GenerationStats(generated_tokens=2, stop_reason="stop"), "return", 0, 3)


async def post_streaming(app, body: dict, on_chunk) -> int:
    """POST `body` to /v1/chat/completions through the ASGI interface; on_chunk(bytes) as each is sent."""
    raw = json.dumps(body).encode()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions",
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000), "server": ("test", 80),
             "headers": [(b"host", b"test"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(raw)).encode())]}
    sent, status = [False], [0]

    async def receive():
        if not sent[0]:
            sent[0] = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects

    async def send(message):
        if message["type"] == "http.response.start":
            status[0] = message["status"]
        elif message["type"] == "http.response.body":
            on_chunk(message.get("body", b""))

    await asyncio.wait_for(app(scope, receive, send), 60)
    return status[0]


def test_a_quiet_stream_gets_keepalive_comments_and_whole_data(monkeypatch):
    monkeypatch.setattr(server.app, "PING_S", 0.05)
    session = QuietSession()
    runner = EngineRunner(opener=lambda: session).start()
    runner.loaded.wait(10)
    app = server.app.create_app(runner, "quiet")
    chunks = []

    def on_chunk(chunk: bytes):
        chunks.append(chunk)
        if chunk == server.app.PING:
            session.resume.set()  # the client has its ping: the engine may speak again

    try:
        status = asyncio.run(post_streaming(app, {"model": "quiet", "stream": True,
                                                  "messages": [{"role": "user", "content": "hi"}]}, on_chunk))
    finally:
        runner.stop()
    assert status == 200
    frames = b"".join(chunks).decode().split("\n\n")
    assert ": ping" in frames[1:-1]  # between data, while the engine was quiet
    data = [f.removeprefix("data: ") for f in frames if f.startswith("data: ")]
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "Hello"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
