"""Where gpt-oss chat keeps its files on this computer: the app-data folder and the models in it.

A neutral module: the desktop app (history, settings, downloads) and the standalone server (which
serves a model the app downloaded) both read it; neither knows the other's code.
"""
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


def models_dir() -> Path:
    """Where the app downloads models."""
    return app_data_dir() / "models"
