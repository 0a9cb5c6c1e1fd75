"""MCP tool calls through the app's manager: time to start a server and list its tools, and the
round trip of a small call, over stdio and streamable HTTP, against the SDK-written test server
(tests/mcp/mcp_test_server.py). Not a test: figures for the docs.

    python bench/mcp_calls.py [calls]
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SERVER = ROOT / "tests" / "mcp" / "mcp_test_server.py"


def measure(entry: dict, calls: int) -> tuple[float, float, float]:
    from app.mcp.config import parse_config
    from app.mcp.manager import McpManager
    servers, _ = parse_config(json.dumps({"mcpServers": {"s": entry}}))
    m = McpManager(servers)
    try:
        t = time.perf_counter()
        listing = m.list_tools(["s"]).result(120)
        start = time.perf_counter() - t
        assert not listing.problems, listing.problems
        times = []
        for i in range(calls):
            t = time.perf_counter()
            assert m.call("s__add", {"a": i % 100, "b": 1}).result(60).text == str(i % 100 + 1)
            times.append(time.perf_counter() - t)
        return start, statistics.median(times), max(times)
    finally:
        m.shutdown()


def main(calls: int = 50) -> None:
    rows = [("stdio", measure({"command": sys.executable, "args": [str(SERVER), "stdio"]}, calls))]
    proc = subprocess.Popen([sys.executable, str(SERVER), "http"], stdout=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{int(proc.stdout.readline().split()[1])}/mcp"
        rows.append(("streamable HTTP", measure({"url": url}, calls)))
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"{'transport':16} {'start+list s':>12} {'call median ms':>15} {'call max ms':>12}  ({calls} calls)")
    for name, (start, median, worst) in rows:
        print(f"{name:16} {start:12.2f} {median * 1000:15.1f} {worst * 1000:12.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
