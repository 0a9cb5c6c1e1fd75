"""MCP calls in a turn's tool steps (app/tool_steps.py): what marks a call as an MCP tool's, what
its block says, and how its result is recorded. No Qt.

A call step (app.tool_steps.CallStep) to `functions.SERVER__TOOL` gets `mcp = {"server": ...,
"tool": ...}` when the function is one of the chat's MCP tools, so the transcript can say which
server it went to and ask Run / Always for this tool in this chat / Don't run, as for Python code.
"""
from __future__ import annotations

import json
from pathlib import Path

from app.mcp.results import IMAGE_KINDS, McpOutput

DECLINED = "The user chose not to run this tool. Continue without it, or ask the user."
MAX_IMAGE_BYTES = 16 * 1024 * 1024


def mark(step, server: str, tool: str) -> None:
    step.mcp = {"server": server, "tool": tool}


def names(step) -> tuple[str, str]:
    info = step.mcp or {}
    return str(info.get("server", "")), str(info.get("tool", ""))


def header(step) -> str:
    """The block's one line for an MCP call."""
    server, tool = names(step)
    return {"writing": f"Calling {tool} ({server})…", "pending": f"{tool} ({server})",
            "waiting": f"Run {tool} from {server}?", "running": f"Running {tool} ({server})…",
            "declined": f"{tool} not run (you declined)", "off": f"{tool} not run ({server} is off in this chat)",
            "stopped": f"{tool} ({server}) stopped", "invalid": f"Call to {tool} could not be used",
            }.get(step.status, f"Ran {tool} ({server})" + (" · error" if step.problem else ""))


def consent_text(step) -> str:
    server, tool = names(step)
    return (f'The model wants to run the tool "{tool}" of the MCP server "{server}" with these arguments. '
            "The server is a program or service you added; it acts with your permissions.")


def off_text(server: str) -> str:
    return f'The MCP server "{server}" is off in this chat; continue without it, or ask the user to turn it on.'


def arguments_of(step) -> dict:
    """The call's arguments as a JSON object (the engine parsed and checked them; {} if not an object)."""
    parsed = getattr(step.call, "parsed", None) if step.call is not None else None
    if parsed is None:
        try:
            parsed = json.loads(step.arguments or "{}")
        except ValueError:
            parsed = {}
    return parsed if isinstance(parsed, dict) else {}


def tool_output(output: McpOutput, images: list[str], folder: str) -> dict:
    """The call's result in the shape the tools thread reports Python's (Turn.on_tool_finished):
    the text the model reads, the images the user sees, the sentence for the chat when it failed."""
    return {"text": output.text, "images": list(images), "error": output.error, "folder": folder}


def read_image(path: str, folder: str) -> bytes | None:
    """An image the app saved for an MCP result, read only from its folder and only if it is still
    a PNG, JPEG or GIF (the same care as for the Python tool's images)."""
    try:
        real, base = Path(path).resolve(), Path(folder).resolve()
        if base not in real.parents or Path(path).is_symlink() or real.stat().st_size > MAX_IMAGE_BYTES:
            return None
        data = real.read_bytes()
    except OSError:
        return None
    return data if any(data.startswith(magic) for magic in IMAGE_KINDS) else None
