"""The user's library for the browser tool: the folders and ZIM archives added in Settings, their
index (in the app's data folder) and one BrowserTool per chat. No Qt here.

    lib = LibrarySources(store, app_data_dir() / "browser")
    lib.add("~/Notes"); lib.names()           # ["library"]
    lib.run("12", "browser.search", '{"query": "tides"}')   # on the tools thread, never the model's

Only what the user added is ever read: the backends are built from the saved list alone, and a
backend only opens what it holds (engine/browser/backend.py). Which chats browse is kept per chat
("browser_off": the chats whose sources are switched off; on by default once something is added).
"""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

from engine.browser import BrowserTool, Library
from engine.browser.page import document_page

ATTACHED = "attachments"   # the source name of the files dropped on a chat's composer
SETTING = "library"
OFF_SETTING = "browser_off"


def rough_tokens(text: str) -> int:
    """Until a model is loaded (its tokenizer then counts): about 4 characters a token."""
    return len(text) // 4 + 1


class LibrarySources:
    def __init__(self, store, index_folder: Path):
        self.store, self.index_folder = store, Path(index_folder)
        self.count_tokens = rough_tokens
        self._lock = threading.RLock()
        self._backends: list | None = None
        self._tools: dict[str, BrowserTool] = {}
        self._history: dict[str, list[dict]] = {}
        self._jobs: dict[str, object] = {}   # a chat's attachments being indexed (engine.browser IndexJob)   # a reopened chat's earlier messages, replayed on first use
        saved = self._get(SETTING, {})
        saved = saved if isinstance(saved, dict) else {}
        self.folders: list[str] = [str(p) for p in saved.get("folders") or [] if isinstance(p, str)]
        self.zims: list[str] = [str(p) for p in saved.get("zims") or [] if isinstance(p, str)]

    def _get(self, key, default):
        try:
            return self.store.get_setting(key, default)
        except Exception:  # noqa: BLE001 - an unreadable setting: the library starts empty
            return default

    # -- what the user added -----------------------------------------------------------------
    def add(self, path: str) -> str:
        """Add a folder or a .zim file; '' when done, else one sentence saying why not."""
        p = Path(path).expanduser().resolve()
        if p.is_dir():
            target = self.folders
        elif p.is_file() and p.suffix.lower() == ".zim":
            target = self.zims
        else:
            return f"{p} is neither a folder nor a .zim archive; add a folder of documents or a Kiwix .zim file."
        if str(p) not in target:
            with self._lock:
                target.append(str(p))
                self._changed()
        return ""

    def remove(self, path: str) -> None:
        with self._lock:
            for target in (self.folders, self.zims):
                if path in target:
                    target.remove(path)
            self._changed()

    def _changed(self) -> None:
        self.store.set_setting(SETTING, {"folders": self.folders, "zims": self.zims})
        if self._backends:
            for b in self._backends:
                if isinstance(b, Library):
                    b.close()
        self._backends, self._tools = None, {}

    @property
    def empty(self) -> bool:
        return not self.folders and not self.zims

    # -- the backends and the chats' tools -----------------------------------------------------
    def library(self) -> Library | None:
        """The documents' index (built from the folders; indexing is LibraryIndexer's)."""
        return next((b for b in self.backends() if isinstance(b, Library)), None)

    def backends(self) -> list:
        with self._lock:
            if self._backends is None:
                out = []
                if self.folders:
                    out.append(Library(self.index_folder, self.folders))
                for z in self.zims:
                    try:
                        from engine.browser.zim import ZimArchive
                        out.append(ZimArchive(Path(z)))
                    except Exception:  # noqa: BLE001 - gone or unreadable: the other sources still work
                        continue
                self._backends = out
            return list(self._backends)

    def names(self) -> list[str]:
        return [b.name for b in self.backends()]

    def tool(self, chat: str) -> BrowserTool:
        with self._lock:
            if chat not in self._tools:
                tool = self._tools[chat] = BrowserTool(self.backends() + self._attached(chat),
                                                       lambda s: self.count_tokens(s))
                tool.replay(self._history.pop(chat, []))
            return self._tools[chat]

    def names_for(self, chat: str) -> list[str]:
        """The sources chat `chat` browses: the library's, then the files dropped on it."""
        return self.names() + ([ATTACHED] if self._has_attached(chat) else [])

    # -- files dropped on a chat ---------------------------------------------------------------
    def _attached_folder(self, chat: str) -> Path:
        return self.index_folder / ATTACHED / str(chat) / "files"

    def _attached(self, chat: str) -> list:
        folder = self._attached_folder(chat)
        return [Library(folder.parent / "index", [folder], name=ATTACHED)] if self._has_attached(chat) else []

    def attach(self, chat: str, paths: list[str]):
        """Add files to chat `chat`'s own sources (copied into the app's data folder, so the chat
        reads exactly what was dropped). Returns (IndexJob or None, files added, a sentence about the
        ones skipped or '')."""
        folder = self._attached_folder(chat)
        from engine.browser.convert import supported
        copied, skipped = 0, []
        for p in map(Path, paths):
            if p.is_file() and supported(p):
                folder.mkdir(parents=True, exist_ok=True)
                shutil.copy2(p, folder / p.name)
                copied += 1
            else:
                skipped.append(p.name)
        note = f"{', '.join(skipped[:3])} can't be read as documents (text, Markdown, HTML, PDF, Word or code)." \
            if skipped else ""
        if not copied:
            return None, 0, note
        with self._lock:
            self._tools.pop(str(chat), None)   # the next call sees the new files
        job = self._jobs[str(chat)] = self._attached(chat)[0].update_in_background()
        return job, copied, note

    def prepare(self, chat: str, history: list[dict]) -> None:
        """A chat reopened after a restart: its earlier browser calls are run again (on the tools
        thread, before its next call) so its cursors, and the next page's number, mean what they meant."""
        with self._lock:
            if chat not in self._tools:
                self._history[chat] = history
        lib = self.library()
        if lib is not None:   # files changed since the last indexing are seen (in the background; searches go on)
            lib.refresh_if_stale()

    def run(self, chat: str, recipient: str, arguments: str) -> str:
        """One browser call for chat `chat`: the page the model reads (or a sentence about its mistake)."""
        job = self._jobs.get(chat)
        if job is not None:   # files just dropped: the model reads them whole (Stop cancels the wait)
            job.wait()
            if self._jobs.get(chat) is job:
                del self._jobs[chat]
        return self.tool(chat).run(recipient, arguments)

    def cancel_indexing(self, chat: str) -> None:
        """Stop: the chat's attachments stop indexing (what was done is kept)."""
        job = self._jobs.get(chat)
        if job is not None:
            job.cancel()

    def forget(self, chat: str) -> None:
        with self._lock:
            self._tools.pop(chat, None)

    def read(self, url: str) -> tuple[str, list[str]] | None:
        """(title, lines) of a document in the sources, numbered as the model saw them; None if
        no source holds it."""
        for b in self.backends():
            doc = b.fetch(url)
            if doc is not None:
                page = document_page(doc, b.name)
                return page.title, page.lines
        return None

    # -- per chat --------------------------------------------------------------------------------
    def on_for(self, conversation_id: int) -> bool:
        off = self._get(OFF_SETTING, [])
        return self.has_sources(conversation_id) and not (isinstance(off, list) and conversation_id in off)

    def has_sources(self, conversation_id: int) -> bool:
        """Something to browse in this chat: the library, or files dropped on it."""
        return not self.empty or self._has_attached(str(conversation_id))

    def _has_attached(self, chat: str) -> bool:
        try:
            return chat != "-1" and self._attached_folder(chat).is_dir()
        except OSError:   # an unreadable data folder: nothing attached that could be read
            return False

    def set_on_for(self, conversation_id: int, on: bool) -> None:
        off = self._get(OFF_SETTING, [])
        off = set(off) if isinstance(off, list) else set()
        off = off - {conversation_id} if on else off | {conversation_id}
        self.store.set_setting(OFF_SETTING, sorted(off))
