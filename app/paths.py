"""Where the app keeps its files: history, settings and downloaded models."""
from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "gpt-oss chat"


def app_data_dir() -> Path:
    """The platform's app-data folder (GPT_OSS_CHAT_HOME overrides it, for tests and portable use)."""
    override = os.environ.get("GPT_OSS_CHAT_HOME")
    if override:
        return Path(override)
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP_NAME
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home())) / APP_NAME
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "gpt-oss-chat"


def history_path() -> Path:
    return app_data_dir() / "history.sqlite3"


def models_dir() -> Path:
    return app_data_dir() / "models"


def prompt_cache_dir() -> Path:
    """Conversations' KV caches, so reopened chats skip their prefill (engine/prompt_store.py)."""
    return app_data_dir() / "prompt-cache"
