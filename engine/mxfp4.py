"""MXFP4 (OCP microscaling): FP4 E2M1 elements, E8M0 scales, blocks of 32 values.

The one place that knows the format. Everything here is NumPy so that it can serve as the
reference for the MLX path, the Metal kernels and the tools that write checkpoints.

Layout as published in the gpt-oss checkpoint:
  blocks [..., N_BLOCKS, 16] uint8: 32 FP4 codes per block, LOW nibble = even element.
  scales [..., N_BLOCKS]     uint8: E8M0 exponent byte s, the block's scale is 2**(s - 127).
The uint8 blocks viewed as little-endian uint32 [..., N_BLOCKS * 4] are exactly what
`mx.quantize(..., mode="mxfp4", group_size=32, bits=4)` produces, so MLX uses them as they are.
"""

from __future__ import annotations

import numpy as np

BLOCK_SIZE = 32  # values per block (one scale each)
BLOCK_BYTES = 16  # two FP4 codes per byte
SCALE_BIAS = 127  # E8M0: scale byte s means 2 ** (s - 127)
SCALE_NAN = 255  # the spec's NaN scale; never written by our encoder

# FP4 E2M1 code -> value. Codes 8..15 are the negatives of 0..7 (8 is -0.0).
FP4_VALUES = np.array(
    [+0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0],
    dtype=np.float32,
)
FP4_MAX = 6.0


def scale_values(scales: np.ndarray) -> np.ndarray:
    """E8M0 bytes -> float32 scale factors (2 ** (s - 127); 255 -> NaN as in the spec)."""
    s = np.asarray(scales, dtype=np.uint8)
    with np.errstate(over="ignore"):  # 255 overflows before it is replaced by NaN
        out = np.ldexp(np.float32(1.0), s.astype(np.int32) - SCALE_BIAS).astype(np.float32)
    return np.where(s == SCALE_NAN, np.float32(np.nan), out)


def unpack_codes(blocks: np.ndarray) -> np.ndarray:
    """[..., B, 16] uint8 -> [..., B, 32] uint8 FP4 codes in element order."""
    b = np.asarray(blocks, dtype=np.uint8)
    codes = np.empty(b.shape[:-1] + (BLOCK_SIZE,), dtype=np.uint8)
    codes[..., 0::2] = b & 0x0F
    codes[..., 1::2] = b >> 4
    return codes


def pack_codes(codes: np.ndarray) -> np.ndarray:
    """[..., B, 32] FP4 codes -> [..., B, 16] uint8 blocks (even element in the low nibble)."""
    c = np.asarray(codes, dtype=np.uint8)
    return (c[..., 0::2] & 0x0F) | ((c[..., 1::2] & 0x0F) << 4)


def decode(blocks: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Blocks [..., B, 16] uint8 and scales [..., B] uint8 -> float32 [..., B * 32]."""
    codes = unpack_codes(blocks)
    with np.errstate(over="ignore", invalid="ignore"):  # 6 * 2**127 is inf, as on the GPU
        values = FP4_VALUES[codes] * scale_values(scales)[..., None]
    return values.reshape(values.shape[:-2] + (-1,))


def _round_to_fp4_codes(x: np.ndarray) -> np.ndarray:
    """Round float32 values (already divided by the block scale) to the nearest FP4 code.

    Ties go to the code with an even mantissa (round half to even), values beyond 6 saturate
    to +-6, as the OCP spec's round-to-nearest conversion does.
    """
    mag = np.minimum(np.abs(x), FP4_MAX)
    grid = FP4_VALUES[:8]  # 0, .5, 1, 1.5, 2, 3, 4, 6 (increasing)
    hi = np.clip(np.searchsorted(grid, mag, side="left"), 1, 7)
    lo = hi - 1
    d_lo = mag - grid[lo]
    d_hi = grid[hi] - mag
    # Codes with an even index have an even mantissa bit (E2M1: the code's lowest bit).
    pick_hi = (d_hi < d_lo) | ((d_hi == d_lo) & (hi % 2 == 0))
    code = np.where(pick_hi, hi, lo).astype(np.uint8)
    negative = np.signbit(x) & (code != 0)
    return code | (negative.astype(np.uint8) << 3)


def encode(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float [..., N] (N a multiple of 32) -> (blocks [..., N/32, 16] uint8, scales [..., N/32] uint8).

    The scale follows the OCP spec: 2 ** (floor(log2(max|x|)) - 2), so that the block's largest
    magnitude lands in [4, 8) before rounding (6 is FP4's largest; values above it saturate).
    """
    x = np.asarray(values, dtype=np.float32)
    if x.shape[-1] % BLOCK_SIZE:
        raise ValueError(f"the last dimension ({x.shape[-1]}) must be a multiple of {BLOCK_SIZE}")
    x = x.reshape(x.shape[:-1] + (-1, BLOCK_SIZE))
    amax = np.max(np.abs(x), axis=-1)
    with np.errstate(divide="ignore"):
        exp = np.where(amax > 0, np.floor(np.log2(np.where(amax > 0, amax, 1.0))) - 2, -SCALE_BIAS)
    s = np.clip(exp + SCALE_BIAS, 0, 254).astype(np.uint8)
    codes = _round_to_fp4_codes(x / scale_values(s)[..., None])
    return pack_codes(codes), s


def blocks_as_uint32(blocks: np.ndarray) -> np.ndarray:
    """[..., B, 16] uint8 -> [..., B * 4] uint32 (little-endian view, no copy when contiguous)."""
    b = np.ascontiguousarray(blocks, dtype=np.uint8)
    return b.reshape(b.shape[:-2] + (-1,)).view("<u4")
