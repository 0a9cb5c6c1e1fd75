"""What the next answer in a chat asks of the model: its history and the options of its requests.

No Qt here. The options are the engine call's arguments for every request of the turn (the
first, and one after each tool result): the effort, the chat's own instructions and sampling
(app/chat_options.py, the app-wide Settings where it has none), the answer length, the Python
switch, the browser over the chat's sources when they are on, and the user's functions and answer
format. The demo model learnt no functions, so it is offered none (nor MCP tools); it is offered the
answer format once its weights have learnt to fill one (DEMO_FILLS_ANSWER_FORMATS).
"""
from __future__ import annotations

from dataclasses import dataclass

from app.chat_options import ChatOptionsStore
from app.conversation import ChatMessage
from app.settings import Settings
from app.turn import engine_history
from app.user_functions import answer_format, engine_tools

# The shipped demo weights (v2) never saw an answer format: held to one by the grammar they write
# junk inside a string until the answer length runs out. Issue 27's third version learns formats;
# turn this on when models/demo holds weights that pass tests/app/test_demo_json_e2e.py.
DEMO_FILLS_ANSWER_FORMATS = False


@dataclass
class TurnRequest:
    history: list[dict]   # the conversation for the engine (app.turn.engine_history)
    options: dict         # the engine call's options, for each request of the turn
    with_mcp: bool        # the chat's MCP tools are offered too: listed (servers started) before the first request


def build(conv: int, effort: str, rows: list[ChatMessage], settings: Settings, chat_options: ChatOptionsStore,
          library, mcp, demo: bool) -> TurnRequest:
    """The request of chat `conv`'s next answer, after the messages `rows` (the branch shown).
    `library` (app/library_sources.py) is told the chat's history when its sources are on, so its
    earlier browser calls can be run again before the next one."""
    s = settings
    options = {"effort": effort, **chat_options.for_turn(conv, s),
               "max_tokens": s.max_tokens, "python": s.python_tool}
    names = library.names_for(str(conv))
    if names and library.on_for(conv):   # the chat's sources are on
        library.prepare(str(conv), engine_history(rows))
        options["browser"] = names
    if not demo or DEMO_FILLS_ANSWER_FORMATS:
        options["answer_format"] = answer_format(s.answer_schema)
    if not demo:   # the demo model learnt no functions: that section would be new to it
        options["tools"] = engine_tools(s.functions)
    return TurnRequest(engine_history(rows), options, not demo and mcp.chat(conv).on)
