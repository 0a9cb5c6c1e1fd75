"""What the six real OpenAI clients of issue 27 send for a structured answer, captured at the wire.

Each client (tests/server/client_drivers.py) asks OUR server, running the demo model, for each answer
model (tests/server/client_models.py). The request bodies are taken from the client's own HTTP
transport (httpx / httpx2, whichever the client uses) as they leave, and the real server answers.
Checked: the server accepts every request (200), the client then either parses the answer or raises
its own error (the demo may write a wrong or unfinished answer: both are recorded), and the answer
formats and schema messages sent are those of models/demo_train/client_schemas.json, so a client
upgrade that changes them shows up here. models/demo_train/evaluate_json.py replays that file.

    CAPTURE_CLIENT_SCHEMAS=1 pytest tests/server/test_client_schemas.py   # rewrite the file
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import httpx2
import pytest

from client_drivers import DRIVERS
from client_models import CLIENT_MODELS

ROOT = Path(__file__).resolve().parents[2]
CAPTURED = ROOT / "models" / "demo_train" / "client_schemas.json"
QUESTION = "What is 486 + 357?"
MAX_TOKENS = 48  # enough for the server to answer; the demo's answer may be cut short (recorded)
REGENERATE = os.environ.get("CAPTURE_CLIENT_SCHEMAS") == "1"


@pytest.fixture
def wire(monkeypatch, demo_server):
    """(body, status) of every POST to the server, recorded by wrapping both httpx packages' transports."""
    seen = []

    def record(request, response):
        if str(request.url).startswith(demo_server.url) and request.method == "POST":
            seen.append((json.loads(request.content), response.status_code))

    for module in (httpx, httpx2):
        sync, asynchronous = module.HTTPTransport.handle_request, module.AsyncHTTPTransport.handle_async_request

        def handle(self, request, _sync=sync):
            response = _sync(self, request)
            record(request, response)
            return response

        async def handle_async(self, request, _async=asynchronous):
            response = await _async(self, request)
            record(request, response)
            return response

        monkeypatch.setattr(module.HTTPTransport, "handle_request", handle)
        monkeypatch.setattr(module.AsyncHTTPTransport, "handle_async_request", handle_async)
    return seen


def _text(content) -> str:
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def entry(driver, model, body: dict) -> dict:
    """One request reduced to what the evaluation replays: the answer format and any messages the
    client added around the user's question (e.g. the schema in a system message)."""
    if driver.api == "responses":
        items = body["input"] if isinstance(body["input"], list) else [{"role": "user", "content": body["input"]}]
        if body.get("instructions"):
            items = [{"role": "system", "content": body["instructions"]}] + items
        fmt = {"text.format": body.get("text", {}).get("format")}
    else:
        items, fmt = body["messages"], {"response_format": body.get("response_format")}
    added = [m for m in items if not (m.get("role") == "user" and _text(m.get("content")) == QUESTION)]
    row = {"client": driver.client, "mode": driver.mode, "model": model.__name__, "api": driver.api,
           **fmt, "messages_added": added}
    if body.get("tools"):  # pydantic-ai's default asks through a tool: kept on record
        row["tools"], row["tool_choice"] = body["tools"], body.get("tool_choice")
    return row


def committed() -> list[dict]:
    return json.loads(CAPTURED.read_text()) if CAPTURED.exists() else []


@pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: f"{d.client}-{d.mode.split()[0]}")
def test_client_sends_an_answer_format_the_server_takes(driver, wire, demo_server):
    rows, outcomes = [], {}
    for model in CLIENT_MODELS:
        start = len(wire)
        try:
            answer = driver.drive(demo_server.url, model, QUESTION, MAX_TOKENS)
            assert isinstance(answer, model), f"{driver.client} returned {answer!r}, not a {model.__name__}"
            outcomes[model.__name__] = "parsed"
        except AssertionError:
            raise
        except Exception as error:  # the client's own complaint about the demo's answer
            outcomes[model.__name__] = type(error).__name__
            assert not isinstance(error, (httpx.TransportError, httpx2.TransportError)), error
        sent = wire[start:]
        assert sent, f"{driver.client} sent nothing for {model.__name__}"
        assert [status for _, status in sent] == [200] * len(sent), f"the server refused {driver.client}: {sent}"
        rows.append(entry(driver, model, sent[0][0]))  # the first request: retries are off
    print(f"\n{driver.client} {driver.mode}: {outcomes}")

    others = [r for r in committed() if (r["client"], r["mode"]) != (driver.client, driver.mode)]
    if REGENERATE:
        order = {(d.client, d.mode): i for i, d in enumerate(DRIVERS)}
        merged = sorted(others + rows, key=lambda r: (order.get((r["client"], r["mode"]), 99),
                                                      [m.__name__ for m in CLIENT_MODELS].index(r["model"])))
        CAPTURED.write_text(json.dumps(merged, indent=1) + "\n")
    mine = [r for r in committed() if (r["client"], r["mode"]) == (driver.client, driver.mode)]
    assert rows == mine, (f"{driver.client} ({driver.mode}) now sends other answer formats than "
                          f"{CAPTURED.name} records; rerun with CAPTURE_CLIENT_SCHEMAS=1 and review the diff")


def test_every_answer_format_in_the_file_is_one_a_client_sent():
    """The file holds exactly the drivers' rows: a driver removed or renamed leaves no stale schemas."""
    rows = committed()
    assert {(r["client"], r["mode"]) for r in rows} == {(d.client, d.mode) for d in DRIVERS}
    assert len(rows) == len(DRIVERS) * len(CLIENT_MODELS)
