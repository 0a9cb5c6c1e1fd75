"""The one place in app/ that opens a model (and so loads MLX). Runs on the engine thread only.

The rule for app/: the model is opened here, through engine.open_chat, and MLX is touched only on
the engine thread (here, the worker, and the launcher's memory-budget check). Other app/ files may
import the engine's plain modules, which load no MLX: engine.events, engine.tools, engine.errors,
engine.python_tool, engine.config and engine.checkpoint_format (folder checks). app/ui never
imports mlx.

`load_engine(folder, context_length)` opens the model through the engine's front door
(engine.open_chat) and returns its typed handle, the engine.session.ChatSession. Every failure
becomes one sentence for the user, never a traceback.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class LoadRefused(Exception):
    """Loading was refused or failed; str() is one clear sentence with a way forward."""


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


def fitting_contexts(folder: str, budget: int | None = None) -> tuple[int, ...]:
    """The Settings context lengths `folder`'s model takes (its config's maximum) and that its memory
    plan fits on this machine; () when that can't be worked out (the load then says why)."""
    from app.settings import CONTEXT_LENGTHS
    try:
        from engine.memory import plan_footprint, read_footprint
        fp = read_footprint(folder)
        return tuple(n for n in CONTEXT_LENGTHS if n <= fp.max_context and plan_footprint(fp, n, budget).fits)
    except Exception as e:   # a broken folder: open_chat below gives the sentence
        log.info("context lengths of %s not worked out: %s", folder, e)
        return ()


def nearest_allowed(asked: int, allowed: tuple[int, ...]) -> int:
    """`asked`, or the longest allowed context when `asked` is longer than the model or memory take."""
    if not allowed or asked <= max(allowed):
        return asked
    return max(allowed)


def load_engine(folder: str, context_length: int, cache_folder: str | None = None,
                cache_disk_bytes: int | None = None):
    """Open `folder` for chat through engine.open_chat (no network: offline mode is on) and return
    its engine.session.ChatSession, named with the registry's label for the status bar. A context
    longer than the model or the memory take is replaced by the longest one they allow, so a setting
    never stops a model that can run; `context_lengths` on the handle lists those Settings offers.
    cache_folder: where conversations' caches are kept across restarts (the app's data folder)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    allowed = fitting_contexts(folder)
    context_length = nearest_allowed(context_length, allowed)
    try:
        from engine.errors import ModelError
        from engine.front_door import NotEnoughMemory, open_chat
    except ImportError as e:
        raise LoadRefused(f"This copy of the app is missing part of its engine ({e.name}); reinstall the app.") from e
    try:
        session = open_chat(folder, context_length=context_length, name=model_display_name(folder),
                            cache_folder=cache_folder, cache_disk_bytes=cache_disk_bytes)
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
    session.context_lengths = allowed
    return session


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

