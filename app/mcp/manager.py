"""The MCP servers' lifecycle: started when first needed, spoken to on one asyncio thread, stopped
with the app.

    mcp = McpManager(servers)                       # no server runs yet
    listing = mcp.list_tools(["github"]).result()   # starts github; its tools as harmony functions
    out = mcp.call("github__create_issue", {...}).result()   # McpOutput: text for the model

Every method returns a concurrent Future at once and never raises: the Qt thread adds a
callback, a tools thread may wait. The official SDK's client runs on this manager's own thread
(never the model's thread, never the Qt thread). Each server lives in one asyncio task that
holds its connection open; a server that can't start, dies, hangs past its timeout or answers
garbage gives one sentence (secrets hidden) and the model an error result; the next call starts
it again. LM Studio's users lost their window to a server that hung while starting: here a start
has its own timeout and nothing waits for it but the call that needs it.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import tempfile
import threading
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from app.mcp.command import resolve
from app.mcp.config import ServerConfig
from app.mcp.redact import Redactor, redact_logs
from app.mcp.results import McpOutput, first_sentence, output_of
from app.mcp.tools import McpTool, function_names, model_schema, short_description

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0      # seconds; `npx -y` may download its package on the first start
LIST_TIMEOUT = 30.0
STOP_TIMEOUT = 8.0        # the SDK closes stdin, waits, then terminates and kills the process group


class McpProblem(Exception):
    """One sentence for the chat (already redacted)."""


@dataclass
class Listing:
    """The tools of the servers asked for, and one sentence per server that couldn't give them."""

    tools: list[McpTool] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def by_function(self) -> dict[str, McpTool]:
        return {t.function: t for t in self.tools}


