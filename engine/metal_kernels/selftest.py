"""First-use self-test of the Metal kernels against a reference experts function (engine.moe's
plain-MLX path, passed in by the caller: this package never imports the model code) on random data.

# N tokens, K experts per token, E experts, D hidden, I expert intermediate
"""

from __future__ import annotations

from types import SimpleNamespace

import mlx.core as mx

from . import SELF_TEST_TOKENS

# Max |kernel - MLX| relative to max |MLX|. The MLX path rounds h to the activation dtype between
# its ops; the kernels keep float32 until the output, so bf16 needs room. A wrong kernel (nibble
# order, scale, row) is off by O(1).
TOLERANCE = {mx.float32: 1e-3, mx.float16: 1e-2, mx.bfloat16: 3e-2}
SELF_TEST_EXPERTS = 4


def random_experts(n_exp: int, hidden: int, inter: int, dtype, key):
    """Random expert weights in the checkpoint's layout, with engine.moe.ExpertWeights' six fields
    (scales near 2^-6 keep outputs O(1))."""
    k = mx.random.split(key, 6)

    def blocks(rows, cols, kk):
        # random bytes viewed as uint32 (as the checkpoint is): every FP4 code in both nibbles
        b = mx.random.randint(0, 256, (n_exp, rows, cols // 2), key=kk).astype(mx.uint8)
        return mx.view(b, mx.uint32)

    def scales(rows, cols, kk):
        return mx.random.randint(118, 124, (n_exp, rows, cols // 32), key=kk).astype(mx.uint8)

    return SimpleNamespace(
        gate_up_blocks=blocks(2 * inter, hidden, k[0]), gate_up_scales=scales(2 * inter, hidden, k[1]),
        gate_up_bias=mx.random.normal((n_exp, 2 * inter), key=k[2]).astype(dtype),
        down_blocks=blocks(hidden, inter, k[3]), down_scales=scales(hidden, inter, k[4]),
        down_bias=mx.random.normal((n_exp, hidden), key=k[5]).astype(dtype))


def self_test(hidden: int, inter: int, top_k: int, dtype, limit: float, reference) -> str | None:
    """Run the kernels and `reference` (engine.moe.experts_mlx) on 1, 3 and 64 random tokens.
    Returns None when they agree, else one sentence saying what went wrong (a compile error included)."""
    from .build import experts_metal

    try:
        key = mx.random.key(1234)
        n_exp = max(SELF_TEST_EXPERTS, top_k)
        ew = random_experts(n_exp, hidden, inter, dtype, key)
        for n_tok in SELF_TEST_TOKENS:
            kx, ki, kw, key = mx.random.split(key, 4)
            x = mx.random.normal((n_tok, hidden), key=kx).astype(dtype)
            # top_k distinct experts per token, as the router gives
            idx = mx.argsort(mx.random.uniform(shape=(n_tok, n_exp), key=ki), axis=-1)[:, :top_k]
            idx = idx.astype(mx.uint32)
            weights = mx.softmax(mx.random.normal((n_tok, top_k), key=kw), axis=-1).astype(dtype)
            got = experts_metal(x, idx, weights, ew, limit).astype(mx.float32)
            want = reference(x, idx, weights, ew, limit).astype(mx.float32)
            err = mx.max(mx.abs(got - want)).item()
            scale = mx.max(mx.abs(want)).item()
            tol = TOLERANCE.get(dtype, 3e-2) * max(scale, 1e-6)
            if not err <= tol:  # also catches NaN
                return (f"self-test mismatch on {n_tok} token(s), {dtype}, D={hidden} I={inter} K={top_k}: "
                        f"max error {err:.3g} > {tol:.3g}")
    except Exception as e:  # a compile error surfaces when the kernel is first evaluated
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return f"self-test failed to run ({first})"
    return None
