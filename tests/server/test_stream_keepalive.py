"""A stream that goes quiet (the engine busy between events) sends SSE keep-alive comments, which
clients ignore, and its data stays whole. The session here is scripted: what is tested is the
server's streaming, with its real app, runner and ASGI stack."""

from __future__ import annotations

import asyncio
import json
import time

import httpx

import server.app
from engine.events import Done, MessageEnd, MessageStart, Stop, TextDelta
from engine.generate import GenerationStats
from engine.session import RenderedPrompt
from server.model import OpenedChat
from server.runner import EngineRunner


class QuietSession:
    """Answers "Hello" in two deltas with a pause between them."""

    context_length = 4096

    def __init__(self, pause: float):
        self.pause = pause

    def render(self, messages, **options):
        return RenderedPrompt([1, 2, 3])

    def reply(self, messages, prompt=None, **kw):
        yield MessageStart("assistant", "final")
        yield TextDelta("final", "Hel")
        time.sleep(self.pause)
        yield TextDelta("final", "lo")
        yield MessageEnd("final")
        yield Stop("return")
        yield Done(GenerationStats(generated_tokens=2, stop_reason="stop"), "return", 0, 3)


def test_a_quiet_stream_gets_keepalive_comments_and_whole_data(monkeypatch):
    monkeypatch.setattr(server.app, "PING_S", 0.05)
    chat = OpenedChat(QuietSession(pause=0.3), enc=None, greedy=True, name="quiet")
    runner = EngineRunner(opener=lambda: chat).start()
    runner.loaded.wait(10)
    app = server.app.create_app(runner, "quiet")

    async def ask() -> str:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as client:
            r = await client.post("/v1/chat/completions", json={
                "model": "quiet", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            return r.text

    try:
        body = asyncio.run(ask())
    finally:
        runner.stop()
    frames = body.split("\n\n")
    assert ": ping" in frames[1:-1]  # between data, while the engine was quiet
    data = [f.removeprefix("data: ") for f in frames if f.startswith("data: ")]
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "Hello"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
