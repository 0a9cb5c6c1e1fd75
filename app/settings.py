"""User settings, saved in the history database so they survive restarts."""
from __future__ import annotations

import logging
from dataclasses import MISSING, asdict, dataclass, field, fields

log = logging.getLogger(__name__)

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
    python_tool: bool = True       # offer the sandboxed Python tool (each chat asks before its first run)
    functions: list = field(default_factory=list)  # developer's functions: [{name, description, parameters}]
    answer_schema: str = ""        # developer: JSON Schema every final answer must follow ("": free text)
    python_disk_quota_mb: int = 1024  # all one chat's Python folder may hold (engine.python_tool Limits.disk_quota)
    api_server: bool = False       # the local OpenAI-compatible API is on (started again at launch)
    api_port: int = 8000           # the port it tries first (the next free one when taken)
    api_key: str = ""              # clients must send it as a Bearer token ("": none, this computer only)
    api_network: bool = False      # other devices on the network may reach it (only with api_key)
    api_allowed_origins: list = field(default_factory=list)  # web pages that may call the API ("http://localhost:3000")
    prompt_cache_gb: float = 4.0   # disk space for cached conversations (reopened chats skip their prefill)

    @classmethod
    def load(cls, store) -> "Settings":
        """The saved settings; a value of the wrong type (or a damaged row) falls back to its default."""
        saved = store.get_setting("settings", {})
        if not isinstance(saved, dict):
            log.warning("saved settings are not an object; using the defaults")
            saved = {}
        values = {}
        for f in fields(cls):
            if f.name in saved:
                value = _coerce(saved[f.name], f.default)
                if value is MISSING:
                    log.warning("setting %s=%r has the wrong type; using the default", f.name, saved[f.name])
                else:
                    values[f.name] = value
        return cls(**values).clamped()

    def save(self, store) -> None:
        store.set_setting("settings", asdict(self.clamped()))

    def clamped(self) -> "Settings":
        """Keep values in ranges the engine accepts, whatever an old settings file held."""
        self.temperature = min(max(float(self.temperature), 0.0), 2.0)
        self.top_p = min(max(float(self.top_p), 0.05), 1.0)
        self.max_tokens = min(max(int(self.max_tokens), 16), 131072)
        self.context_length = min(max(int(self.context_length), 1024), 131072)
        self.python_disk_quota_mb = min(max(int(self.python_disk_quota_mb), 16), 1024 * 1024)
        self.api_port = min(max(int(self.api_port), 1024), 65535)
        self.prompt_cache_gb = min(max(float(self.prompt_cache_gb), 0.0), 1000.0)
        self.functions = [f for f in self.functions if isinstance(f, dict)] if isinstance(self.functions, list) else []
        self.api_allowed_origins = [o for o in self.api_allowed_origins if isinstance(o, str) and o]
        return self


def _coerce(value, default):
    """`value` as the type of `default`, or MISSING when it can't honestly be one."""
    if isinstance(default, bool):
        return value if isinstance(value, bool) else MISSING
    if isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:  # NaN
            return MISSING
        if isinstance(default, int) and value != int(value):
            return MISSING
        return type(default)(value) if abs(value) != float("inf") else MISSING
    if isinstance(default, str):
        return value if isinstance(value, str) else MISSING
    return value
