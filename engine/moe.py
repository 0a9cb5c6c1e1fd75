"""Mixture of experts: the top-k router and the MXFP4 experts.

The experts' weights stay exactly as the checkpoint packs them (MXFP4 blocks as uint32, E8M0 scales
as uint8); MLX's `gather_qmm(mode="mxfp4")` reads them directly. Which function computes the
experts (the custom Metal kernels of engine/metal_kernels, or `experts_mlx`) and whether they are
resident or paged in (engine/residency) is decided by the loader when the model is built: a call
reads no setting and imports nothing.

# N tokens, K experts per token, E experts, D hidden, I expert intermediate
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx

SWIGLU_ALPHA = 1.702
# Above this many tokens, sort (token, expert) pairs by expert so each expert's rows are read
# once per group of tokens instead of once per token (what makes large prefills fast).
SORT_THRESHOLD = 64


@dataclass
class ExpertWeights:
    """One layer's experts as in the checkpoint (rows of gate and up interleaved)."""

    gate_up_blocks: mx.array  # [E, 2I, D/8] uint32
    gate_up_scales: mx.array  # [E, 2I, D/32] uint8
    gate_up_bias: mx.array  # [E, 2I]
    down_blocks: mx.array  # [E, D, I/8] uint32
    down_scales: mx.array  # [E, D, I/32] uint8
    down_bias: mx.array  # [E, D]


def route(x: mx.array, router_w: mx.array, router_b: mx.array, k: int) -> tuple[mx.array, mx.array]:
    """x [N, D] -> (expert ids [N, K] uint32, weights [N, K]): top-k logits, softmax over those k."""
    logits = x @ router_w.T + router_b
    E = logits.shape[-1]
    idx = mx.argpartition(logits, kth=E - k, axis=-1)[..., E - k:]  # the k largest, in any order
    top = mx.take_along_axis(logits, idx, axis=-1)
    weights = mx.softmax(top.astype(mx.float32), axis=-1).astype(x.dtype)
    return idx.astype(mx.uint32), weights


def _clamped_swiglu(h: mx.array, limit: mx.array) -> mx.array:
    gate = mx.minimum(h[..., 0::2], limit)
    up = mx.clip(h[..., 1::2], -limit, limit)
    return gate * mx.sigmoid(SWIGLU_ALPHA * gate) * (up + 1)


# One fused kernel instead of eight element-wise ops per layer. Not shapeless (the strided
# slices need shapes), so it is traced once per token count: decode always hits the same trace.
_clamped_swiglu_fused = mx.compile(_clamped_swiglu)


def clamped_swiglu(h: mx.array, limit: float) -> mx.array:
    """h [..., 2I] with interleaved gate/up -> [..., I], as the reference computes it."""
    return _clamped_swiglu_fused(h, mx.array(limit, dtype=h.dtype))


def _mxfp4_gather(x, blocks, scales, idx, sorted_indices):
    return mx.gather_qmm(x, blocks, scales, None, rhs_indices=idx, transpose=True,
                         group_size=32, bits=4, mode="mxfp4", sorted_indices=sorted_indices)


def experts_mlx(x: mx.array, idx: mx.array, weights: mx.array, ew: ExpertWeights,
                limit: float = 7.0) -> mx.array:
    """Plain-MLX experts: x [N, D], idx [N, K], weights [N, K] -> [N, D]."""
    N, K = idx.shape
    if N * K >= SORT_THRESHOLD:
        # Group the N*K (token, expert) pairs by expert; undo the order afterwards.
        flat = idx.flatten()
        order = mx.argsort(flat)
        inverse = mx.argsort(order)
        xs = x[order // K][:, None, :]  # [N*K, 1, D]
        ids = flat[order]
        # Two gathers over the two row halves (views, each keeps its gate/up pairs): MLX's CPU
        # kernel ran ~8% faster so than over all 2I rows at once (bench/engine_speed.py).
        half = ew.gate_up_blocks.shape[1] // 2
        h = mx.concatenate([_mxfp4_gather(xs, ew.gate_up_blocks[:, rows], ew.gate_up_scales[:, rows], ids, True)
                            for rows in (slice(0, half), slice(half, None))], axis=-1)
        h = h + ew.gate_up_bias[ids][:, None, :]
        y = _mxfp4_gather(clamped_swiglu(h, limit), ew.down_blocks, ew.down_scales, ids, True)
        y = (y + ew.down_bias[ids][:, None, :])[inverse].reshape(N, K, -1)
    else:
        xs = x[:, None, None, :]  # [N, 1, 1, D]: broadcast against the K selected experts
        h = _mxfp4_gather(xs, ew.gate_up_blocks, ew.gate_up_scales, idx, False)  # [N, K, 1, 2I]
        h = h + ew.gate_up_bias[idx][:, :, None, :]
        y = _mxfp4_gather(clamped_swiglu(h, limit), ew.down_blocks, ew.down_scales, idx, False)
        y = (y + ew.down_bias[idx][:, :, None, :]).squeeze(2)  # [N, K, D]
    return (y * weights[..., None]).sum(axis=1).astype(x.dtype)


class MoE:
    """Router + experts of one layer. `experts` is ExpertWeights, or an expert store that keeps
    only some experts resident and exposes resolve(idx) -> (ExpertWeights of its slots, slot ids).
    `compute` is the experts backend chosen at load (experts_mlx, or the Metal kernels)."""

    def __init__(self, router_w, router_b, experts, top_k: int, limit: float, compute=None):
        self.router_w, self.router_b = router_w, router_b
        self.experts = experts
        self.top_k = top_k
        self.limit = limit
        self.compute = compute or experts_mlx
        self.resolve = getattr(experts, "resolve", None)  # residency: a host sync per call

    def __call__(self, x: mx.array) -> mx.array:
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        idx, weights = route(x, self.router_w, self.router_b, self.top_k)
        experts = self.experts
        if self.resolve is not None:
            experts, idx = self.resolve(idx)
        return self.compute(x, idx, weights, experts, self.limit).reshape(shape)
