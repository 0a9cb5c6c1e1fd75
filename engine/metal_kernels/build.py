"""Builds the MXFP4 expert kernels with mx.fast.metal_kernel (once per kernel and dtype) and runs them.

Only used where Metal is available; __init__.py decides whether to call it.

# N tokens, K experts per token, E experts, D hidden, I expert intermediate
"""

from __future__ import annotations

import mlx.core as mx

from . import launch as L

DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}

GEMV_MAX_TOKENS = 16  # above this the GEMVs would re-read each expert once per token

_built: dict[str, object] = {}


def _kernel(launch: L.Launch):
    """The mx.fast.metal_kernel for this launch's kernel and dtype, built on first use."""
    kernel = _built.get(launch.kernel_name)
    if kernel is None:
        spec = launch.spec
        kernel = mx.fast.metal_kernel(
            name=launch.kernel_name,
            input_names=list(spec.input_names),
            output_names=list(spec.output_names),
            source=spec.source(),
            header=L.helpers_source(),
        )
        _built[launch.kernel_name] = kernel
    return kernel


def run(launch: L.Launch, inputs: list[mx.array]) -> list[mx.array]:
    """Launch one kernel (lazy, like any MLX op)."""
    template = [(name, DTYPES[v] if isinstance(v, str) else v) for name, v in launch.template]
    return _kernel(launch)(
        inputs=inputs,
        template=template,
        grid=launch.grid,
        threadgroup=launch.threadgroup,
        output_shapes=[tuple(s) for s in launch.output_shapes],
        output_dtypes=[DTYPES[d] for d in launch.output_dtypes],
    )


def experts_metal(x: mx.array, idx: mx.array, weights: mx.array, ew, limit: float) -> mx.array:
    """x [N, D], idx [N, K], weights [N, K] -> [N, D]: the GEMV kernels up to GEMV_MAX_TOKENS
    tokens, the sorted GEMM kernels above."""
    if x.shape[0] > GEMV_MAX_TOKENS:
        return experts_metal_gemm(x, idx, weights, ew, limit)
    return experts_metal_gemv(x, idx, weights, ew, limit)


def experts_metal_gemv(x: mx.array, idx: mx.array, weights: mx.array, ew, limit: float) -> mx.array:
    """Decode: two fused GEMV kernels. Intermediate h [N, K, I] stays float32 (46 KB a token)."""
    n_tok, hidden = x.shape
    top_k = idx.shape[1]
    inter = ew.down_blocks.shape[-1] * 8
    dtype = DTYPE_NAMES[x.dtype]
    idx = idx.astype(mx.uint32)
    (h,) = run(L.gate_up_launch(n_tok, top_k, hidden, inter, dtype),
               [x, idx, ew.gate_up_blocks, ew.gate_up_scales, ew.gate_up_bias.astype(x.dtype),
                mx.array(limit, dtype=mx.float32)])
    (y,) = run(L.down_launch(n_tok, top_k, hidden, inter, dtype),
               [h, idx, weights.astype(x.dtype), ew.down_blocks, ew.down_scales, ew.down_bias.astype(x.dtype)])
    return y


def experts_metal_gemm(x: mx.array, idx: mx.array, weights: mx.array, ew, limit: float) -> mx.array:
    """Prefill: (token, slot) pairs sorted by expert, two fused GEMM kernels, then the sum over K."""
    n_tok, hidden = x.shape
    top_k = idx.shape[1]
    inter = ew.down_blocks.shape[-1] * 8
    dtype = DTYPE_NAMES[x.dtype]
    flat = idx.flatten().astype(mx.uint32)
    order = mx.argsort(flat).astype(mx.uint32)  # pair indices grouped by expert, on the GPU
    experts = flat[order]
    (h,) = run(L.gate_up_gemm_launch(n_tok, top_k, hidden, inter, dtype),
               [x, order, experts, ew.gate_up_blocks, ew.gate_up_scales, ew.gate_up_bias.astype(x.dtype),
                mx.array(limit, dtype=mx.float32)])
    (y,) = run(L.down_gemm_launch(n_tok, top_k, hidden, inter, dtype),
               [h, order, experts, weights.astype(x.dtype), ew.down_blocks, ew.down_scales,
                ew.down_bias.astype(x.dtype)])
    return y.reshape(n_tok, top_k, hidden).sum(axis=1).astype(x.dtype)