class McpManager:
    def __init__(self, servers: dict[str, ServerConfig] | None = None, start_timeout: float = START_TIMEOUT,
                 result_chars: int = 8192):
        self.start_timeout = start_timeout
        self.result_chars = result_chars
        self._servers: dict[str, ServerConfig] = dict(servers or {})
        self.redactor = Redactor(self._servers.values())
        self._functions: dict[str, McpTool] = {}          # the last listing's functions, for routing
        self._conns: dict[str, _Connection] = {}          # touched only on the loop thread
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mcp-client", daemon=True)
        self._thread.start()
        self._closed = False
        redact_logs(self)

    # -- public: every method returns at once --------------------------------------------------
    def configure(self, servers: dict[str, ServerConfig]) -> concurrent.futures.Future:
        """New settings: servers removed or changed are stopped (a changed one starts anew when needed)."""
        self._servers = dict(servers)
        self.redactor = Redactor([*servers.values(), *(c.config for c in list(self._conns.values()))])
        return self._submit(self._configure(dict(servers)))

    def list_tools(self, names: list[str], taken: set[str] = frozenset()) -> concurrent.futures.Future:
        """Future[Listing] of the named servers' tools (starting them); `taken` are names already used."""
        return self._submit(self._list(sorted(set(names)), set(taken)))

    def call(self, function: str, arguments: dict | None, timeout: float | None = None) -> concurrent.futures.Future:
        """Future[McpOutput] of calling a function from the last listing ("server__tool")."""
        tool = self._functions.get(function)
        if tool is None:
            return _done(McpOutput.failed(f"There is no MCP tool {function!r} (its server may have been removed)."))
        return self.call_tool(tool.server, tool.tool, arguments, timeout)

    def call_tool(self, server: str, tool: str, arguments: dict | None, timeout: float | None = None) -> concurrent.futures.Future:
        return self._submit(self._call(server, tool, arguments or {}, timeout))

    def tool_of(self, function: str) -> McpTool | None:
        return self._functions.get(function)

    def server_of(self, function: str) -> str | None:
        tool = self._functions.get(function)
        return tool.server if tool else None

    def running(self) -> list[str]:
        return sorted(n for n, c in list(self._conns.items()) if c.alive())

    def shutdown(self, timeout: float = STOP_TIMEOUT + 2) -> None:
        """Stop every server and the thread (bounded: called when the app quits)."""
        if self._closed:
            return
        self._closed = True
        try:
            asyncio.run_coroutine_threadsafe(self._stop_all(), self._loop).result(timeout)
        except Exception as e:       # a server that won't die: its process group is killed by the SDK
            log.warning("MCP servers did not all stop in time (%s)", type(e).__name__)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=2)

    # -- on the loop thread ---------------------------------------------------------------------
    def _submit(self, coro) -> concurrent.futures.Future:
        if self._closed:
            coro.close()
            return _done(McpOutput.failed("The app is closing; MCP tools are stopped."))
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    async def _configure(self, servers: dict[str, ServerConfig]) -> None:
        for name, conn in list(self._conns.items()):
            if servers.get(name) != conn.config:
                del self._conns[name]
                await conn.stop()

    async def _connection(self, name: str) -> _Connection:
        config = self._servers.get(name)
        if config is None:
            raise McpProblem(f'There is no MCP server "{name}" in the settings.')
        if config.disabled:
            raise McpProblem(f'The MCP server "{name}" is turned off in mcp.json ("disabled": true).')
        conn = self._conns.get(name)
        if conn is None or conn.finished():
            conn = self._conns[name] = _Connection(config, self.redactor, self.start_timeout)
        await conn.started()
        return conn

    async def _list(self, names: list[str], taken: set[str]) -> Listing:
        results = await asyncio.gather(*(self._list_one(n) for n in names), return_exceptions=True)
        listing = Listing()
        for name, got in zip(names, results):
            if isinstance(got, BaseException):
                listing.problems.append(str(got) if isinstance(got, McpProblem) else self._sentence(name, got))
                continue
            names_by_tool = function_names(name, [t.name for t in got], taken)
            for t in got:
                params, why = model_schema(t.input_schema)
                if why:
                    listing.problems.append(self.redactor.redact(f'The tool "{t.name}" of "{name}" is left out: {why}.'))
                    continue
                function = names_by_tool[t.name]
                taken.add(function)
                listing.tools.append(McpTool(name, t.name, function, short_description(t.description), params))
        self._functions = {**self._functions, **listing.by_function()}
        return listing

    async def _list_one(self, name: str) -> list:
        conn = await self._connection(name)
        try:
            tools, cursor = [], None
            for _ in range(50):           # a paginator that never ends can't hang us
                page = await asyncio.wait_for(conn.client.list_tools(cursor=cursor), LIST_TIMEOUT)
                tools += list(page.tools)
                cursor = page.next_cursor
                if not cursor:
                    break
            return tools
        except asyncio.TimeoutError:
            raise McpProblem(f'The MCP server "{name}" did not list its tools within {LIST_TIMEOUT:.0f} s.') from None

    async def _call(self, server: str, tool: str, arguments: dict, timeout: float | None) -> McpOutput:
        try:
            conn = await self._connection(server)
            return await conn.call(tool, arguments, timeout or conn.config.timeout, self.result_chars)
        except McpProblem as e:
            return McpOutput.failed(str(e))
        except Exception as e:
            return McpOutput.failed(self._sentence(server, e))

    def _sentence(self, name: str, e: BaseException) -> str:
        log.warning("MCP server %s: %s", name, self.redactor.redact(repr(e)))
        return self.redactor.redact(f'The MCP server "{name}" failed ({describe(e)}).')

    async def _stop_all(self) -> None:
        conns, self._conns = list(self._conns.values()), {}
        await asyncio.gather(*(c.stop() for c in conns), return_exceptions=True)


