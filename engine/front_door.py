"""The one way to open a model for chat: the app, the terminal chat, the evaluator and the local
server all come through here.

    session = open_chat("~/models/gpt-oss-20b", context_length=8192)
    for ev in session.reply([{"role": "user", "content": "Hi"}], effort="low"):
        ...

plan the memory -> refuse in one sentence (NotEnoughMemory, a ModelError) -> load with the plan's
policy under the wired limit -> tokenizer -> a ChatSession with the plan's prefill chunk and the
folder's generation defaults (greedy when generation_config.json says do_sample: false).
"""

from __future__ import annotations

import logging
from pathlib import Path

from engine.errors import ModelError, require_folder

log = logging.getLogger(__name__)
PLANNED = "planned"  # policy= default: whatever engine.memory.plan picks for this machine


class NotEnoughMemory(ModelError):
    """The memory planner refused: str() is its one sentence; `plan` the verdict it was based on."""

    def __init__(self, message: str, plan=None):
        super().__init__(message)
        self.plan = plan


def model_name(folder: str | Path) -> str:
    """What a model is called when its opener names it nothing else: its folder's name
    (e.g. "gpt-oss-20b"; the id the local server answers to)."""
    return Path(folder).expanduser().resolve().name


def chat_session(model, enc, folder: str | Path, context_length: int, prefill_chunk: int | None = None,
                 name: str | None = None, **kw):
    """The engine.session.ChatSession for a loaded `model` (one process's or a pipeline's), with the
    folder's generation defaults: every opener goes through here so sampling is decided alike."""
    from engine.generate import SamplingParams
    from engine.generation_config import prefers_greedy, sampling_defaults
    from engine.session import ChatSession

    if prefill_chunk is not None:
        kw["prefill_chunk"] = prefill_chunk
    return ChatSession(model, enc, context_length=context_length, defaults=SamplingParams(**sampling_defaults(folder)),
                       greedy=prefers_greedy(folder), name=name or model_name(folder), **kw)


def open_chat(folder: str | Path, context_length: int = 8192, budget: int | None = None,
              dtype: str | None = None, policy=PLANNED, on_loading=None, name: str | None = None,
              cache_folder: str | Path | None = None, cache_disk_bytes: int | None = None):
    """Open `folder` (official gpt-oss layout) for chat and return its engine.session.ChatSession.

    name: what the caller calls the model (default: the folder's name).
    budget: bytes the model may use (default: this machine's GPU budget, engine.memory).
    policy: PLANNED (default), None for everything resident as stored, or an engine.memory.Policy.
    on_loading: called with no arguments once the plan accepts, just before the weights are read.
    cache_folder: where conversations' caches are kept across restarts (engine/prompt_store.py; the
    app's data folder); cache_disk_bytes bounds it. None: in memory only.
    Raises ModelError (NotEnoughMemory when it can't fit) with one sentence and a way forward.
    """
    from engine.memory import plan as plan_memory
    from engine.memory import wired_limit

    folder = Path(folder).expanduser()
    require_folder(folder)
    plan = None
    if policy == PLANNED:
        try:
            plan = plan_memory(folder, context_length, budget)
        except ModelError:
            raise
        except Exception as e:  # a planner bug must not block a model that may well fit
            log.warning("memory planner failed, loading with everything resident: %s", e)
        if plan is not None and not plan.fits:
            raise NotEnoughMemory(plan.reason, plan)
        policy = plan.policy if plan is not None else None
    from engine.loader import load_model
    from engine.tokenizer import load_tokenizer

    if on_loading is not None:
        on_loading()
    from engine.config import load_config

    # First: a broken tokenizer is found before the long load.
    enc = load_tokenizer(folder, vocab_size=load_config(folder).vocab_size)
    with wired_limit():
        model = load_model(folder, dtype=dtype, policy=policy)
    from engine.prompt_cache import PromptCache

    # Other conversations' caches get what the plan leaves free (never an expert slot); unplanned: none.
    prompt_cache = PromptCache(model.make_cache, budget_bytes=plan.prompt_cache_bytes if plan is not None else 0,
                               store=_prompt_store(cache_folder, folder, cache_disk_bytes))
    session = chat_session(model, enc, folder, context_length, plan.prefill_chunk if plan is not None else None,
                           name=name, wired_limit=wired_limit, prompt_cache=prompt_cache)
    session.plan = plan
    return session


def _prompt_store(cache_folder, model_folder, disk_bytes):
    """The disk store for conversations' caches, or None (no folder, or one we can't use: logged)."""
    if cache_folder is None:
        return None
    from engine.prompt_store import DEFAULT_BUDGET, PromptStore

    try:
        return PromptStore(cache_folder, model_folder, DEFAULT_BUDGET if disk_bytes is None else disk_bytes)
    except OSError as e:  # a read-only or vanished folder: chats still work, from memory only
        log.warning("prompt cache folder %s can't be used: %s", cache_folder, e)
        return None


__all__ = ["NotEnoughMemory", "PLANNED", "chat_session", "model_name", "open_chat"]
