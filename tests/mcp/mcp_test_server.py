"""A real MCP server for the tests, written with the official SDK (MCPServer).

    python mcp_test_server.py stdio          # over stdin/stdout
    python mcp_test_server.py http           # streamable HTTP on 127.0.0.1, a free port; prints "PORT <n>"
    python mcp_test_server.py garbage        # writes non-JSON to stdout, then nothing
    python mcp_test_server.py silent         # never answers (a server that hangs at start)

Tools: add (typed numbers, structured result), search_notes (a pydantic model in $defs, an
optional list, a default), slow (sleeps), fail (raises: an error result), picture (a PNG),
crash (the process exits in the middle of the call), shout (echoes text, control tokens
included), big (a very long text), whoami (which env var it was given, never its value).
"""
import asyncio
import base64
import os
import socket
import sys
import time

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.utilities.types import Image
from pydantic import BaseModel, Field

# 1x1 red PNG
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")


class Filter(BaseModel):
    tag: str = Field(description="Only notes with this tag")
    newest_first: bool = True


def build():
    server = MCPServer("test-notes")

    @server.tool(description="Add two integers.")
    def add(a: int = Field(ge=0, le=999), b: int = Field(ge=0, le=999)) -> int:
        return a + b

    @server.tool(description="Search the user's notes.")
    def search_notes(query: str = Field(description="Words to look for"), limit: int = 5,
                     tags: list[str] | None = None, filter: Filter | None = None) -> str:
        return f"found 2 notes for {query!r} (limit {limit}, tags {tags}, filter {filter.tag if filter else None})"

    @server.tool(description="Wait, then answer.")
    async def slow(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return f"slept {seconds}"

    @server.tool(description="Always fails.")
    def fail(reason: str) -> str:
        raise ToolError(f"the disk is on fire: {reason}")

    @server.tool(description="A small picture.")
    def picture() -> Image:
        return Image(data=PNG, format="png")

    @server.tool(description="Dies in the middle of the call.")
    def crash() -> str:
        sys.stdout.flush()
        os._exit(3)

    @server.tool(description="Echo the text back.")
    def shout(text: str) -> str:
        return text

    @server.tool(description="A very long text.")
    def big(chars: int) -> str:
        return "x" * chars

    @server.tool(description="The server's process id.")
    def pid() -> int:
        return os.getpid()

    @server.tool(description="Say whether the token was given.")
    def whoami() -> str:
        token = os.environ.get("TEST_TOKEN", "")
        print(f"starting with token {token}", file=sys.stderr)
        return f"token of {len(token)} characters"

    return server


def main(mode: str) -> None:
    if mode == "garbage":
        print("this is not JSON-RPC", flush=True)
        time.sleep(3600)
    elif mode == "silent":
        time.sleep(3600)
    elif mode == "stdio":
        build().run("stdio")
    elif mode == "http":
        import uvicorn
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)      # connections wait in the backlog until uvicorn accepts them
        print(f"PORT {sock.getsockname()[1]}", flush=True)
        app = build().streamable_http_app()
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        asyncio.run(server.serve(sockets=[sock]))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "stdio")
