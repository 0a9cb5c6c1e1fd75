"""User settings, saved in the history database so they survive restarts."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

CONTEXT_LENGTHS = (4096, 8192, 16384, 32768, 65536, 131072)


@dataclass
class Settings:
    developer: str = ""            # developer instructions (the harmony developer message)
    temperature: float = 1.0       # gpt-oss is meant to be sampled at temperature 1, top-p 1
    top_p: float = 1.0
    max_tokens: int = 4096         # longest answer, analysis included
    context_length: int = 8192
    show_raw_cot: bool = False     # developer setting: show the unfiltered chain of thought
    model_folder: str = ""         # the folder the user picked or downloaded to
    effort: str = ""               # the reasoning effort last chosen, for new chats ("": never chosen)
    api_server: bool = False       # the local OpenAI-compatible API is on (started again at launch)
    api_port: int = 8000           # the port it tries first (the next free one when taken)

    @classmethod
    def load(cls, store) -> "Settings":
        saved = store.get_setting("settings", {}) or {}
        known = {f.name: f.type for f in fields(cls)}
        values = {k: v for k, v in saved.items() if k in known}
        s = cls(**values)
        return s.clamped()

    def save(self, store) -> None:
        store.set_setting("settings", asdict(self.clamped()))

    def clamped(self) -> "Settings":
        """Keep values in ranges the engine accepts, whatever an old settings file held."""
        self.temperature = min(max(float(self.temperature), 0.0), 2.0)
        self.top_p = min(max(float(self.top_p), 0.05), 1.0)
        self.max_tokens = min(max(int(self.max_tokens), 16), 131072)
        self.context_length = min(max(int(self.context_length), 1024), 131072)
        self.api_port = min(max(int(self.api_port), 1024), 65535)
        return self
