"""Which Mac holds which layers: the memory plan of a pipeline across several Macs.

Each rank holds one contiguous range of layers and plans its own memory with engine.memory's
ladder (its own experts, attention, KV cache and workspace). Rank 0 also holds the embedding
(memory-mapped, no GPU bytes), the final norm and lm_head: it talks to the user and samples, so
the last rank sends it one hidden row per token (11.5 KB) instead of 201088 logits (800 KB).

plan_split() tries every way to cut the layers into contiguous ranges (one per rank, in rank
order) and keeps the one whose poorest rank is richest: the worst rung of the ladder any rank
has to take, then the highest share of its budget any rank uses. Pure arithmetic, no MLX: the
setup screen and the docs use it too.

# L layers, N ranks
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from engine.memory import (DEFAULT_PREFILL_CHUNK, GB, Plan, candidate_policies, footprint_from_config,
                           plan_footprint)

MAX_EXHAUSTIVE_RANKS = 6  # beyond this, cut the layers evenly instead of trying every cut


@dataclass(frozen=True)
class Stage:
    """One rank's share: layers [first, last), the head on rank 0, and its own memory plan."""

    rank: int
    first: int
    last: int
    head: bool
    plan: Plan

    def describe(self) -> str:
        head = " + embedding/lm_head" if self.head else ""
        return (f"rank {self.rank}: layers {self.first}-{self.last - 1}{head}, {self.plan.policy.describe()}, "
                f"peak {self.plan.peak_bytes / GB:.1f} of {self.plan.budget_bytes / GB:.1f} GB")


@dataclass(frozen=True)
class SplitPlan:
    stages: tuple[Stage, ...]
    fits: bool
    reason: str  # one sentence for the user when it does not fit ('' when it does)

    def summary(self) -> str:
        return "\n".join(s.describe() for s in self.stages)


def _richness(plan: Plan, ladder: list) -> tuple[int, float]:
    """Smaller is better: the ladder rung the stage had to take, then the share of its budget used."""
    rung = ladder.index(plan.policy) if plan.fits else len(ladder)
    return rung, plan.peak_bytes / max(1, plan.budget_bytes)


def plan_split(cfg, budgets: list[int], context_length: int = 4096, model_name: str = "the model",
               dtype: str = "bfloat16", prefill_chunk: int = DEFAULT_PREFILL_CHUNK) -> SplitPlan:
    """Cut cfg's layers into len(budgets) contiguous ranges, rank i getting budgets[i] bytes."""
    L, n = cfg.num_hidden_layers, len(budgets)
    if not 1 <= n <= L:
        raise ValueError(f"a pipeline needs between 1 and {L} ranks, not {n}")
    ladder = candidate_policies(footprint_from_config(cfg, model_name), context_length)

    plans: dict[tuple, Plan] = {}

    def stage_plan(first: int, last: int, rank: int) -> Plan:
        # A stage's plan depends only on how many layers of each kind it holds, the head and the budget.
        full = sum(1 for i in range(first, last) if not cfg.is_sliding(i))
        key = (last - first, full, rank == 0, budgets[rank])
        if key not in plans:
            fp = footprint_from_config(cfg, model_name, (first, last), head=rank == 0)
            plans[key] = plan_footprint(fp, context_length, budgets[rank], prefill_chunk, dtype)
        return plans[key]

    def score(cuts) -> tuple:
        bounds = (0, *cuts, L)
        plans = [stage_plan(bounds[r], bounds[r + 1], r) for r in range(n)]
        rungs = [_richness(p, ladder) for p in plans]
        return (sum(not p.fits for p in plans), max(r for r, _ in rungs), max(s for _, s in rungs))

    if n <= MAX_EXHAUSTIVE_RANKS:
        best = min(itertools.combinations(range(1, L), n - 1), key=score)
    else:
        best = tuple(round(L * r / n) for r in range(1, n))
    bounds = (0, *best, L)
    stages = tuple(Stage(r, bounds[r], bounds[r + 1], r == 0, stage_plan(bounds[r], bounds[r + 1], r))
                   for r in range(n))
    short = [s for s in stages if not s.plan.fits]
    reason = ""
    if short:
        s = max(short, key=lambda s: s.plan.peak_bytes - s.plan.budget_bytes)
        reason = (f"{model_name} does not fit on these {n} Macs: the best split still leaves rank {s.rank} "
                  f"(layers {s.first}-{s.last - 1}) {((s.plan.peak_bytes - s.plan.budget_bytes) / GB):.1f} GB "
                  f"short of its {s.plan.budget_bytes / GB:.1f} GB; add a Mac, use one with more memory, "
                  f"or choose a shorter context.")
    return SplitPlan(stages, not short, reason)


def plan_split_folder(folder: str | Path, budgets: list[int], context_length: int = 4096,
                      dtype: str = "bfloat16") -> SplitPlan:
    """plan_split for a model folder (reads config.json only)."""
    from engine.config import load_config

    return plan_split(load_config(folder), budgets, context_length, Path(folder).name or "the model", dtype)
