"""Real MCP servers for the tests: the SDK-written test server over stdio and over streamable
HTTP, and a protocol-breaking one; a manager that is always shut down. Helpers: mcp_fixtures.py."""
from __future__ import annotations

import subprocess
import sys

import pytest
from mcp_fixtures import SERVER, servers_of


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


