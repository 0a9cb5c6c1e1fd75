"""The user's MCP servers: `mcp.json` in the app's data folder, in LM Studio's and Claude Desktop's shape.

    {"mcpServers": {
        "files":  {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "~/Notes"],
                   "env": {"SOME_TOKEN": "..."}},
        "issues": {"url": "https://example.com/mcp", "headers": {"Authorization": "Bearer ..."}}}}

A server with "command" is started as a subprocess and spoken to over stdio; one with "url" over
streamable HTTP. Optional keys: "cwd", "timeout" (seconds a call may take; LM Studio users asked
for it), "disabled". Keys we don't know are kept when the file is saved again, so a file shared
with another app keeps what that app wrote. Each problem is one sentence; good servers still load.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from app.paths import app_data_dir

FILE_NAME = "mcp.json"
DEFAULT_CALL_TIMEOUT = 120.0   # seconds, as the python tool's timeout
MAX_CALL_TIMEOUT = 3600.0


@dataclass(frozen=True)
class ServerConfig:
    """One MCP server as the user configured it (stdio when `command` is set, else HTTP)."""

    name: str
    command: str = ""
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()      # kept as pairs so the config stays hashable
    cwd: str = ""
    url: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float = DEFAULT_CALL_TIMEOUT
    disabled: bool = False
    raw: dict = field(default_factory=dict, compare=False, hash=False, repr=False)  # as written, for saving

    @property
    def transport(self) -> str:
        return "stdio" if self.command else "http"

    def secrets(self) -> list[str]:
        """Values never to show or log: env and header values, and a URL's password or query."""
        out = [v for _, v in self.env] + [v for _, v in self.headers]
        if self.url:
            parts = urlsplit(self.url)
            out += [p for p in (parts.password, parts.query) if p]
        return [s for s in out if len(s) >= 4]

    def summary(self) -> str:
        """What the Settings list shows: the command or URL, with secret values hidden."""
        from app.mcp.redact import Redactor
        if self.command:
            text = " ".join([self.command, *self.args])
            if self.env:
                text += "  (" + ", ".join(f"{k}=•••" for k, _ in self.env) + ")"
        else:
            text = self.url
        return Redactor([self]).redact(text)


def config_path() -> Path:
    return app_data_dir() / FILE_NAME


def parse_config(text: str, source: str = FILE_NAME) -> tuple[dict[str, ServerConfig], list[str]]:
    """mcp.json text -> ({name: server}, [one sentence per problem]). Never raises."""
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as e:
        return {}, [f"{source} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})."]
    if not isinstance(data, dict):
        return {}, [f'{source} must be a JSON object like {{"mcpServers": {{...}}}}.']
    entries = data.get("mcpServers", data.get("servers", {}))   # "servers": VS Code's spelling
    if not isinstance(entries, dict):
        return {}, [f'"mcpServers" in {source} must be an object of servers by name.']
    servers, problems = {}, []
    for name, entry in entries.items():
        server, problem = parse_server(name, entry)
        if problem:
            problems.append(problem)
        else:
            servers[name] = server
    return servers, problems


