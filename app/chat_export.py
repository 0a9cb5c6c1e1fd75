"""A chat as a file: Markdown to read or share (reasoning optional), JSON with everything (messages,
reasoning, tool calls and their outputs, the images code saved, inline) that imports back whole.
"messages" is the branch shown; "branches" the chat's other alternatives and branches (app/branches.py).

No Qt here. A file to import is untrusted: its shape is checked, and a bad one gets one sentence.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path

from app.branches import Branches
from app.store import ChatStore, StoredMessage

FORMAT = "gpt-oss-chat/1"
MAX_IMPORT_BYTES = 64 * 1024 * 1024
ROLES = ("user", "assistant")
STATES = ("done", "stopped", "error", "interrupted")


class ChatFileError(Exception):
    """The file can't be imported; str() is one sentence with a way forward."""


def chat_markdown(store: ChatStore, conversation_id: int, reasoning: bool = False) -> str:
    conv = store.conversation(conversation_id)
    out = [f"# {conv.title}", ""]
    for m in store.messages(conversation_id):
        if m.role == "user":
            out += ["**You:**", "", m.text, ""]
            continue
        out += [f"**gpt-oss** ({m.effort or 'medium'} effort):", ""]
        if reasoning and m.analysis.strip():
            out += ["> Reasoning (unfiltered model output):", ">"]
            out += [f"> {line}" if line else ">" for line in m.analysis.splitlines()] + [""]
        out += [m.text or "*(no answer)*", ""]
    if Branches(store).counts(conversation_id):
        out += ["---", "", "*This is the branch shown in the app; the chat's other answers and branches are in its "
                           "JSON export.*", ""]
    return "\n".join(out).rstrip() + "\n"


def _image_entry(path: str) -> dict | None:
    p = Path(path)
    try:
        return {"name": p.name, "png_base64": base64.b64encode(p.read_bytes()).decode()}
    except OSError:
        return None            # the file is gone: the step keeps its text


def chat_json(store: ChatStore, conversation_id: int) -> dict:
    conv = store.conversation(conversation_id)
    steps = store.tool_steps(conversation_id)
    messages = []
    for m in store.messages(conversation_id):
        entry = {"role": m.role, "text": m.text, "analysis": m.analysis, "effort": m.effort, "state": m.state,
                 "thought_seconds": m.thought_seconds, "stats": m.stats}
        if m.id in steps:
            entry["tool_steps"] = [dict(s, images=[i for i in map(_image_entry, s.get("images") or []) if i])
                                   for s in steps[m.id]]
        messages.append(entry)
    from app.chat_options import ChatOptionsStore   # the chat's own instructions and sampling go with it
    out = {"format": FORMAT, "title": conv.title, "effort": conv.effort,
           "options": ChatOptionsStore(store).get(conversation_id).to_json(), "messages": messages}
    forks = Branches(store).export(conversation_id)
    if forks:   # the other branches, as the history keeps them, their images inline too
        out["branches"] = _each_step(forks, lambda s: dict(s, images=[
            i for i in map(_image_entry, [p for p in s.get("images") or [] if isinstance(p, str)]) if i]))
    return out


def _check(data) -> None:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ChatFileError("This file is not a chat exported by gpt-oss chat (its format is not "
                            f"“{FORMAT}”); export the chat again as JSON.")
    msgs = data.get("messages")
    if not isinstance(data.get("title"), str) or not isinstance(msgs, list):
        raise ChatFileError("This chat file has no title or no message list; export the chat again as JSON.")
    for i, m in enumerate(msgs, 1):
        if not (isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("text"), str)
                and isinstance(m.get("analysis", ""), str) and isinstance(m.get("stats", {}), dict)
                and isinstance(m.get("tool_steps", []), list)):
            raise ChatFileError(f"Message {i} of this chat file is damaged; export the chat again as JSON.")


def import_chat(store: ChatStore, path: str | Path, images_dir: Path) -> int:
    """Add the chat in `path` (JSON from chat_json) to the history; returns its id. Images go to
    `images_dir`/<id>/ (names reduced to their last part: a file can't write elsewhere)."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_IMPORT_BYTES:
            raise ChatFileError(f"This file is larger than {MAX_IMPORT_BYTES >> 20} MB, too large for one chat.")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ChatFileError(f"The file could not be read ({e.__class__.__name__}); check it and try again.") from e
    except json.JSONDecodeError as e:
        raise ChatFileError(f"This file is not valid JSON (line {e.lineno}); export the chat again as JSON.") from e
    _check(data)
    effort = data.get("effort") if data.get("effort") in ("low", "medium", "high") else "medium"
    conv = store.create_conversation(" ".join(data["title"].split())[:200] or "Imported chat", effort)
    from app.chat_options import ChatOptions, ChatOptionsStore   # each field checked; a bad one is dropped
    ChatOptionsStore(store).set(conv.id, ChatOptions.from_json(data.get("options")))
    folder = images_dir / str(conv.id)
    for m in data["messages"]:
        state = m.get("state") if m.get("state") in STATES else "done"
        seconds = m.get("thought_seconds")
        saved = store.add_message(conv.id, StoredMessage(
            m["role"], m["text"], m.get("analysis", ""), m.get("effort") if isinstance(m.get("effort"), str) else None,
            state, float(seconds) if isinstance(seconds, (int, float)) else None, m.get("stats", {})))
        steps = [s for s in m.get("tool_steps", []) if isinstance(s, dict)]
        if steps and m["role"] == "assistant":
            store.set_tool_steps(saved.id, [dict(s, images=_write_images(s.get("images"), folder)) for s in steps])
    forks = _each_step(data.get("branches"), lambda s: dict(s, images=_write_images(s.get("images"), folder)))
    Branches(store).restore(conv.id, forks)   # malformed ones are left out, the chat imports
    return conv.id


def _each_step(forks, change):
    """`forks` (Branches.export's shape) with `change` applied to every tool step in every tail;
    anything malformed is passed on as it is (Branches.restore leaves it out)."""
    def tail(t):
        if not isinstance(t, dict):
            return t
        msgs = [dict(m, tool_steps=[change(s) if isinstance(s, dict) else s for s in m["tool_steps"]])
                if isinstance(m, dict) and isinstance(m.get("tool_steps"), list) else m
                for m in t.get("messages") or []] if isinstance(t.get("messages"), list) else t.get("messages")
        inner = ([dict(b, tail=tail(b.get("tail"))) if isinstance(b, dict) else b for b in t["branches"]]
                 if isinstance(t.get("branches"), list) else t.get("branches"))
        return dict(t, messages=msgs, branches=inner if inner is not None else [])
    if not isinstance(forks, list):
        return forks
    return [dict(f, alternatives=[tail(a) for a in f["alternatives"]])
            if isinstance(f, dict) and isinstance(f.get("alternatives"), list) else f for f in forks]


def _write_images(images, folder: Path) -> list[str]:
    paths = []
    for img in images if isinstance(images, list) else []:
        if not isinstance(img, dict) or not isinstance(img.get("png_base64"), str):
            continue
        name = Path(str(img.get("name") or "image.png")).name or "image.png"
        try:
            data = base64.b64decode(img["png_base64"], validate=True)
        except ValueError:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        target.write_bytes(data)
        paths.append(str(target))
    return paths
