"""Helpers for the MCP tests (a unique module name: tests/app has its own conftest)."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

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


def wait_until(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
