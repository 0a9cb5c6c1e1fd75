"""The engine with the shipped demo model, made to call an MCP tool (tool_choice forces the call;
its arguments are constrained by the server's schema, as the model writes them itself), the call
routed to the real test server over stdio off the model's thread, and its result read back with
the cache carrying on from the call."""
from __future__ import annotations

import json

import pytest
from mcp_fixtures import stdio_entry

mx = pytest.importorskip("mlx.core")

from engine.events import Done, TextDelta  # noqa: E402
from engine.tools import ToolCall, ToolChoice, tool_result_message  # noqa: E402
from models.registry import demo_folder  # noqa: E402

pytestmark = pytest.mark.skipif(not (demo_folder() / "config.json").is_file(), reason="models/demo not exported")


def test_demo_model_calls_an_mcp_tool_and_reads_its_result(manager_for):
    from engine.front_door import open_chat
    m = manager_for({"notes": stdio_entry()})
    listing = m.list_tools(["notes"]).result(60)
    tools = [t.engine_tool() for t in listing.tools]
    session = open_chat(demo_folder(), context_length=4096)
    messages = [{"role": "user", "content": "What is 19 plus 23? Use the add tool."}]

    events = list(session.reply(messages, effort="low", tools=tools, max_tokens=256,
                                tool_choice=ToolChoice("function", "notes__add")))
    (call,) = [e for e in events if isinstance(e, ToolCall)]
    assert call.recipient == "functions.notes__add" and call.error is None
    assert set(call.parsed) == {"a", "b"} and all(isinstance(v, int) for v in call.parsed.values())

    out = m.call(call.name, call.parsed).result(60)      # runs on the manager's thread, not this one
    assert out.error is None and out.text == str(call.parsed["a"] + call.parsed["b"])   # the server added them

    thought = "".join(e.text for e in events if isinstance(e, TextDelta) and e.channel == "analysis")
    messages += [{"role": "assistant", "channel": "analysis", "content": thought}, call.message,
                 tool_result_message(call, out.text)]
    again = list(session.reply(messages, effort="low", tools=tools, max_tokens=128))
    done = [e for e in again if isinstance(e, Done)][-1]
    # only the tool's message (and the next header) was read: everything before came from the cache
    assert done.prompt_tokens - done.reused_tokens < 40, (done.prompt_tokens, done.reused_tokens)
    assert json.loads(call.arguments) == call.parsed
