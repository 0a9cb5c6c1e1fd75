"""Where the app keeps its files: history, settings and downloaded models (the folders themselves
are models/locations.py's, which the standalone server reads too)."""
from __future__ import annotations

from pathlib import Path

from models.locations import APP_NAME, app_data_dir, models_dir  # noqa: F401 (re-exported)


def history_path() -> Path:
    return app_data_dir() / "history.sqlite3"


def prompt_cache_dir() -> Path:
    """Conversations' KV caches, so reopened chats skip their prefill (engine/prompt_store.py)."""
    return app_data_dir() / "prompt-cache"
