"""Turns a run's Jupyter messages into the one text the model reads back, within the output cap."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass
class ToolOutput:
    """What one call of the Python tool gave back.

    text:      the tool message for the model (output, errors, and notes about limits hit)
    images:    PNG files the code saved in its folder or displayed (saved there too), for the UI
    error:     one sentence for the user when something went wrong (an exception, a limit, a
               restart); None when the code ran cleanly
    restarted: the kernel was restarted, so variables from earlier calls are gone
    """

    text: str
    images: list[Path] = field(default_factory=list)
    error: str | None = None
    restarted: bool = False


class CappedText:
    """Keeps the head and the tail of a stream of text, counting what falls in between, so that
    100 MB of prints costs a few kB of memory and the model still sees how the run ended."""

    def __init__(self, limit: int):
        self.head_limit = limit * 4 // 5
        self.tail_limit = limit - self.head_limit
        self.head: list[str] = []
        self.head_len = 0
        self.tail = ""
        self.total = 0

    def add(self, text: str) -> None:
        self.total += len(text)
        room = self.head_limit - self.head_len
        if room > 0:
            self.head.append(text[:room])
            self.head_len += min(room, len(text))
            text = text[room:]
        if text:
            self.tail = (self.tail + text)[-self.tail_limit:] if self.tail_limit else ""

    def value(self) -> str:
        head = "".join(self.head)
        kept = len(head) + len(self.tail)
        if kept >= self.total:
            return head + self.tail
        return (f"{head}\n[... output truncated: {self.total:,} characters in all, showing the first "
                f"{len(head):,} and the last {len(self.tail):,} ...]\n{self.tail}")


class RunCollector:
    """Collects the iopub messages of one execute request, in order."""

    def __init__(self, limit: int, workdir: Path, image_folder: str):
        self.text = CappedText(limit)
        self.workdir = workdir
        self.image_dir = workdir / image_folder
        self.displayed: list[Path] = []
        self.exception: str | None = None  # "ValueError: bad value"

    def message(self, msg: dict) -> None:
        kind = msg["header"]["msg_type"]
        content = msg["content"]
        if kind == "stream":
            self.text.add(content.get("text", ""))
        elif kind in ("execute_result", "display_data"):
            self._data(content.get("data", {}))
        elif kind == "error":
            self.exception = f"{content.get('ename', 'Error')}: {content.get('evalue', '')}".rstrip(": ")
            self.text.add(_ANSI.sub("", "\n".join(content.get("traceback", []))) + "\n")

    def _data(self, data: dict) -> None:
        png = data.get("image/png")
        if png:
            # The model can't see pictures: it gets the file's name, the user sees the image.
            self.image_dir.mkdir(parents=True, exist_ok=True)
            path = _free_name(self.image_dir)
            path.write_bytes(base64.b64decode(png))
            self.displayed.append(path)
            self.text.add(f"[image displayed, saved as {path.relative_to(self.workdir)}]\n")
        elif "text/plain" in data:
            self.text.add(_ANSI.sub("", data["text/plain"]) + "\n")

    def value(self) -> str:
        return self.text.value()


def _free_name(folder: Path) -> Path:
    """image-N.png with the first unused N: names stay unique across restarts of the app."""
    n = len(list(folder.glob("image-*.png"))) + 1
    while (folder / f"image-{n}.png").exists():
        n += 1
    return folder / f"image-{n}.png"
