"""server/request_log.py through `python -m server --log-requests`: one line per request answered
(the refused ones too), with the engine's token counts; never what the client sent or its key, and
a client's path can't write terminal escapes."""

import httpx

from models.registry import demo_folder
from served import Server

KEY = "sk-local-request-log-test-key"
QUESTION = "What is 486 + 357?"


def test_the_standalone_server_prints_one_line_per_request_and_never_the_key_or_body():
    server = Server("--model", str(demo_folder()), "--context", "2048", "--api-key", KEY, "--log-requests")
    try:
        client = server.client(api_key=KEY, timeout=120)
        got = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": QUESTION}],
                                             max_tokens=64, reasoning_effort="low")
        answer = got.choices[0].message.content
        assert answer
        assert httpx.get(server.url + "/v1/models", timeout=10).status_code == 401
        assert httpx.get(server.url + "/v1/%1b[31mred", timeout=10, headers={
            "Authorization": f"Bearer {KEY}"}).status_code == 404
    finally:
        server.stop()
    lines = [line for line in server.proc.stderr.read().splitlines() if " /v1/" in line]
    assert len(lines) == 3, lines
    chat, refused, escaped = lines
    usage = got.usage
    assert f" 127.0.0.1 POST /v1/chat/completions demo 200 {usage.prompt_tokens}->{usage.completion_tokens} tokens " \
        in chat
    assert " GET /v1/models 401 " in refused
    assert "\x1b" not in escaped and " 404 " in escaped
    for line in lines:
        assert KEY not in line and QUESTION not in line and answer[:12] not in line
