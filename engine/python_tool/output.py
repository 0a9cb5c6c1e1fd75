"""Turns a run's Jupyter messages into the one text the model reads back, within the output cap."""

from __future__ import annotations

import base64
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass
class ToolOutput:
    """What one call of the Python tool gave back.

    text:      the tool message for the model (output, errors, and notes about limits hit)
    images:    PNG files the code saved in its folder or displayed (saved there too), for the UI,
               which reads them with read_image() (the code could swap them for symlinks later)
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
            path = _save_image(self.image_dir, base64.b64decode(png))
            if path is None:
                self.text.add("[image displayed; it could not be saved in the working folder]\n")
                return
            self.displayed.append(path)
            self.text.add(f"[image displayed, saved as {path.relative_to(self.workdir)}]\n")
        elif "text/plain" in data:
            self.text.add(_ANSI.sub("", data["text/plain"]) + "\n")

    def value(self) -> str:
        return self.text.value()


def _save_image(folder: Path, data: bytes) -> Path | None:
    """Write data as image-N.png (first free N) in folder, which lies in the code's own folder:
    the code may have put symlinks there, so nothing is followed (O_NOFOLLOW on the folder,
    O_EXCL on the file, which refuses even a dangling symlink). None if it can't be done."""
    try:
        folder.mkdir(exist_ok=True)
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        existing = set(os.listdir(dir_fd))
        n = 1
        while True:
            name = f"image-{n}.png"
            n += 1
            if name in existing:
                continue
            try:
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=dir_fd)
            except FileExistsError:
                continue
            except OSError:
                return None
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            return folder / name
    finally:
        os.close(dir_fd)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_IMAGE_BYTES = 32 << 20


def read_image(path: str | os.PathLike, folder: str | os.PathLike) -> bytes | None:
    """The bytes of a PNG the tool reported, read safely: the code may have swapped the file or a
    folder on its way for a symlink to the user's files since. None unless it is a regular file
    inside folder, not a symlink, a PNG, and at most 32 MB. The app shows images only through this."""
    real_folder = os.path.realpath(folder)
    if os.path.commonpath([os.path.realpath(path), real_folder]) != real_folder:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not (stat.S_ISREG(st.st_mode) and st.st_size <= MAX_IMAGE_BYTES):
            return None
        data = f.read(MAX_IMAGE_BYTES + 1)
    return data if data.startswith(PNG_SIGNATURE) and len(data) <= MAX_IMAGE_BYTES else None
