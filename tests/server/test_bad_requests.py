"""The probe's hostile requests as a table: each row is one request a client (or a web page) can
send, and the status and OpenAI error object it must get: never a 500, never a traceback, never
FastAPI's {"detail": ...}, the field that is wrong named in `param`. Run against a real server
process on the demo model; none of these requests reaches the model."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

CHAT, RESP = "/v1/chat/completions", "/v1/responses"
HI = [{"role": "user", "content": "hi"}]


def chat(**fields) -> dict:
    return {"model": "demo", "messages": HI, **fields}


def resp(**fields) -> dict:
    return {"model": "demo", "input": "hi", **fields}


def assistant_with(**fields) -> dict:
    """A conversation whose assistant turn carries `fields` (tool_calls and friends)."""
    return chat(messages=[*HI, {"role": "assistant", "content": None, **fields},
                          {"role": "user", "content": "and?"}])


def call(**overrides) -> dict:
    return {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}, **overrides}


def tool(parameters) -> dict:
    return {"type": "function", "function": {"name": "f", "parameters": parameters}}


DEEP = b'{"model": "demo", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
SURROGATE = b'{"model": "demo", "messages": [{"role": "user", "content": "a\\ud800b"}]}'

# (row id, path, JSON body or raw bytes, expected status, expected param)
ROWS = [
    # -- the ten 500s of the probe
    ("nested 100,000 deep", CHAT, DEEP, 400, None),
    ("tool_calls a string", CHAT, assistant_with(tool_calls="x"), 400, "messages[1].tool_calls"),
    ("tool_calls [5]", CHAT, assistant_with(tool_calls=[5]), 400, "messages[1].tool_calls[0]"),
    ("function a string", CHAT, assistant_with(tool_calls=[call(function="f")]), 400,
     "messages[1].tool_calls[0].function"),
    ("arguments an object", CHAT, assistant_with(tool_calls=[call(function={"name": "f", "arguments": {}})]), 400,
     "messages[1].tool_calls[0].function.arguments"),
    ("call id a list", CHAT, assistant_with(tool_calls=[call(id=["x"])]), 400, "messages[1].tool_calls[0].id"),
    ("remote $ref", CHAT, chat(tools=[tool({"$ref": "http://127.0.0.1:9/schema.json"})]), 400,
     "tools[0].function.parameters"),
    ("response_format a string", CHAT, chat(response_format="json"), 400, "response_format"),
    ("previous_response_id a list", RESP, resp(previous_response_id=["resp_1"]), 400, "previous_response_id"),
    ("reasoning a string", RESP, resp(reasoning="high"), 400, "reasoning"),
    # -- types are checked, not coerced
    ("stream 'no'", CHAT, chat(stream="no"), 400, "stream"),
    ("stream 1", CHAT, chat(stream=1), 400, "stream"),
    ("responses stream 'no'", RESP, resp(stream="no"), 400, "stream"),
    ("lone surrogate", CHAT, SURROGATE, 400, None),
    ("temperature a string", CHAT, chat(temperature="1"), 400, "temperature"),
    ("temperature 5", CHAT, chat(temperature=5), 400, "temperature"),
    ("top_p -1", CHAT, chat(top_p=-1), 400, "top_p"),
    ("max_tokens 1.5", CHAT, chat(max_tokens=1.5), 400, "max_tokens"),
    ("max_tokens 0", CHAT, chat(max_tokens=0), 400, "max_tokens"),
    ("max_completion_tokens a string", CHAT, chat(max_completion_tokens="9"), 400, "max_completion_tokens"),
    ("seed a string", CHAT, chat(seed="1"), 400, "seed"),
    ("n 2", CHAT, chat(n=2), 400, "n"),
    ("stop five strings", CHAT, chat(stop=["a", "b", "c", "d", "e"]), 400, "stop"),
    ("stop a number", CHAT, chat(stop=5), 400, "stop"),
    ("reasoning_effort extreme", CHAT, chat(reasoning_effort="extreme"), 400, "reasoning_effort"),
    ("stream_options.include_usage 'yes'", CHAT, chat(stream=True, stream_options={"include_usage": "yes"}), 400,
     "stream_options.include_usage"),
    ("an unknown field", CHAT, chat(foo=1), 400, "foo"),
    # -- parameters that would otherwise be ignored silently
    ("logprobs a string", CHAT, chat(logprobs="yes"), 400, "logprobs"),
    ("top_logprobs without logprobs", CHAT, chat(top_logprobs=3), 400, "top_logprobs"),
    ("top_logprobs 21", CHAT, chat(logprobs=True, top_logprobs=21), 400, "top_logprobs"),
    ("frequency_penalty", CHAT, chat(frequency_penalty=0.5), 400, "frequency_penalty"),
    ("presence_penalty", CHAT, chat(presence_penalty=0.5), 400, "presence_penalty"),
    ("logit_bias", CHAT, chat(logit_bias={"100": 5}), 400, "logit_bias"),
    ("responses top_logprobs -1", RESP, resp(top_logprobs=-1), 400, "top_logprobs"),
    ("responses include a number", RESP, resp(include=[5]), 400, "include[0]"),
    # -- the body and the messages
    ("body a list", CHAT, [1], 400, None),
    ("body not JSON", CHAT, b"{not json", 400, None),
    ("empty body", CHAT, b"", 400, None),
    ("model missing", CHAT, {"messages": HI}, 400, "model"),
    ("model a number", CHAT, chat(model=5), 400, "model"),
    ("messages missing", CHAT, {"model": "demo"}, 400, "messages"),
    ("messages empty", CHAT, chat(messages=[]), 400, "messages"),
    ("messages a string", CHAT, chat(messages="hi"), 400, "messages"),
    ("a message a string", CHAT, chat(messages=["hi"]), 400, "messages[0]"),
    ("unknown role", CHAT, chat(messages=[{"role": "wizard", "content": "hi"}]), 400, "messages[0].role"),
    ("content a number", CHAT, chat(messages=[{"role": "user", "content": 5}]), 400, "messages[0].content"),
    ("an image part", CHAT, chat(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]), 400, "messages[0].content[0]"),
    ("tool message without tool_call_id", CHAT, chat(messages=[*HI, {"role": "tool", "content": "3"}]), 400,
     "messages[1].tool_call_id"),
    ("tools not a list", CHAT, chat(tools={"type": "function"}), 400, "tools"),
    ("a tool of another type", CHAT, chat(tools=[{"type": "code_interpreter"}]), 400, "tools[0].type"),
    ("a tool without a name", CHAT, chat(tools=[{"type": "function", "function": {}}]), 400,
     "tools[0].function.name"),
    ("parameters a string", CHAT, chat(tools=[tool("object")]), 400, "tools[0].function.parameters"),
    ("a remote $ref inside $defs", CHAT, chat(tools=[tool({"type": "object", "$defs": {
        "x": {"$ref": "https://example.com/x.json"}}, "properties": {"a": {"$ref": "#/$defs/x"}}})]), 400,
     "tools[0].function.parameters"),
    ("tool_choice a number", CHAT, chat(tools=[tool({"type": "object"})], tool_choice=5), 400, "tool_choice"),
    ("response_format of an unknown type", CHAT, chat(response_format={"type": "xml"}), 400, "response_format.type"),
    ("json_schema without a schema", CHAT, chat(response_format={"type": "json_schema", "json_schema": {"name": "x"}}),
     400, "response_format.json_schema.schema"),
    ("legacy functions", CHAT, chat(functions=[{"name": "f"}]), 400, "functions"),
    # -- Responses
    ("input a number", RESP, resp(input=5), 400, "input"),
    ("input item of an unknown type", RESP, resp(input=[{"type": "wizardry"}]), 400, "input[0].type"),
    ("function_call_output for no call", RESP, resp(input=[
        {"type": "function_call_output", "call_id": "call_nope", "output": "3"}]), 400, "input[0].call_id"),
    ("instructions a number", RESP, resp(instructions=5), 400, "instructions"),
    ("text.format a string", RESP, resp(text={"format": "json"}), 400, "text.format"),
    ("a hosted tool", RESP, resp(tools=[{"type": "code_interpreter"}]), 400, "tools[0].type"),
    ("web_search without sources", RESP, resp(tools=[{"type": "web_search"}]), 400, "tools"),
    ("max_output_tokens 0", RESP, resp(max_output_tokens=0), 400, "max_output_tokens"),
    ("store 'yes'", RESP, resp(store="yes"), 400, "store"),
    ("reasoning.effort extreme", RESP, resp(reasoning={"effort": "extreme"}), 400, "reasoning.effort"),
    ("an unknown previous_response_id", RESP, resp(previous_response_id="resp_nope"), 404, "previous_response_id"),
    ("an unknown model", CHAT, chat(model="gpt-5"), 404, "model"),
]


def _post(server, path, body, **headers):
    if isinstance(body, bytes):
        return httpx.post(server.url + path, content=body, timeout=60,
                          headers={"Content-Type": "application/json", **headers})
    return httpx.post(server.url + path, json=body, timeout=60, headers=headers)


def assert_openai_error(r: httpx.Response, status: int, param=None) -> dict:
    assert r.status_code == status, r.text[:300]
    body = r.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert error["message"] and "Traceback" not in error["message"] and len(error["message"]) < 400
    if param is not None:
        assert error["param"] == param, error
    return error


@pytest.mark.parametrize("name,path,body,status,param", ROWS, ids=[r[0] for r in ROWS])
def test_a_bad_request_gets_an_openai_error(demo_server, name, path, body, status, param):
    assert_openai_error(_post(demo_server, path, body), status, param)


def test_the_server_still_answers_after_the_table(demo_server):
    r = httpx.post(demo_server.url + CHAT, json=chat(max_tokens=8), timeout=120)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]


# -- routes and methods


@pytest.mark.parametrize("method,path,status", [
    ("GET", "/v1/nope", 404), ("POST", "/nope", 404), ("GET", CHAT, 405), ("PUT", RESP, 405),
    ("DELETE", "/v1/models", 405)])
def test_unknown_routes_and_methods_answer_in_openai_shape(demo_server, method, path, status):
    assert_openai_error(httpx.request(method, demo_server.url + path, timeout=10), status)


@pytest.mark.parametrize("path", ["/v1/completions", "/v1/embeddings"])
def test_endpoints_not_served_say_so(demo_server, path):
    error = assert_openai_error(_post(demo_server, path, {"model": "demo", "input": "hi", "prompt": "hi"}), 404)
    assert "not served" in error["message"] and "/v1/chat/completions" in error["message"]


# -- sizes


def test_a_body_over_the_limit_is_refused_while_reading(demo_server):
    big = json.dumps(chat(messages=[{"role": "user", "content": "x" * (5 << 20)}])).encode()
    def chunks():  # no Content-Length: the server must count while it reads
        for i in range(0, len(big), 1 << 16):
            yield big[i:i + (1 << 16)]
    try:
        r = httpx.post(demo_server.url + CHAT, content=chunks(), timeout=60,
                       headers={"Content-Type": "application/json"})
    except httpx.HTTPError:  # the server may close the connection while we still send: also a refusal
        return
    assert_openai_error(r, 413)


def test_a_declared_length_over_the_limit_is_refused_before_reading(demo_server):
    """Content-Length says 50 MB and nothing follows: the answer comes at once, not after a read."""
    with socket.create_connection(("127.0.0.1", demo_server.port), timeout=10) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 52428800\r\n\r\n")
        head = s.recv(4096).decode("latin-1")
    assert head.startswith("HTTP/1.1 413"), head[:200]


# -- browsers


def test_a_simple_cross_origin_post_is_refused(demo_server):
    """The form a web page can send without asking: text/plain, any Origin."""
    r = httpx.post(demo_server.url + CHAT, content=json.dumps(chat()).encode(), timeout=10,
                   headers={"Content-Type": "text/plain", "Origin": "https://evil.example"})
    assert_openai_error(r, 403)


def test_a_foreign_origin_is_refused_even_with_json(demo_server):
    r = _post(demo_server, CHAT, chat(), Origin="https://evil.example")
    assert_openai_error(r, 403)


def test_a_post_must_be_json(demo_server):
    r = httpx.post(demo_server.url + CHAT, content=json.dumps(chat()).encode(), timeout=10,
                   headers={"Content-Type": "text/plain"})
    assert_openai_error(r, 415)


def test_preflight_from_a_foreign_origin_gets_no_cors_grant(demo_server):
    r = httpx.options(demo_server.url + CHAT, timeout=10, headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert "access-control-allow-origin" not in r.headers
    assert_openai_error(r, 403)


def test_a_rebound_host_name_is_refused(demo_server):
    """DNS rebinding: a page's own name resolving to 127.0.0.1 reads as same-origin to the browser."""
    r = httpx.get(demo_server.url + "/v1/models", headers={"Host": "evil.example"}, timeout=10)
    assert_openai_error(r, 403)
