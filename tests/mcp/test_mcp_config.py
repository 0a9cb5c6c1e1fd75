"""mcp.json: LM Studio's / Claude Desktop's shape parsed with one sentence per problem, saved with
other apps' keys kept (and readable by the user only), imported without overwriting; per-chat
on/off and "always" data; secrets redacted everywhere the app shows or logs them."""
from __future__ import annotations

import json
import os
import stat

from app.mcp import chats
from app.mcp.config import import_servers, load_config, parse_config, save_config
from app.mcp.redact import Redactor

CLAUDE_DESKTOP = {
    "globalShortcut": "Ctrl+Space",
    "mcpServers": {
        "filesystem": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/Users/me/Notes"]},
        "github": {"command": "docker", "args": ["run", "-i", "--rm", "ghcr.io/github/github-mcp-server"],
                   "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_abcdefSECRET123"}},
        "linear": {"url": "https://mcp.linear.app/mcp", "headers": {"Authorization": "Bearer lin_api_XYZ987"}},
    },
}


def test_claude_desktop_file_parses():
    servers, problems = parse_config(json.dumps(CLAUDE_DESKTOP))
    assert problems == []
    assert servers["filesystem"].transport == "stdio" and servers["filesystem"].args[0] == "-y"
    assert servers["github"].env == (("GITHUB_PERSONAL_ACCESS_TOKEN", "ghp_abcdefSECRET123"),)
    assert servers["linear"].transport == "http" and servers["linear"].headers[0][0] == "Authorization"


def test_each_bad_entry_is_one_sentence_and_the_good_ones_load():
    text = json.dumps({"mcpServers": {
        "ok": {"command": "uvx", "args": ["mcp-server-time"]},
        "neither": {"args": []},
        "both": {"command": "x", "url": "http://h/mcp"},
        "badargs": {"command": "x", "args": "-y pkg"},
        "badenv": {"command": "x", "env": {"PORT": 8080}},
        "badurl": {"url": "ftp://h/mcp"},
        "sse": {"type": "sse", "url": "http://h/sse"},
        "slow": {"command": "x", "timeout": -3},
    }})
    servers, problems = parse_config(text)
    assert list(servers) == ["ok"]
    assert len(problems) == 7
    for p in problems:
        assert p.endswith(".") and "\n" not in p and "Traceback" not in p
    assert any('"neither" needs a "command"' in p for p in problems)
    assert any("old SSE transport" in p for p in problems)


def test_not_json_says_where():
    servers, problems = parse_config('{"mcpServers": {"a": {"command": "x",}}}')
    assert servers == {} and problems[0].startswith("mcp.json is not valid JSON (") and "line 1" in problems[0]
    assert parse_config("[1]")[1] == ['mcp.json must be a JSON object like {"mcpServers": {...}}.']


def test_save_keeps_other_keys_and_is_private(tmp_path):
    path = tmp_path / "mcp.json"
    entry = dict(CLAUDE_DESKTOP)
    entry["mcpServers"] = {**CLAUDE_DESKTOP["mcpServers"],
                           "timed": {"command": "x", "timeout": 600, "alwaysAllow": ["a"]}}
    path.write_text(json.dumps(entry))
    servers, _ = load_config(path)
    assert servers["timed"].timeout == 600.0
    del servers["filesystem"]
    save_config(servers, path)
    data = json.loads(path.read_text())
    assert data["globalShortcut"] == "Ctrl+Space"                 # another app's key kept
    assert "filesystem" not in data["mcpServers"]
    assert data["mcpServers"]["timed"] == {"command": "x", "args": [], "timeout": 600.0, "alwaysAllow": ["a"]}
    assert load_config(path)[0] == servers
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_import_adds_without_overwriting():
    current, _ = parse_config(json.dumps({"mcpServers": {"github": {"command": "github-mcp-server", "args": ["stdio"]}}}))
    merged, notes = import_servers(current, json.dumps(CLAUDE_DESKTOP), "claude_desktop_config.json")
    assert set(merged) == {"github", "filesystem", "github-2", "linear"}
    assert merged["github"] == current["github"]
    assert notes[0] == "Imported 3 servers: filesystem, github-2, linear."
    again, notes = import_servers(merged, json.dumps({"mcpServers": {"linear": CLAUDE_DESKTOP["mcpServers"]["linear"]}}), "x.json")
    assert again == merged and notes == ['"linear" is already set up.']
    assert import_servers({}, "{}", "empty.json")[1] == ["empty.json lists no MCP servers."]


def test_secrets_are_hidden_in_summaries_and_sentences():
    servers, _ = parse_config(json.dumps(CLAUDE_DESKTOP))
    r = Redactor(servers.values())
    shown = " ".join(s.summary() for s in servers.values())
    assert "ghp_abcdefSECRET123" not in shown and "GITHUB_PERSONAL_ACCESS_TOKEN=•••" in shown
    said = r.redact("401: token ghp_abcdefSECRET123 rejected; sent Authorization: Bearer lin_api_XYZ987")
    assert "ghp_abcdefSECRET123" not in said and "lin_api_XYZ987" not in said and "401" in said
    assert Redactor().redact("Authorization: Bearer sk-live-0000") == "Authorization: Bearer •••"
    url, _ = parse_config(json.dumps({"mcpServers": {"u": {"url": "https://user:pa55word@h.example/mcp?key=QWERTY12"}}}))
    assert "pa55word" not in url["u"].summary() and "QWERTY12" not in url["u"].summary()


def test_per_chat_servers_and_always():
    saved = chats.set_server({}, None, "files", True)                 # on for new chats
    assert chats.chat_tools(saved, 7).on == ("files",)
    saved = chats.set_server(saved, 7, "github", True)
    saved = chats.allow_always(saved, 7, "github__list_issues")
    t = chats.chat_tools(saved, 7)
    assert t.on == ("files", "github") and t.always == ("github__list_issues",) and t.allows("github")
    assert chats.chat_tools(saved, 8).on == ("files",) and not chats.chat_tools(saved, 8).allows("github")
    saved = chats.set_server(saved, 7, "github", False)               # off: its "always" goes too
    assert chats.chat_tools(saved, 7) == chats.ChatTools(("files",), ())
    saved = chats.forget_server(saved, "files")
    assert chats.chat_tools(saved, 7).on == () and chats.chat_tools(saved, 9).on == ()
    assert chats.chat_tools({"chats": {"1": {"on": ["gone"]}}}, 1, servers={"files"}).on == ()
    assert chats.chat_tools("garbage", 1) == chats.ChatTools()
    assert len(json.dumps(saved)) < 200                               # small
