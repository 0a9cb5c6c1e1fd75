"""The MCP Settings section offscreen (add, a bad entry kept with one sentence, tick per chat,
import, remove; no secret ever shown) and the service's rules: a server off in a chat is never
called, consent is ask / always-for-this-tool-in-this-chat."""
from __future__ import annotations

import json
import os

import pytest
from mcp_fixtures import stdio_entry

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PySide6")
from PySide6.QtCore import Qt  # noqa: E402

T = 60


@pytest.fixture
def service(tmp_path):
    from app.mcp.service import McpService
    from app.store import ChatStore
    store = ChatStore(tmp_path / "history.sqlite3")
    s = McpService(store, path=tmp_path / "mcp.json")
    yield s
    s.shutdown()
    store.close()


def test_section_add_tick_import_remove(qtbot, service, tmp_path):
    from app.ui.mcp_section import McpSection, McpServerDialog
    section = McpSection(service, conversation_id=1)
    qtbot.addWidget(section)
    assert section.note.text().startswith("No servers yet")

    dialog = McpServerDialog(service, section)
    qtbot.addWidget(dialog)
    dialog.name.setText("notes")
    dialog.entry.setPlainText('{"command": "npx", "args": "-y pkg"}')
    dialog.accept()
    assert not dialog.result() and dialog.error.text() == 'MCP server "notes": "args" must be a list of strings, like ["-y", "some-server"].'
    assert dialog.entry.toPlainText() == '{"command": "npx", "args": "-y pkg"}'       # nothing typed is lost
    entry = stdio_entry(env={"TEST_TOKEN": "visible-NEVER-1"})
    dialog.entry.setPlainText(json.dumps({"mcpServers": {"notes": entry}}))          # a README snippet works too
    dialog.accept()
    assert dialog.result() == 1
    section.refresh()

    item = section.item("notes")
    assert item is not None and item.checkState() == Qt.CheckState.Unchecked
    assert "visible-NEVER-1" not in item.text() + item.toolTip() and "TEST_TOKEN=•••" in item.text()
    assert json.loads((tmp_path / "mcp.json").read_text())["mcpServers"]["notes"]["env"] == {"TEST_TOKEN": "visible-NEVER-1"}
    item.setCheckState(Qt.CheckState.Checked)
    assert service.chat(1).on == ("notes",) and service.chat(2).on == ()
    assert section.status.text() == "Starting notes…"             # the window didn't wait for it
    qtbot.waitUntil(lambda: section.status.text().startswith("notes: 10 tools"), timeout=T * 1000)
    assert section.status.text() == "notes: 10 tools (add, search_notes, slow, fail, picture, crash and 4 more)."

    other = tmp_path / "claude_desktop_config.json"
    other.write_text(json.dumps({"mcpServers": {"notes": entry, "web": {"url": "https://example.com/mcp",
                                                                          "headers": {"Authorization": "Bearer hdr-NEVER-2"}}}}))
    section.import_from(str(other))
    assert section.note.text() == 'Imported 1 server: web. "notes" is already set up.'
    assert "hdr-NEVER-2" not in section.item("web").text()
    bad = tmp_path / "broken.json"
    bad.write_text("{nope")
    section.import_from(str(bad))
    assert section.note.text().startswith("broken.json is not valid JSON (")

    section.list.setCurrentItem(section.item("notes"))
    section.remove_selected()
    assert section.item("notes") is None and "notes" not in service.servers and service.chat(1).on == ()
    assert list(json.loads((tmp_path / "mcp.json").read_text())["mcpServers"]) == ["web"]


def test_off_in_this_chat_is_never_called_and_consent(service):
    assert service.add("notes", stdio_entry()) == ""
    service.set_on(1, "notes", True)
    listing = service.tools_for(1).result(T)
    assert "notes__add" in listing.by_function()
    assert service.tools_for(2).result(T).tools == []                    # off in chat 2: not offered
    assert service.decide(1, "notes__add") == "ask"
    service.allow_always(1, "notes__add")
    assert service.decide(1, "notes__add") == "always" and service.decide(1, "notes__pid") == "ask"
    assert service.call(1, "notes__add", {"a": 1, "b": 2}).result(T).text == "3"

    pid = int(service.call(1, "notes__pid", {}).result(T).text)
    assert service.decide(2, "notes__add") == "off"
    out = service.call(2, "notes__pid", {}).result(T)                  # never reaches the server
    assert out.error == 'The MCP server "notes" is off in this chat; continue without it.'
    assert int(service.call(1, "notes__pid", {}).result(T).text) == pid   # same process, untouched
    service.set_on(1, "notes", False)
    assert service.decide(1, "notes__add") == "off" and service.chat(1).always == ()
    assert service.owns("notes__add") and not service.owns("get_weather")


def test_unwritable_mcp_json_is_one_sentence(tmp_path):
    from app.mcp.service import McpService
    from app.store import ChatStore
    (tmp_path / "mcp.json").mkdir()          # a folder where the file should be: it can't be written
    store = ChatStore(tmp_path / "history.sqlite3")
    s = McpService(store, path=tmp_path / "mcp.json")
    try:
        assert s.problems == ["mcp.json couldn't be read (Is a directory)."]
        problem = s.add("notes", stdio_entry())
        assert problem.startswith("mcp.json couldn't be saved (") and problem.endswith("until the app quits.")
        assert "notes" in s.servers                      # kept for this run
    finally:
        s.shutdown()
        store.close()


def test_a_chat_with_too_many_tools_is_told(service):
    from engine.tokenizer import load_tokenizer
    from engine.tools import tools_section
    from models.tokenizer_json import shared_o200k_harmony_folder
    service.add("notes", stdio_entry())
    service.set_on(1, "notes", True)
    listing = service.tools_for(1).result(T)
    real = len(load_tokenizer(shared_o200k_harmony_folder()).encode_ordinary(
        tools_section([("functions", None, [t.engine_tool() for t in listing.tools])])))
    assert service.context_note(listing, 8192) == ""
    note = service.context_note(listing, 512)
    estimate = int(note.split("about ")[1].split(" of")[0].replace(",", ""))
    assert 0.5 * real <= estimate <= 1.5 * real          # characters / 4 is near the real token count
    assert note.endswith("turn off the servers this chat doesn't need, or raise the context length.")
