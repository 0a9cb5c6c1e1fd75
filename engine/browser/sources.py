"""Open the sources a caller names (folders, ZIM files) as backends: the terminal chat and the server.

    backends = open_sources(["~/Notes"], ["wikipedia.zim"], index_folder, progress=print)

The folders become one Library ("library"), brought up to date here (progress per file; Ctrl-C
or `cancel` stops indexing and keeps what was done); each ZIM file is a source of its own, named
after its file. Raises ValueError with one sentence for a folder or file that can't be used.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from engine.browser.backend import BackendError
from engine.browser.library import Library


def default_index_folder(folders: list[Path]) -> Path:
    """~/.cache/gpt-oss-chat/browser/<folders' hash>: one index per set of folders."""
    key = hashlib.sha256("\n".join(sorted(str(f) for f in folders)).encode()).hexdigest()[:16]
    return Path.home() / ".cache" / "gpt-oss-chat" / "browser" / key


def open_sources(folders: list[str], zims: list[str] = (), index_folder: str | Path | None = None,
                 progress=None, cancel=None) -> list:
    backends = []
    paths = [Path(f).expanduser().resolve() for f in folders or ()]
    for p in paths:
        if not p.is_dir():
            raise ValueError(f"The library folder {p} does not exist; pass --library a folder of documents.")
    if paths:
        lib = Library(index_folder or default_index_folder(paths), paths)
        lib.update(progress, cancel)
        backends.append(lib)
    for z in zims or ():
        from engine.browser.zim import ZimArchive

        if not Path(z).expanduser().is_file():
            raise ValueError(f"The ZIM file {z} does not exist; pass --zim a .zim archive (e.g. from Kiwix).")
        try:
            backends.append(ZimArchive(Path(z).expanduser()))
        except BackendError as e:
            raise ValueError(str(e)) from None
        except ImportError:
            raise ValueError("Reading ZIM archives needs libzim: pip install libzim.") from None
    names = [b.name for b in backends]
    if len(set(names)) != len(names):
        raise ValueError(f"Two sources have the same name ({', '.join(names)}); rename one of the ZIM files.")
    return backends
