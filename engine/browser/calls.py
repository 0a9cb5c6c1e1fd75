"""The browser's calls, parsed and validated: typed arguments as the reference defines them.

    parsed, error = check_browser_call("browser.open", '{"id": 3, "cursor": 1}')
    # parsed == OpenArgs(id=3, cursor=1, loc=-1, num_lines=-1, view_source=False, source=None)

What the model writes is untrusted: a bad call becomes one sentence that goes back to the model as
the tool's answer (so it can try again), never an exception. Numbers may be written as 3 or 3.0
(the schema says `number`), not as 2.5 or "3".
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from engine.browser.spec import BROWSER

MAX_QUERY_CHARS = 500
MAX_TOPN = 50


@dataclass(frozen=True)
class SearchArgs:
    query: str
    topn: int = 10
    top_n: int = 10  # the reference's search() takes this spelling too
    source: str | None = None


@dataclass(frozen=True)
class OpenArgs:
    id: int | str = -1
    cursor: int = -1
    loc: int = -1
    num_lines: int = -1
    view_source: bool = False
    source: str | None = None


@dataclass(frozen=True)
class FindArgs:
    pattern: str
    cursor: int = -1


KINDS = {"search": SearchArgs, "open": OpenArgs, "find": FindArgs}
_TYPES = {  # argument -> (what it must be, check)
    "query": ("a string", lambda v: isinstance(v, str)),
    "pattern": ("a string", lambda v: isinstance(v, str)),
    "source": ("a string", lambda v: isinstance(v, str) or v is None),
    "topn": ("a whole number", lambda v: _whole(v)),
    "top_n": ("a whole number", lambda v: _whole(v)),
    "cursor": ("a whole number", lambda v: _whole(v)),
    "loc": ("a whole number", lambda v: _whole(v)),
    "num_lines": ("a whole number", lambda v: _whole(v)),
    "view_source": ("true or false", lambda v: isinstance(v, bool)),
    "id": ("a link number or a URL string", lambda v: _whole(v) or isinstance(v, str)),
}


def _whole(v) -> bool:
    return not isinstance(v, bool) and (isinstance(v, int) or (isinstance(v, float) and v.is_integer()))


def check_browser_call(recipient: str, arguments: str):
    """(SearchArgs | OpenArgs | FindArgs, None) or (None, one sentence saying what is wrong)."""
    name = recipient[len(BROWSER) + 1:] if recipient.startswith(BROWSER + ".") else ""
    kind = KINDS.get(name)
    if kind is None:
        return None, f"There is no function {recipient!r}; the browser has search, open and find."
    text = arguments.strip()
    try:
        value = json.loads(text) if text else {}
    except json.JSONDecodeError as e:
        return None, f"The arguments are not valid JSON ({e.msg} at character {e.pos}); send a JSON object."
    if not isinstance(value, dict):
        return None, f"The arguments of browser.{name} must be a JSON object."
    fields = kind.__dataclass_fields__
    for key, v in value.items():
        if key not in fields:
            return None, f"browser.{name} has no argument {key!r}; it takes {', '.join(fields)}."
        what, ok = _TYPES[key]
        if not ok(v):
            return None, f"The argument {key!r} of browser.{name} must be {what}, not {json.dumps(v)[:40]}."
    missing = [k for k, f in fields.items() if f.default is dataclasses.MISSING and k not in value]
    if missing:
        return None, f"browser.{name} needs {' and '.join(repr(k) for k in missing)}."
    args = {k: int(v) if _whole(v) and k != "view_source" else v for k, v in value.items()}
    if name == "search":
        if not args["query"].strip():
            return None, "The search query is empty; say what to look for."
        args["query"] = args["query"][:MAX_QUERY_CHARS]
        args["topn"] = max(1, min(args.get("topn", args.get("top_n", 10)), MAX_TOPN))
    if name == "find" and not args["pattern"].strip():
        return None, "The find pattern is empty; say what text to look for."
    return kind(**args), None
