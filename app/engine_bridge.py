"""The one place in app/ that imports the engine (and so MLX). Runs on the worker thread only.

`load_engine(folder, context_length)` opens the model through the engine's front door
(engine.open_chat) and returns its session plus a few facts for the status bar. Every failure
becomes one sentence for the user, never a traceback.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class LoadRefused(Exception):
    """Loading was refused or failed; str() is one clear sentence with a way forward."""


@dataclass
class LoadedEngine:
    session: object          # has .reply(messages, effort=, developer=, sampling=, max_tokens=, cancel=, date=)
    model_name: str
    model: object = None
    tokenizer: object = None
    make_sampling: object = None   # (temperature, top_p) -> sampling params; None -> engine.generate.SamplingParams
    greedy: bool = False           # the model folder asks for greedy decoding (the tiny demo model does)

    def sampling(self, temperature: float, top_p: float):
        if self.greedy:
            temperature = 0.0
        return (self.make_sampling or sampling_params)(temperature, top_p)


def model_display_name(folder: str | Path) -> str:
    """A short name for the status bar: the registry's label if known, else the folder name."""
    folder = Path(folder)
    try:
        from models.registry import label_for_folder
        label = label_for_folder(folder)
        if label:
            return label
    except ImportError:
        pass
    return folder.name


def load_engine(folder: str, context_length: int, cache_folder: str | None = None,
                cache_disk_bytes: int | None = None) -> LoadedEngine:
    """Open `folder` for chat through engine.open_chat (no network: offline mode is on).
    cache_folder: where conversations' caches are kept across restarts (the app's data folder)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from engine.errors import ModelError
        from engine.front_door import NotEnoughMemory, open_chat
    except ImportError as e:
        raise LoadRefused(f"This copy of the app is missing part of its engine ({e.name}); reinstall the app.") from e
    try:
        session = open_chat(folder, context_length=context_length, cache_folder=cache_folder,
                            cache_disk_bytes=cache_disk_bytes)
    except NotEnoughMemory as e:
        reason = str(e).rstrip(".")
        raise LoadRefused(f"Not enough memory to load this model: {reason}. Close other apps, or choose a "
                          "shorter context length in Settings, then try again.") from e
    except ModelError as e:
        raise LoadRefused(str(e)) from e
    except MemoryError as e:
        raise LoadRefused("The Mac ran out of memory while loading the model; close other apps and try again.") from e
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
        log.exception("model load failed")
        raise LoadRefused(f"The model in {folder} could not be loaded ({e}); download it again or choose "
                          "another folder.") from e
    return LoadedEngine(session, model_display_name(folder), session.model, session.enc,
                        make_sampling=lambda t, p: session.sampling(t, p), greedy=session.greedy)


def memory_in_use() -> int:
    """Bytes MLX holds right now (falls back to the process's resident size)."""
    try:
        import mlx.core as mx
        value = int(mx.get_active_memory())
        if value > 0:
            return value
    except Exception:
        pass
    return process_resident_bytes()


def process_resident_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        import resource
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss if os.uname().sysname == "Darwin" else rss * 1024


def sampling_params(temperature: float, top_p: float):
    from engine.generate import SamplingParams
    return SamplingParams(temperature=temperature, top_p=top_p)
