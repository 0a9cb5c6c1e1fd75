"""The `browser` namespace as gpt-oss was trained on it (openai-harmony's ToolNamespaceConfig.browser()).

The description and the three functions are harmony's, word for word; only the description's last
line, `sources=...`, names what this browser reads (harmony's default says `sources=web (default:
web)`; the namespace description is free text in harmony, and this line is where the reference
implementation puts its backend's `source`). Rendering goes through engine.tools.tools_section, so
the system message is token-identical to openai-harmony's (tests/test_browser_render.py).
"""

from __future__ import annotations

import re

from engine.tools import Tool

BROWSER = "browser"

DESCRIPTION_HEAD = (
    "Tool for browsing.\n"
    "The `cursor` appears in brackets before each browsing display: `[{cursor}]`.\n"
    "Cite information from the tool using the following format:\n"
    "`【{cursor}†L{line_start}(-L{line_end})?】`, for example: `【6†L9-L11】` or `【8†L3】`.\n"
    "Do not quote more than 10 words directly from the tool output."
)

SEARCH = Tool("search", "Searches for information related to `query` and displays `topn` results.", {
    "type": "object",
    "properties": {"query": {"type": "string"}, "topn": {"type": "number", "default": 10},
                   "source": {"type": "string"}},
    "required": ["query"],
})
OPEN = Tool("open", (
    "Opens the link `id` from the page indicated by `cursor` starting at line number `loc`, showing `num_lines` lines.\n"
    "Valid link ids are displayed with the formatting: `【{id}†.*】`.\n"
    "If `cursor` is not provided, the most recent page is implied.\n"
    "If `id` is a string, it is treated as a fully qualified URL associated with `source`.\n"
    "If `loc` is not provided, the viewport will be positioned at the beginning of the document or centered on "
    "the most relevant passage, if available.\n"
    "Use this function without `id` to scroll to a new location of an opened page."), {
    "type": "object",
    "properties": {"id": {"type": ["number", "string"], "default": -1}, "cursor": {"type": "number", "default": -1},
                   "loc": {"type": "number", "default": -1}, "num_lines": {"type": "number", "default": -1},
                   "view_source": {"type": "boolean", "default": False}, "source": {"type": "string"}},
})
FIND = Tool("find", "Finds exact matches of `pattern` in the current page, or the page given by `cursor`.", {
    "type": "object",
    "properties": {"pattern": {"type": "string"}, "cursor": {"type": "number", "default": -1}},
    "required": ["pattern"],
})
FUNCTIONS = (SEARCH, OPEN, FIND)


def sources_line(sources: list[str]) -> str:
    """`sources=library, wikipedia_en (default: library)`: the names the model may pass as `source`."""
    names = [re.sub(r"[^A-Za-z0-9_.-]+", "_", s) for s in sources if s] or ["library"]  # one line, no markup
    return f"sources={', '.join(names)} (default: {names[0]})"


def description(sources: list[str]) -> str:
    """The namespace description: harmony's text with our sources line."""
    return f"{DESCRIPTION_HEAD}\n{sources_line(sources)}"


def namespace(sources: list[str]) -> tuple[str, str, list[Tool]]:
    """(name, description, functions) for engine.tools.tools_section."""
    return BROWSER, description(sources), list(FUNCTIONS)


def bounded_parameters(function: str, max_chars: int = 200) -> dict | None:
    """A function's parameters as the reference types them (numbers are whole: ints), every string
    at most max_chars long: the schema constrained decoding holds a forced (or constrained) browser
    call to, so that a weak model's call ends and is valid."""
    tool = next((t for t in FUNCTIONS if t.name == function), None)
    if tool is None:
        return None

    def bounded(v: dict) -> dict:
        kinds = v["type"] if isinstance(v["type"], list) else [v["type"]]
        kinds = ["integer" if k == "number" else k for k in kinds]
        out = {**v, "type": kinds if len(kinds) > 1 else kinds[0]}
        return {**out, "maxLength": max_chars} if "string" in kinds else out

    # `source` is left out: the schema can't know the chat's source names, and a free string there
    # is a call that fails; without it a call searches every source.
    props = {k: bounded(v) for k, v in tool.parameters["properties"].items() if k != "source"}
    return {**tool.parameters, "properties": props, "additionalProperties": False}
