"""The one place in app/ that imports the engine (and so MLX). Runs on the worker thread only.

`load_engine(folder, context_length)` returns a session with the `reply()` generator of
engine.session.ChatSession plus a few facts for the status bar. Every failure becomes
ModelError-style text: one sentence for the user, never a traceback.
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


def memory_plan(folder: str, context_length: int):
    """engine.memory.plan's verdict: (the plan, or None if the planner could not run; the refusal
    in words, or None when the model fits)."""
    from engine.errors import ModelError
    from engine.memory import plan

    try:
        result = plan(folder, context_length)
    except ModelError as e:   # e.g. a context longer than the model handles: the planner's own sentence
        return None, str(e)
    except Exception as e:  # the planner itself failing must not block a model that may well fit
        log.warning("memory planner failed, loading anyway: %s", e)
        return None, None
    if result.fits:
        return result, None
    reason = str(result.reason or "the model does not fit in this Mac's memory").rstrip(".")
    return result, (f"Not enough memory to load this model: {reason}. Close other apps, or choose a "
                    "shorter context length in Settings, then try again.")


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


def load_engine(folder: str, context_length: int) -> LoadedEngine:
    """Load model, tokenizer and chat session from `folder` (no network: offline mode is on)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    plan, refusal = memory_plan(folder, context_length)
    if refusal:
        raise LoadRefused(refusal)
    try:
        from engine.errors import ModelError
    except ImportError:  # pragma: no cover - engine always ships errors.py
        ModelError = ValueError
    try:
        from engine import load_model
        from engine.generation_config import prefers_greedy
        from engine.session import ChatSession
        from engine.tokenizer import load_tokenizer
    except ImportError as e:
        raise LoadRefused(f"This copy of the app is missing part of its engine ({e.name}); reinstall the app.") from e
    try:
        if plan is not None:
            from engine.memory import apply_wired_limit

            apply_wired_limit()
        model = load_model(folder, policy=plan.policy if plan else None)
        enc = load_tokenizer(folder)
        session = ChatSession(model, enc, context_length=context_length,
                              **({"prefill_chunk": plan.prefill_chunk} if plan else {}))
    except ModelError as e:
        raise LoadRefused(str(e)) from e
    except MemoryError as e:
        raise LoadRefused("The Mac ran out of memory while loading the model; close other apps and try again.") from e
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
        log.exception("model load failed")
        raise LoadRefused(f"The model in {folder} could not be loaded ({e}); download it again or choose "
                          "another folder.") from e
    return LoadedEngine(session, model_display_name(folder), model, enc, greedy=prefers_greedy(folder))


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
