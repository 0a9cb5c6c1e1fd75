"""What each MXFP4 expert kernel is and how it is launched: names, sources, template arguments, grids.

Pure Python (no MLX), so that the MLX dispatcher (build.py) and the CPU harness of the tests
(tests/metal/harness.py) launch the very same source with the very same geometry.

# N tokens, K experts per token (slots), E experts, D hidden, I expert intermediate
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
HELPERS_FILE = "mxfp4_helpers.metal"

# Threadgroup geometry; the .metal files state the same numbers in their launch comments.
SIMD_WIDTH = 32
GATE_UP_SIMDGROUPS = 2  # SIMD-groups per threadgroup
GATE_UP_ROWS = 4  # outputs (pairs of gate/up rows) per SIMD-group
DOWN_ROWS = 4  # outputs per threadgroup (one SIMD-group per slot)
GEMM_TILE = 32  # prefill GEMMs: 32 sorted pairs x 32 weight rows per threadgroup
GEMM_THREADS = 128  # 4 SIMD-groups, 2 x 2 sub-tiles of 16 x 16

# Metal type names MLX writes into the generated signature, by dtype name.
METAL_TYPES = {
    "float32": "float",
    "float16": "float16_t",
    "bfloat16": "bfloat16_t",
    "uint32": "uint32_t",
    "uint8": "uint8_t",
    "int32": "int32_t",
}
SHORT_TYPES = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}


@dataclass(frozen=True)
class KernelSpec:
    """One kernel: its .metal body file and the parameter names of its inputs and outputs."""

    name: str
    file: str
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    def source(self) -> str:
        return (HERE / self.file).read_text()


GATE_UP = KernelSpec(
    name="mxfp4_gate_up_swiglu_gemv",
    file="mxfp4_gate_up_swiglu.metal",
    input_names=("x", "idx", "blocks", "scales", "bias", "swiglu_limit"),
    output_names=("h",),
)
DOWN = KernelSpec(
    name="mxfp4_down_combine_gemv",
    file="mxfp4_down_combine.metal",
    input_names=("h", "idx", "weights", "blocks", "scales", "bias"),
    output_names=("out",),
)
GATE_UP_GEMM = KernelSpec(
    name="mxfp4_gate_up_swiglu_gemm",
    file="mxfp4_gate_up_swiglu_gemm.metal",
    input_names=("x", "order", "experts", "blocks", "scales", "bias", "swiglu_limit"),
    output_names=("h",),
)
DOWN_GEMM = KernelSpec(
    name="mxfp4_down_gemm",
    file="mxfp4_down_gemm.metal",
    input_names=("h", "order", "experts", "weights", "blocks", "scales", "bias"),
    output_names=("y",),
)
KERNELS = (GATE_UP, DOWN, GATE_UP_GEMM, DOWN_GEMM)


def helpers_source() -> str:
    """The shared header text (helpers, no kernel) given to every kernel."""
    return (HERE / HELPERS_FILE).read_text()


@dataclass(frozen=True)
class Launch:
    """Everything mx.fast.metal_kernel needs besides the input arrays."""

    spec: KernelSpec
    kernel_name: str  # data type in the name, e.g. mxfp4_gate_up_swiglu_gemv_bf16
    template: tuple[tuple[str, object], ...]  # (name, int | dtype name)
    output_shapes: tuple[tuple[int, ...], ...]
    output_dtypes: tuple[str, ...]
    grid: tuple[int, int, int]
    threadgroup: tuple[int, int, int]


def check_shapes(n_tokens: int, top_k: int, hidden: int, inter: int) -> str | None:
    """Why these sizes can't use the kernels (one sentence), or None when they can."""
    if hidden % 32 or inter % 32:
        return f"hidden ({hidden}) and intermediate ({inter}) sizes must be multiples of 32"
    if not 1 <= top_k <= 32:
        return f"experts per token ({top_k}) must be between 1 and 32"
    if n_tokens < 1:
        return "there are no tokens"
    return None


def gate_up_launch(n_tokens: int, top_k: int, hidden: int, inter: int, dtype: str) -> Launch:
    """Launch of mxfp4_gate_up_swiglu for x [N, D] of `dtype`: h [N, K, I] float32."""
    per_group = GATE_UP_SIMDGROUPS * GATE_UP_ROWS
    assert inter % per_group == 0 and hidden % 32 == 0
    threads = GATE_UP_SIMDGROUPS * SIMD_WIDTH
    return Launch(
        spec=GATE_UP,
        kernel_name=f"{GATE_UP.name}_{SHORT_TYPES[dtype]}",
        template=(("T", dtype), ("HIDDEN", hidden), ("INTER", inter), ("TOPK", top_k)),
        output_shapes=((n_tokens, top_k, inter),),
        output_dtypes=("float32",),
        grid=(inter // per_group * threads, n_tokens * top_k, 1),
        threadgroup=(threads, 1, 1),
    )


def down_launch(n_tokens: int, top_k: int, hidden: int, inter: int, dtype: str) -> Launch:
    """Launch of mxfp4_down_combine: y [N, D] of `dtype` from h [N, K, I] float32."""
    assert hidden % DOWN_ROWS == 0 and inter % 32 == 0
    threads = top_k * SIMD_WIDTH
    return Launch(
        spec=DOWN,
        kernel_name=f"{DOWN.name}_{SHORT_TYPES[dtype]}",
        template=(("T", dtype), ("HIDDEN", hidden), ("INTER", inter), ("TOPK", top_k)),
        output_shapes=((n_tokens, hidden),),
        output_dtypes=(dtype,),
        grid=(hidden // DOWN_ROWS * threads, n_tokens, 1),
        threadgroup=(threads, 1, 1),
    )


def gate_up_gemm_launch(n_tokens: int, top_k: int, hidden: int, inter: int, dtype: str) -> Launch:
    """Launch of mxfp4_gate_up_swiglu_gemm over M = N * K sorted pairs: h [M, I] float32."""
    assert hidden % 32 == 0 and (2 * inter) % GEMM_TILE == 0
    pairs = n_tokens * top_k
    return Launch(
        spec=GATE_UP_GEMM,
        kernel_name=f"{GATE_UP_GEMM.name}_{SHORT_TYPES[dtype]}",
        template=(("T", dtype), ("HIDDEN", hidden), ("INTER", inter), ("TOPK", top_k)),
        output_shapes=((pairs, inter),),
        output_dtypes=("float32",),
        grid=(2 * inter // GEMM_TILE * GEMM_THREADS, -(-pairs // GEMM_TILE), 1),
        threadgroup=(GEMM_THREADS, 1, 1),
    )


def down_gemm_launch(n_tokens: int, top_k: int, hidden: int, inter: int, dtype: str) -> Launch:
    """Launch of mxfp4_down_gemm: y [N * K, D] float32 in pair order (the caller sums over K)."""
    assert hidden % GEMM_TILE == 0 and inter % 32 == 0
    pairs = n_tokens * top_k
    return Launch(
        spec=DOWN_GEMM,
        kernel_name=f"{DOWN_GEMM.name}_{SHORT_TYPES[dtype]}",
        template=(("T", dtype), ("HIDDEN", hidden), ("INTER", inter), ("TOPK", top_k)),
        output_shapes=((pairs, hidden),),
        output_dtypes=("float32",),
        grid=(hidden // GEMM_TILE * GEMM_THREADS, -(-pairs // GEMM_TILE), 1),
        threadgroup=(GEMM_THREADS, 1, 1),
    )
