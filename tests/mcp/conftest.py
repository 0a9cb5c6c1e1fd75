"""Real MCP servers for the tests: the SDK-written test server over stdio and over streamable
HTTP, and a protocol-breaking one; a manager that is always shut down."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent
SERVER = HERE / "mcp_test_server.py"
RAW = HERE / "raw_server.py"


def stdio_entry(mode: str = "stdio", script: Path = SERVER, **extra) -> dict:
    return {"command": sys.executable, "args": [str(script), mode], **extra}


def servers_of(entries: dict):
    from app.mcp.config import parse_config
    servers, problems = parse_config(json.dumps({"mcpServers": entries}))
    assert problems == []
    return servers


@pytest.fixture
def manager_for():
    """manager_for({name: entry}, start_timeout=...) -> a McpManager, shut down after the test."""
    from app.mcp.manager import McpManager
    made = []

    def make(entries: dict, **kw):
        m = McpManager(servers_of(entries), **kw)
        made.append(m)
        return m
    yield make
    for m in made:
        m.shutdown()


@pytest.fixture(scope="module")
def http_server():
    """The test server on streamable HTTP; yields its URL."""
    proc = subprocess.Popen([sys.executable, str(SERVER), "http"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()          # "PORT n", printed once its socket is bound
        assert line.startswith("PORT "), line
        yield f"http://127.0.0.1:{int(line.split()[1])}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)


def wait_until(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
