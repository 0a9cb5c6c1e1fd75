"""What fits in memory: the loading policy, and (soon) the planner that picks it.

A Policy says how each tensor group is held once loaded. The loader (engine/checkpoint.py,
engine/model.py) reads it; engine.memory.plan() chooses the richest one that fits a budget.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    """How the model's weights and cache are held in memory.

    non_expert_bits: None keeps the load dtype (bf16); 8 or 4 quantize attention projections
        and lm_head with MLX affine quantization, group size 64.
    embed_on_cpu: the embedding table stays in the memory-mapped checkpoint; rows are gathered
        with NumPy, so it costs no GPU bytes.
    expert_slots: None keeps every expert resident; an int keeps that many experts per layer in
        GPU buffers and copies the others in from the checkpoint on demand (LRU).
    kv_bits: None keeps the KV cache in the model dtype; 8 quantizes it.
    context_length: the longest context (prompt + answer, in tokens) the plan reserves for.
    """

    non_expert_bits: int | None = None
    embed_on_cpu: bool = True
    expert_slots: int | None = None
    kv_bits: int | None = None
    context_length: int = 4096
