"""The gate every request passes (server.gate), on the real app in-process: with an API key only a
bare liveness answer is open; a browser origin that was allowed gets CORS answers (so browser
clients can opt in) and any other origin is refused; sizes follow the limit given."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from server.app import create_app
from server.gate import default_max_body
from server.runner import EngineRunner

from one_answer import OneAnswerSession

ALLOWED = "http://localhost:3000"
CHAT = {"model": "hello", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def runner():
    runner = EngineRunner(opener=lambda: OneAnswerSession("Hello")).start()
    runner.loaded.wait(10)
    yield runner
    runner.stop()


def call(app, method, path, **kw) -> httpx.Response:
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as c:
            return await c.request(method, path, **kw)

    return asyncio.run(go())


def test_with_a_key_only_a_bare_liveness_answer_is_open(runner):
    app = create_app(runner, "hello", api_key="s3cret")
    health = call(app, "GET", "/health")
    assert health.status_code == 200 and health.json() == {"status": "ok"}  # no model, counts or stop reasons
    for method, path in (("GET", "/openapi.json"), ("GET", "/v1/models"), ("GET", "/v1/models/hello"),
                         ("GET", "/v1/responses/resp_x"), ("DELETE", "/v1/responses/resp_x"), ("GET", "/docs"),
                         ("GET", "/nope")):
        r = call(app, method, path)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key", (method, path)
    r = call(app, "POST", "/v1/chat/completions", json=CHAT)
    assert r.status_code == 401
    key = {"Authorization": "Bearer s3cret"}
    assert call(app, "GET", "/health", headers=key).json()["model"] == "hello"
    assert call(app, "GET", "/openapi.json", headers=key).status_code == 200
    assert call(app, "POST", "/v1/chat/completions", json=CHAT, headers=key).json()["choices"][0]["message"][
        "content"] == "Hello"


def test_an_allowed_origin_gets_cors_answers(runner):
    app = create_app(runner, "hello", allowed_origins=[ALLOWED])
    pre = call(app, "OPTIONS", "/v1/chat/completions", headers={
        "Origin": ALLOWED, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
    assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in pre.headers["access-control-allow-methods"]
    assert "content-type" in pre.headers["access-control-allow-headers"]
    r = call(app, "POST", "/v1/chat/completions", json=CHAT, headers={"Origin": ALLOWED})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ALLOWED
    other = call(app, "POST", "/v1/chat/completions", json=CHAT, headers={"Origin": "http://localhost:4000"})
    assert other.status_code == 403 and "access-control-allow-origin" not in other.headers
    assert other.json()["error"]["code"] == "origin_not_allowed"


def test_no_origin_is_allowed_by_default(runner):
    app = create_app(runner, "hello")
    for origin in ("http://localhost:3000", "null", "http://127.0.0.1:8000"):
        r = call(app, "POST", "/v1/chat/completions", json=CHAT, headers={"Origin": origin})
        assert r.status_code == 403, origin


def test_the_body_limit_is_the_one_given(runner):
    app = create_app(runner, "hello", max_body=2048)
    fits = dict(CHAT, messages=[{"role": "user", "content": "x" * 1500}])
    assert call(app, "POST", "/v1/chat/completions", json=fits).status_code == 200
    over = dict(CHAT, messages=[{"role": "user", "content": "x" * 2100}])
    r = call(app, "POST", "/v1/chat/completions", json=over)
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


def test_the_default_limit_follows_the_context():
    assert default_max_body(8192) == 4 << 20  # a few MB at least
    assert default_max_body(131072) == 8 << 20  # 64 bytes per token: a whole context of escaped text


def test_listening_beyond_loopback_drops_the_host_check(runner):
    """With --host 0.0.0.0 (a key is required then) clients use this computer's name or address."""
    app = create_app(runner, "hello", api_key="k", loopback_only=False)
    r = call(app, "GET", "/v1/models", headers={"Host": "mymac.local:8000", "Authorization": "Bearer k"})
    assert r.status_code == 200
