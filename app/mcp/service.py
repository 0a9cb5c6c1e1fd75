"""The app's MCP feature in one object (no Qt): the servers in mcp.json, each chat's choice of
them, consent, and calls through the manager.

    mcp = McpService(store)                       # reads mcp.json; starts nothing
    mcp.tools_for(chat_id)     -> Future[Listing] # the tools of the servers on in that chat
    mcp.decide(chat_id, "github__create_issue")  -> "ask" | "always" | "off"
    mcp.call(chat_id, "github__create_issue", {...}) -> Future[McpOutput]
    mcp.shutdown()                                # with the app

A call to a server that is off in the chat never reaches the server: it gets an error result.
The local API never sees any of this (server/ doesn't import app/).
"""
from __future__ import annotations

import concurrent.futures
import logging
from pathlib import Path

from app.mcp import chats
from app.mcp.config import FILE_NAME, ServerConfig, config_path, import_servers, load_config, parse_server, save_config
from app.mcp.manager import McpManager
from app.mcp.results import McpOutput, max_chars, save_images
from app.mcp.tools import SEPARATOR, slug

log = logging.getLogger(__name__)


class McpService:
    def __init__(self, store, path: Path | None = None, context_length: int = 8192, start_timeout: float | None = None):
        """`path`: mcp.json (default: beside the history file, i.e. in the app's data folder)."""
        history = getattr(store, "path", None)
        self.store = store
        self.path = Path(path) if path else (Path(history).parent / FILE_NAME if history else config_path())
        self.servers, self.problems = load_config(self.path)
        kw = {} if start_timeout is None else {"start_timeout": start_timeout}
        self.manager = McpManager(self.servers, result_chars=max_chars(context_length), **kw)
        for p in self.problems:
            log.warning("%s", self.manager.redactor.redact(p))

    # -- the servers (Settings) ---------------------------------------------------------------
    def redact(self, text: str) -> str:
        return self.manager.redactor.redact(text)

    def _save(self, servers: dict[str, ServerConfig]) -> str:
        """Write mcp.json and apply it; "" or one sentence when the file can't be written."""
        try:
            save_config(servers, self.path)
        except OSError as e:
            return f"mcp.json couldn't be saved ({e.strerror or type(e).__name__}); the change is kept until the app quits."
        finally:
            self.servers = dict(servers)
            self.manager.configure(self.servers)
        return ""

    def add(self, name: str, entry) -> str:
        """Add or replace one server from its mcp.json entry: "" or one sentence."""
        server, problem = parse_server(name.strip(), entry)
        if problem:
            return problem
        if server.name not in self.servers and any(slug(n) == slug(server.name) for n in self.servers):
            return f'The name "{server.name}" is too close to another server\'s; choose another.'
        return self._save({**self.servers, server.name: server})

    def remove(self, name: str) -> str:
        servers = {k: v for k, v in self.servers.items() if k != name}
        self._update_chats(lambda saved: chats.forget_server(saved, name))
        return self._save(servers)

    def import_file(self, file: Path) -> list[str]:
        """Another app's mcp.json / claude_desktop_config.json: the sentences to show."""
        try:
            text = Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            return [f"{Path(file).name} couldn't be read ({getattr(e, 'strerror', None) or type(e).__name__})."]
        merged, notes = import_servers(self.servers, text, Path(file).name)
        if merged != self.servers:
            problem = self._save(merged)
            if problem:
                notes.append(problem)
        return [self.redact(n) for n in notes]

    # -- per chat ------------------------------------------------------------------------------
    def _saved(self):
        try:
            return self.store.get_setting(chats.KEY, {})
        except Exception as e:     # StoreError: the safe side is "nothing on"
            log.warning("MCP chat settings unreadable: %s", e)
            return {}

    def _update_chats(self, change) -> None:
        try:
            self.store.set_setting(chats.KEY, change(self._saved()))
        except Exception as e:
            log.warning("MCP chat settings not saved: %s", e)

    def chat(self, conversation_id: int | None) -> chats.ChatTools:
        live = {n for n, s in self.servers.items() if not s.disabled}
        return chats.chat_tools(self._saved(), conversation_id, live)

    def set_on(self, conversation_id: int | None, name: str, on: bool) -> None:
        """On/off in one chat (None: for chats not set yet, e.g. new ones)."""
        self._update_chats(lambda saved: chats.set_server(saved, conversation_id, name, on))

    def allow_always(self, conversation_id: int, function: str) -> None:
        self._update_chats(lambda saved: chats.allow_always(saved, conversation_id, function))

    # -- the model's calls -----------------------------------------------------------------------
    def tools_for(self, conversation_id: int | None, taken: set[str] = frozenset()) -> concurrent.futures.Future:
        """Future[Listing]: the functions to offer in this chat (`taken`: the user's own function names)."""
        return self.manager.list_tools(list(self.chat(conversation_id).on), taken)

    def context_note(self, listing, context_length: int) -> str:
        """One sentence when the chat's MCP tools take over a quarter of the context ("" otherwise):
        every tool's definition is read with every message (a common surprise in other apps)."""
        from engine.tools import tools_section
        if not listing.tools:
            return ""
        tokens = len(tools_section([("functions", None, [t.engine_tool() for t in listing.tools])])) // 4
        if tokens * 4 <= context_length:
            return ""
        return (f"The tools of the MCP servers on in this chat take about {tokens:,} of the {context_length:,} tokens "
                "the model can read; turn off the servers this chat doesn't need, or raise the context length.")

    def owns(self, function: str) -> bool:
        """The function is an MCP tool (of a configured server), by its name."""
        return self.manager.server_of(function) is not None or any(
            function.startswith(slug(n) + SEPARATOR) for n in self.servers)

    def decide(self, conversation_id: int, function: str) -> str:
        """"off" (its server is off in this chat: don't call), "always" (run) or "ask"."""
        server = self.manager.server_of(function)
        chat = self.chat(conversation_id)
        if server is None or not chat.allows(server):
            return "off"
        return "always" if function in chat.always else "ask"

    def call(self, conversation_id: int, function: str, arguments) -> concurrent.futures.Future:
        """Future[McpOutput]; a server that is off in this chat is not called."""
        if self.decide(conversation_id, function) == "off":
            server = self.manager.server_of(function) or function.split(SEPARATOR, 1)[0]
            f = concurrent.futures.Future()
            f.set_result(McpOutput.failed(f'The MCP server "{server}" is off in this chat; continue without it.'))
            return f
        return self.manager.call(function, arguments if isinstance(arguments, dict) else {})

    def images_folder(self, conversation_id: int) -> Path:
        return self.path.parent / "mcp-images" / str(conversation_id)

    def save_images(self, conversation_id: int, output: McpOutput) -> list[str]:
        """The call's images, saved under the chat's folder for the transcript (paths)."""
        try:
            return save_images(output, self.images_folder(conversation_id))
        except OSError as e:
            log.warning("MCP images not saved: %s", e)
            return []

    def shutdown(self) -> None:
        self.manager.shutdown()
