"""The one line of a browser call's block: what was searched, opened or found."""
from __future__ import annotations

import json

from app.tool_steps import CallStep


def browser_header(step: CallStep) -> str:
    try:
        args = json.loads(step.arguments or "{}")
    except json.JSONDecodeError:
        args = {}
    args = args if isinstance(args, dict) else {}
    action = step.recipient.split(".", 1)[-1]
    if action == "search":
        what = f"Searching for “{str(args.get('query', ''))[:80]}”"
    elif action == "find":
        what = f"Finding “{str(args.get('pattern', ''))[:80]}” in a page"
    else:
        what = "Opening " + _opened(step, args)
    if step.status in ("writing", "pending", "running"):
        return what + "…"
    if step.status == "invalid" or step.error:
        return f"Browser call could not be used ({action})"
    if step.status == "stopped":
        return what + " (stopped)"
    past = {"Searching": "Searched", "Finding": "Found", "Opening": "Opened"}
    verb, rest = what.split(" ", 1)
    return f"{past[verb]} {rest}"


def _opened(step: CallStep, args: dict) -> str:
    """The page's title once it is shown, else what was asked for."""
    first = (step.result or "").split("\n", 1)[0]
    if first.startswith("[") and "] " in first:
        title = first.split("] ", 1)[1]
        return title.rsplit(" (", 1)[0][:80] if " (" in title else title[:80]
    if isinstance(args.get("id"), str):
        return args["id"][:80]
    return f"link {args.get('id', -1)}" if args.get("id", -1) != -1 else "more of the page"
