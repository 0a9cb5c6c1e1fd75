"""What a model folder's generation_config.json asks of sampling (Hugging Face's convention)."""

from __future__ import annotations

import json
from pathlib import Path

from engine.config import read_regular_text


def _read(folder: str | Path) -> dict:
    try:
        config = json.loads(read_regular_text(Path(folder) / "generation_config.json"))
    except (OSError, ValueError, RecursionError):  # a FIFO or device raises OSError: never blocks
        return {}
    return config if isinstance(config, dict) else {}


def sampling_defaults(folder: str | Path) -> dict:
    """The folder's own temperature and top_p (only sane numbers), as SamplingParams keywords."""
    config = _read(folder)
    out = {}
    for key, low, high in (("temperature", 0.0, 2.0), ("top_p", 0.0, 1.0)):
        value = config.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high:
            out[key] = float(value)
    return out


def prefers_greedy(folder: str | Path) -> bool:
    """True when the folder's generation_config.json says "do_sample": false.

    The tiny demo model asks for greedy decoding: a model that small is much less accurate when
    sampled. gpt-oss does not ask for it (it is meant to be sampled at temperature 1). A missing or
    unreadable file means "no preference": the user's sampling settings apply.
    """
    return _read(folder).get("do_sample") is False
