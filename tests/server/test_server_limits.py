"""Busy, API key and listening address: what the server refuses, and how it says so."""

from __future__ import annotations

import subprocess
import sys
import threading

import httpx
import openai
import pytest

from models.registry import demo_folder
from served import ROOT, Server

Q = {"model": "demo", "messages": [{"role": "user", "content": "Multiply 987 by 9."}], "reasoning_effort": "high"}


def test_a_full_queue_answers_429_with_retry_after():
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

        threads = [threading.Thread(target=post) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        # one generating, one waiting: the rest are told to come back
        assert statuses.count(200) >= 2 and statuses.count(429) >= 1
        assert set(statuses) <= {200, 429}
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
