"""NumPy reference for the fused expert kernels, built on engine/mxfp4.py's decoder (float64).

# N tokens, K experts per token, E experts, D hidden, I expert intermediate
"""

from __future__ import annotations

import numpy as np

from engine import mxfp4

SWIGLU_ALPHA = 1.702


def decode64(blocks: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """mxfp4.decode in float64: scale 2^127 times FP4 6 overflows float32, but not the kernels,
    which apply the scale to a block's partial sum."""
    codes = mxfp4.unpack_codes(blocks)
    s = np.ldexp(1.0, scales.astype(np.int64) - mxfp4.SCALE_BIAS)
    v = mxfp4.FP4_VALUES[codes].astype(np.float64) * s[..., None]
    return v.reshape(v.shape[:-2] + (-1,))


def swiglu(gate: np.ndarray, up: np.ndarray, limit: float) -> np.ndarray:
    gate = np.minimum(gate, limit)
    up = np.clip(up, -limit, limit)
    with np.errstate(over="ignore"):  # exp(+large) = inf gives the right limit, -0
        return gate / (1.0 + np.exp(-SWIGLU_ALPHA * gate)) * (up + 1.0)


def gate_up(x, idx, blocks, scales, bias, limit):
    """x [N, D], idx [N, K], blocks [E, 2I, D/32, 16] uint8, scales [E, 2I, D/32], bias [E, 2I]
    -> h [N, K, I] float64."""
    n_tok, k = idx.shape
    out = np.zeros((n_tok, k, blocks.shape[1] // 2))
    for e in np.unique(idx):
        w = decode64(blocks[e], scales[e])  # [2I, D]
        for n, s in zip(*np.nonzero(idx == e)):
            hh = w @ x[n].astype(np.float64) + bias[e]
            out[n, s] = swiglu(hh[0::2], hh[1::2], limit)
    return out


def down(h, idx, weights, blocks, scales, bias):
    """h [N, K, I], idx [N, K], weights [N, K], blocks [E, D, I/32, 16], scales, bias [E, D]
    -> y [N, D] float64 = sum_k weights[n, k] * (Wd[e] h[n, k] + bd[e])."""
    n_tok, k = idx.shape
    y = np.zeros((n_tok, blocks.shape[1]))
    for e in np.unique(idx):
        w = decode64(blocks[e], scales[e])  # [D, I]
        for n, s in zip(*np.nonzero(idx == e)):
            y[n] += weights[n, s] * (w @ h[n, s].astype(np.float64) + bias[e])
    return y
