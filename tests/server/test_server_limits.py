"""Busy, API key and listening address: what the server refuses, and how it says so."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import httpx
import openai
import pytest

from models.registry import demo_folder
from served import ROOT, Server, free_port

Q = {"model": "demo", "messages": [{"role": "user", "content": "Multiply 987 by 9."}], "reasoning_effort": "high"}


def test_a_full_queue_answers_429_with_retry_after():
    """--max-waiting 1: one request may wait while another is generated; the rest are told to come
    back. The burst is sent once the first answer is being written (a text delta has come): sent all
    at once, a loaded machine could still have the first one waiting when the second arrived, and
    only one of six got through (a full run failed that way)."""
    server = Server("--model", str(demo_folder()), "--max-waiting", "1")
    try:
        statuses: list[int] = []
        lock = threading.Lock()

        def post():
            r = httpx.post(server.url + "/v1/chat/completions", json=Q, timeout=120)
            with lock:
                statuses.append(r.status_code)
                if r.status_code == 429:
                    assert r.headers["retry-after"] and r.json()["error"]["type"] == "rate_limit_exceeded"

        with httpx.stream("POST", server.url + "/v1/chat/completions", json=dict(Q, stream=True),
                          timeout=120) as first:
            assert first.status_code == 200
            lines = first.iter_lines()
            for line in lines:   # until the engine writes this answer: it no longer waits
                if line.startswith("data: {") and any(json.loads(line[6:])["choices"][0]["delta"].get(k)
                                                      for k in ("content", "reasoning_content", "reasoning")):
                    break
            threads = [threading.Thread(target=post) for _ in range(5)]
            for t in threads:
                t.start()
            assert any(line == "data: [DONE]" for line in lines)   # the first answer ends well
        for t in threads:
            t.join(180)
        # one waited for the model and was answered; the others were told to come back
        assert statuses.count(200) >= 1 and statuses.count(429) >= 1, statuses
        assert set(statuses) <= {200, 429} and len(statuses) == 5
    finally:
        server.stop()


def test_api_key_is_required_when_set():
    server = Server("--model", str(demo_folder()), "--api-key", "s3cret")
    try:
        with pytest.raises(openai.AuthenticationError):
            server.client(api_key="wrong").models.list()
        assert [m.id for m in server.client(api_key="s3cret").models.list().data] == ["demo"]
        assert httpx.get(server.url + "/health").status_code == 200  # health stays open for monitors
    finally:
        server.stop()


def test_listening_beyond_loopback_needs_a_key():
    result = subprocess.run([sys.executable, "-m", "server", "--host", "0.0.0.0", "--model", str(demo_folder())],
                            cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2
    assert "--api-key" in result.stderr and "Traceback" not in result.stderr


def test_default_address_is_loopback():
    from server.__main__ import parse_args

    assert parse_args([]).host == "127.0.0.1"


def test_a_folder_that_is_not_a_model_gets_one_sentence(tmp_path):
    result = subprocess.run([sys.executable, "-m", "server", "--model", str(tmp_path / "nope")],
                            cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert result.returncode == 1 and "does not exist" in result.stderr and "Traceback" not in result.stderr


def _run_server(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "server", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})


def test_a_model_that_fails_to_load_ends_the_server_with_one_sentence(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    result = _run_server("--model", str(tmp_path), "--port", str(free_port()))
    assert result.returncode == 1, result.stderr
    assert "could not be loaded" in result.stderr and "Traceback" not in result.stderr
    assert "Serving" not in result.stderr


def test_a_port_in_use_ends_the_server_with_one_sentence():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = _run_server("--model", str(demo_folder()), "--port", str(port))
    assert result.returncode == 1
    assert f"Port {port} is already in use" in result.stderr and "Traceback" not in result.stderr
    assert "Serving" not in result.stderr


def test_the_readme_api_examples_work_as_written_with_the_demo():
    """A fresh install serves the demo model: the README's examples name gpt-oss-20b, an alias it answers to."""
    import re

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Local API server"):]
    curl = re.search(r"```sh\n(curl .*?)\n```", section, re.S).group(1)
    python = re.search(r"```python\n(from openai import OpenAI.*?)\n```", section, re.S).group(1)
    server = Server("--model", str(demo_folder()))
    try:
        body = json.loads(re.search(r"-d '(.*)'", curl, re.S).group(1))
        r = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=120)
        assert r.status_code == 200, r.text
        script = python.replace("http://127.0.0.1:8000/v1", server.url + "/v1")
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip()
    finally:
        server.stop()
