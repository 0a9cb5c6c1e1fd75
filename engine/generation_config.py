"""What a model folder's generation_config.json asks of sampling (Hugging Face's convention)."""

from __future__ import annotations

import json
from pathlib import Path

from engine.config import read_regular_text


def prefers_greedy(folder: str | Path) -> bool:
    """True when the folder's generation_config.json says "do_sample": false.

    The tiny demo model asks for greedy decoding: a model that small is much less accurate when
    sampled. gpt-oss does not ask for it (it is meant to be sampled at temperature 1). A missing or
    unreadable file means "no preference": the user's sampling settings apply.
    """
    try:
        config = json.loads(read_regular_text(Path(folder) / "generation_config.json"))
    except (OSError, ValueError, RecursionError):  # a FIFO or device raises OSError: never blocks
        return False
    return isinstance(config, dict) and config.get("do_sample") is False