class _Connection:
    """One running server: a task that holds the SDK's Client open until asked to stop."""

    def __init__(self, config: ServerConfig, redactor: Redactor, start_timeout: float):
        self.config, self.redactor, self.start_timeout = config, redactor, start_timeout
        self.client = None
        self.stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") if config.command else None
        self._ready: asyncio.Future = asyncio.get_running_loop().create_future()
        self._ready.add_done_callback(lambda f: f.cancelled() or f.exception())   # read: no "never retrieved"
        self._stop = asyncio.Event()
        self._dead = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.problem: str | None = None

    def alive(self) -> bool:
        return self.client is not None and not self._dead.is_set()

    def finished(self) -> bool:
        return self._dead.is_set()

    async def started(self) -> None:
        """Start (once) and wait for the handshake, within the start timeout."""
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), self.start_timeout)
        except asyncio.TimeoutError:
            sentence = self._with_stderr(f'The MCP server "{self.config.name}" did not start within '
                                         f'{self.start_timeout:.0f} s')
            await self.stop()
            raise McpProblem(sentence) from None

    async def _run(self) -> None:
        name = self.config.name
        try:
            async with AsyncExitStack() as stack:
                self.client = await stack.enter_async_context(await self._client(stack))
                self._ready.set_result(None)
                log.info("MCP server %s started", name)
                await self._stop.wait()
        except BaseException as e:  # noqa: BLE001 - whatever ended it becomes the sentence
            self.problem = self._with_stderr(f'The MCP server "{name}" {"stopped" if self._ready.done() else "could not start"} '
                                             f'({describe(e)})') if not isinstance(e, McpProblem) else str(e)
            if not self._ready.done():
                self._ready.set_exception(McpProblem(self.problem))
            if not self._stop.is_set():
                log.warning("%s", self.problem)
            if isinstance(e, asyncio.CancelledError):
                raise
        finally:
            self.client = None
            self._dead.set()
            if self.stderr:
                self.stderr.close()

    async def _client(self, stack: AsyncExitStack):
        from mcp import Client, StdioServerParameters
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client
        from mcp_types import Implementation

        info = Implementation(name="gpt-oss-chat", version="0.1")
        if self.config.command:
            env = dict(self.config.env)
            program, path, problem = resolve(self.config.command, env.get("PATH"))
            if program is None:
                raise McpProblem(self.redactor.redact(f'The MCP server "{self.config.name}" could not start: {problem}'))
            env["PATH"] = path
            params = StdioServerParameters(command=program, args=list(self.config.args), env=env,
                                           cwd=self.config.cwd or None, encoding_error_handler="replace")
            from mcp.client.stdio import stdio_client
            return Client(stdio_client(params, errlog=self.stderr), mode="legacy", client_info=info)
        http = await stack.enter_async_context(create_mcp_http_client(headers=dict(self.config.headers) or None))
        return Client(streamable_http_client(self.config.url, http_client=http), mode="legacy", client_info=info)

    async def call(self, tool: str, arguments: dict, timeout: float, limit: int) -> McpOutput:
        name = self.config.name
        call = asyncio.ensure_future(self.client.call_tool(tool, arguments))
        dead = asyncio.ensure_future(self._dead.wait())
        try:
            done, _ = await asyncio.wait({call, dead}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            dead.cancel()
        if call not in done:
            call.cancel()
            if dead in done:
                return McpOutput.failed(self.problem or f'The MCP server "{name}" stopped during the call.')
            return McpOutput.failed(f'The MCP tool "{tool}" of "{name}" did not answer within {timeout:.0f} s.')
        try:
            return output_of(call.result(), limit)
        except Exception as e:
            if _connection_lost(e):       # it died: the next call starts it again
                sentence = self._with_stderr(f'The MCP server "{name}" stopped during the call')
                await self.stop()
                return McpOutput.failed(sentence)
            return McpOutput.failed(self.redactor.redact(f'The MCP tool "{tool}" of "{name}" failed ({describe(e)}).'))

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None and not self._task.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._task), STOP_TIMEOUT)
            except (asyncio.TimeoutError, Exception):
                self._task.cancel()
        self._dead.set()

    def _with_stderr(self, sentence: str) -> str:
        """The sentence, with the server's last line of stderr when it said something (redacted)."""
        said = ""
        if self.stderr and not self.stderr.closed:
            try:
                self.stderr.flush()
                self.stderr.seek(0)
                lines = [ln.strip() for ln in self.stderr.read()[-4000:].splitlines() if ln.strip()]
                said = first_sentence(lines[-1]) if lines else ""
            except (OSError, ValueError):
                said = ""
        return self.redactor.redact(f"{sentence}; it said: {said}" if said else f"{sentence}.")


def describe(e: BaseException) -> str:
    """A short reason from an exception (an anyio ExceptionGroup is unwrapped to its first cause)."""
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    if isinstance(e, McpProblem):
        return str(e).rstrip(".")
    if isinstance(e, FileNotFoundError):
        return "its program was not found"
    if isinstance(e, PermissionError):
        return "its program may not be run"
    if type(e).__name__ == "ValidationError":
        return "its answer was not valid MCP"
    text = first_sentence(str(e)) or type(e).__name__
    return text.rstrip(".")


CONNECTION_CLOSED = -32000    # the SDK's code for a request whose answer can never come (mcp_types.jsonrpc)


def _connection_lost(e: BaseException) -> bool:
    """The server went away (process died, HTTP stream cut), as opposed to a tool that failed."""
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    transport = type(e).__module__.startswith(("httpx", "httpcore")) and "Timeout" not in type(e).__name__
    return (getattr(e, "code", None) == CONNECTION_CLOSED or transport
            or isinstance(e, (ConnectionError, EOFError)) or "connection closed" in str(e).lower())


def _done(value) -> concurrent.futures.Future:
    f = concurrent.futures.Future()
    f.set_result(value)
    return f