def parse_server(name: str, entry) -> tuple[ServerConfig | None, str]:
    """One entry of "mcpServers" -> (server, "") or (None, one sentence)."""
    label = f'MCP server "{name}"'
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        return None, f"An MCP server needs a name of 1 to 64 characters, not {name!r}."
    if not isinstance(entry, dict):
        return None, f'{label} must be an object with a "command" or a "url".'
    command, url = entry.get("command"), entry.get("url") or entry.get("serverUrl")
    kind = entry.get("type") or entry.get("transport")
    if kind == "sse":
        return None, (f'{label} uses the old SSE transport, which this app does not speak; use the server\'s '
                      'streamable HTTP address (often ending in /mcp).')
    if command and url:
        return None, f'{label} has both a "command" and a "url"; keep the one you mean.'
    if not command and not url:
        return None, f'{label} needs a "command" (a program to start) or a "url" (a streamable HTTP server).'
    fields: dict = {"name": name, "raw": dict(entry)}
    if command:
        if not isinstance(command, str) or not command.strip():
            return None, f'{label}: "command" must be the program to run, like "npx" or "uvx".'
        args = entry.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            return None, f'{label}: "args" must be a list of strings, like ["-y", "some-server"].'
        env, problem = _string_map(entry.get("env", {}), f'{label}: "env"')
        if problem:
            return None, problem
        cwd = entry.get("cwd", "")
        if not isinstance(cwd, str):
            return None, f'{label}: "cwd" must be a folder path.'
        fields.update(command=command.strip(), args=tuple(args), env=env, cwd=cwd)
    else:
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            return None, f'{label}: "url" must be an http:// or https:// address.'
        headers, problem = _string_map(entry.get("headers", {}), f'{label}: "headers"')
        if problem:
            return None, problem
        fields.update(url=url, headers=headers)
    timeout = entry.get("timeout", DEFAULT_CALL_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_CALL_TIMEOUT:
        return None, f'{label}: "timeout" must be a number of seconds between 1 and {MAX_CALL_TIMEOUT:.0f}.'
    fields["timeout"] = float(timeout)
    fields["disabled"] = entry.get("disabled") is True
    return ServerConfig(**fields), ""


def _string_map(value, label: str) -> tuple[tuple[tuple[str, str], ...], str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return (), f'{label} must be an object of text values, like {{"API_KEY": "..."}}.'
    return tuple(value.items()), ""


def load_config(path: Path | None = None) -> tuple[dict[str, ServerConfig], list[str]]:
    """The saved servers (none when the file doesn't exist yet)."""
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, []
    except (OSError, UnicodeDecodeError) as e:
        return {}, [f"{path.name} couldn't be read ({getattr(e, 'strerror', None) or e.__class__.__name__})."]
    return parse_config(text, path.name)


def save_config(servers: dict[str, ServerConfig], path: Path | None = None) -> None:
    """Write mcp.json (readable by this user only: it holds secrets); keeps the file's other keys."""
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data = data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        data = {}
    data.pop("servers", None)
    data["mcpServers"] = {name: entry_of(s) for name, s in servers.items()}
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


def entry_of(server: ServerConfig) -> dict:
    """The server as an mcp.json entry: what it was written as, with the fields we know updated."""
    entry = dict(server.raw)
    for key in ("command", "args", "env", "cwd", "url", "serverUrl", "headers", "timeout", "disabled"):
        entry.pop(key, None)
    if server.command:
        entry["command"], entry["args"] = server.command, list(server.args)
        if server.env:
            entry["env"] = dict(server.env)
        if server.cwd:
            entry["cwd"] = server.cwd
    else:
        entry["url"] = server.url
        if server.headers:
            entry["headers"] = dict(server.headers)
    if server.timeout != DEFAULT_CALL_TIMEOUT:
        entry["timeout"] = server.timeout
    if server.disabled:
        entry["disabled"] = True
    return entry


def import_servers(current: dict[str, ServerConfig], text: str, source: str) -> tuple[dict[str, ServerConfig], list[str]]:
    """Merge the servers of another app's file (Claude Desktop's, LM Studio's) into `current`.

    Returns (merged, sentences): what was added, what was already there, what was wrong. A
    different server under a name already used comes in as "name-2"; nothing is overwritten."""
    found, notes = parse_config(text, source)
    merged = dict(current)
    added = []
    for name, server in found.items():
        if name in merged and merged[name] == server:
            notes.append(f'"{name}" is already set up.')
            continue
        new_name, n = name, 2
        while new_name in merged:
            new_name, n = f"{name}-{n}", n + 1
        merged[new_name] = replace(server, name=new_name)
        added.append(new_name)
    if added:
        notes.insert(0, f"Imported {len(added)} server{'s' if len(added) != 1 else ''}: {', '.join(added)}.")
    elif not found and not notes:
        notes.append(f"{source} lists no MCP servers.")
    return merged, notes
