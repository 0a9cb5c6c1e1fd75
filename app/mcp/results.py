"""A tool's answer (MCP CallToolResult) -> the text the model reads, and images the user sees.

Server output is untrusted: text is cleaned of control characters and cut to a size the context
can take (LM Studio's users lost whole chats to one huge tool result); images are checked by
their bytes, saved for the chat to show, and described to the model in one line (gpt-oss reads
no images). A control token can't come from here: harmony encodes tool text as ordinary text.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

MAX_IMAGE_BYTES = 16 * 1024 * 1024
MAX_IMAGES = 8
IMAGE_KINDS = {b"\x89PNG\r\n\x1a\n": ".png", b"\xff\xd8\xff": ".jpg", b"GIF87a": ".gif", b"GIF89a": ".gif"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass
class McpOutput:
    """What a call gave: `text` for the model (already capped), `images` (bytes, suffix) for the
    user, `error` one sentence for the chat when the call failed (the model reads `text`)."""

    text: str
    images: list[tuple[bytes, str]] = field(default_factory=list)
    error: str | None = None

    @classmethod
    def failed(cls, sentence: str) -> "McpOutput":
        return cls(text=f"Error: {sentence}", error=sentence)


def max_chars(context_length: int) -> int:
    """At most about a quarter of the context for one result (a token is ~4 characters)."""
    return max(2000, min(int(context_length), 64_000))


def output_of(result, limit: int = 8192) -> McpOutput:
    """A CallToolResult (or anything a broken server sent) as McpOutput."""
    content = getattr(result, "content", None)
    if not isinstance(content, list):
        return McpOutput.failed("The tool's answer was not a valid MCP result.")
    parts, images = [], []
    for block in content:
        kind = getattr(block, "type", None)
        if kind == "text":
            parts.append(str(getattr(block, "text", "")))
        elif kind == "image":
            image, note = _image(block, len(images))
            if image is not None:
                images.append(image)
            parts.append(note)
        elif kind == "audio":
            parts.append(f"[{_mime(block)} audio, not played]")
        elif kind == "resource_link":
            parts.append(f"[resource {getattr(block, 'name', '')}: {getattr(block, 'uri', '')}]")
        elif kind == "resource":
            res = getattr(block, "resource", None)
            text = getattr(res, "text", None)
            parts.append(text if isinstance(text, str) else f"[binary resource {getattr(res, 'uri', '')}]")
    structured = getattr(result, "structured_content", None)
    if structured is not None and not any(p.strip() for p in parts):
        parts.append(json.dumps(structured, ensure_ascii=False))
    text = clean("\n".join(p for p in parts if p), limit)
    if getattr(result, "is_error", False):
        sentence = first_sentence(text) or "The tool reported an error without saying why."
        return McpOutput(text=f"Error: {text or sentence}", images=images, error=sentence)
    return McpOutput(text=text or "(the tool returned nothing)", images=images)


def clean(text: str, limit: int) -> str:
    """Printable text, at most `limit` characters, saying what was cut."""
    text = _CONTROL.sub("", text.encode("utf-8", "replace").decode("utf-8"))
    if len(text) <= limit:
        return text
    note = f"\n[… {len(text) - limit:,} more characters cut: the result was too long for the context; ask for less.]"
    return text[:max(0, limit - len(note))] + note


def first_sentence(text: str, limit: int = 200) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[:limit - 1] + "…"


def _mime(block) -> str:
    mime = getattr(block, "mime_type", "")
    return mime if isinstance(mime, str) and re.fullmatch(r"[\w.+-]+/[\w.+-]+", mime) else "unknown"


def _image(block, count: int) -> tuple[tuple[bytes, str] | None, str]:
    try:
        data = base64.b64decode(getattr(block, "data", "") or "", validate=True)
    except (binascii.Error, ValueError):
        return None, "[an image that could not be decoded]"
    suffix = next((s for magic, s in IMAGE_KINDS.items() if data.startswith(magic)), None)
    if suffix is None or len(data) > MAX_IMAGE_BYTES:
        return None, f"[an image ({_mime(block)}) that could not be shown]"
    if count >= MAX_IMAGES:
        return None, "[another image, not shown: too many images]"
    return (data, suffix), f"[image {count + 1}: {suffix[1:].upper()}, {max(1, len(data) // 1024)} KB, shown to the user]"


def save_images(output: McpOutput, folder: Path) -> list[str]:
    """Write the output's images into `folder` (named by their content) and return their paths."""
    paths = []
    for data, suffix in output.images:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (hashlib.sha256(data).hexdigest()[:16] + suffix)
        if not path.exists():
            path.write_bytes(data)
        paths.append(str(path))
    return paths
