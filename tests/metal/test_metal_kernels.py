"""The shipped .metal source of the MXFP4 expert kernels, compiled with clang against a Metal shim
and run on the CPU lane by lane, compared with the NumPy reference built on engine/mxfp4.py.

Sizes hit the boundaries that matter: D = 2880 (90 blocks: lanes get 3 or 2 blocks) and other odd
block counts (3, 5, 7), I = 2880 on the down side, 1/2/7/33 tokens, 1-4 experts per token, the
first and last expert ids, every FP4 code, and the E8M0 scale bytes 0, 1, 127 and 254.
"""

from __future__ import annotations

import numpy as np
import pytest

import metal_reference as ref
from metal_harness import Arg, KernelError, clang, from_bf16_bits, run_kernel, run_launch, to_bf16_bits

from engine import mxfp4
from engine.metal_kernels import launch as L

pytestmark = pytest.mark.skipif(clang() is None, reason="clang is not installed (apt-get install clang): "
                                "the Metal source can't be compiled on the CPU")
LIMIT = 7.0


def make_case(seed, n_tok, top_k, n_exp, hidden, inter, extreme_scales=False, top_scale=254):
    """Random inputs; expert ids always include the first (0) and the last (E - 1).
    top_scale: the largest scale byte used with extreme_scales (the GEMMs dequantise weights to
    float32 before multiplying, so 6 * 2^(s-127) must stay finite: s <= 252 there)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_tok, hidden)).astype(np.float32)
    idx = np.stack([rng.choice(n_exp, top_k, replace=False) for _ in range(n_tok)]).astype(np.uint32)
    idx[0, 0] = 0
    idx[-1, -1] = n_exp - 1
    if top_k > 1 or n_tok > 1:
        assert {0, n_exp - 1} <= set(idx.flatten().tolist())
    logits = rng.standard_normal((n_tok, top_k))
    weights = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)

    def blocks(rows, k):
        # Every FP4 code appears: random bytes cover both nibbles of all 16 codes many times.
        return rng.integers(0, 256, (n_exp, rows, k // 32, 16), dtype=np.uint8)

    def scales(rows, k, lo, hi):
        return rng.integers(lo, hi, (n_exp, rows, k // 32)).astype(np.uint8)

    c = dict(x=x, idx=idx, weights=weights,
             gu_blocks=blocks(2 * inter, hidden), gu_scales=scales(2 * inter, hidden, 118, 124),
             gu_bias=rng.standard_normal((n_exp, 2 * inter)).astype(np.float32),
             dn_blocks=blocks(hidden, inter), dn_scales=scales(hidden, inter, 118, 124),
             dn_bias=rng.standard_normal((n_exp, hidden)).astype(np.float32))
    if extreme_scales:
        # Block 1 of x is tiny and meets scale 254 (2^127) or 127; block 2 is huge and meets scale
        # 0 (2^-127, where a plain `s << 23` would give 0) or 1. Every product stays finite.
        assert hidden >= 96
        x[:, 32:64] *= 2.0 ** -120
        x[:, 64:96] *= 2.0 ** 120
        c["gu_scales"][:, :, 1] = rng.choice(np.array([127, top_scale], np.uint8), c["gu_scales"].shape[:2])
        c["gu_scales"][:, :, 2] = rng.choice(np.array([0, 1], np.uint8), c["gu_scales"].shape[:2])
    return c


def _cast(a, dtype):
    """(array the kernel gets, the values it represents as float32)."""
    if dtype == "bfloat16":
        bits = to_bf16_bits(a)
        return Arg(bits, dtype), from_bf16_bits(bits)
    return Arg(np.ascontiguousarray(a, np.float32), dtype), a.astype(np.float32)


def run_gate_up(c, dtype="float32", body=None, header=None, seed=0):
    n_tok, top_k = c["idx"].shape
    n_exp, rows, nb, _ = c["gu_blocks"].shape
    x_arg, x = _cast(c["x"], dtype)
    b_arg, bias = _cast(c["gu_bias"], dtype)
    launch = L.gate_up_launch(n_tok, top_k, nb * 32, rows // 2, dtype)
    args = [x_arg, Arg(c["idx"], "uint32"), Arg(mxfp4.blocks_as_uint32(c["gu_blocks"]), "uint32"),
            Arg(c["gu_scales"], "uint8"), b_arg, Arg(np.array(LIMIT, np.float32), "float32")]
    (h,) = run_launch(launch, args, body=body, header=header, shuffle_seed=seed)
    return h, ref.gate_up(x, c["idx"], c["gu_blocks"], c["gu_scales"], bias, LIMIT)


def run_down(c, h, dtype="float32", body=None, header=None, seed=0):
    n_tok, top_k = c["idx"].shape
    n_exp, hidden, nb, _ = c["dn_blocks"].shape
    w_arg, w = _cast(c["weights"], dtype)
    b_arg, bias = _cast(c["dn_bias"], dtype)
    launch = L.down_launch(n_tok, top_k, hidden, nb * 32, dtype)
    args = [Arg(np.ascontiguousarray(h, np.float32), "float32"), Arg(c["idx"], "uint32"), w_arg,
            Arg(mxfp4.blocks_as_uint32(c["dn_blocks"]), "uint32"), Arg(c["dn_scales"], "uint8"), b_arg]
    (y,) = run_launch(launch, args, body=body, header=header, shuffle_seed=seed)
    return y, ref.down(h.astype(np.float64), c["idx"], w, c["dn_blocks"], c["dn_scales"], bias)


def assert_close(got, want, rtol):
    """Element-wise closeness scaled by the output's magnitude (float32 sums of thousands of terms)."""
    assert np.isfinite(got).all(), "the kernel left NaN/inf (unwritten element or unsynchronised read)"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * float(np.abs(want).max()))


# ---- the shipped kernels against the reference -----------------------------------------------

@pytest.mark.parametrize("n_tok", [1, 2, 7, 33])
def test_gate_up_and_down_at_gpt_oss_hidden_size(n_tok):
    c = make_case(n_tok, n_tok, 4, 8, 2880, 96)
    h, h_ref = run_gate_up(c)
    assert_close(h, h_ref, 1e-5)
    y, y_ref = run_down(c, h)
    assert_close(y, y_ref, 1e-5)


@pytest.mark.parametrize("top_k,hidden,inter", [(1, 160, 224), (2, 96, 160), (3, 224, 96)])
def test_odd_block_counts_and_fewer_experts(top_k, hidden, inter):
    c = make_case(10 + top_k, 7, top_k, 5, hidden, inter)
    h, h_ref = run_gate_up(c)
    assert_close(h, h_ref, 1e-5)
    y, y_ref = run_down(c, h)
    assert_close(y, y_ref, 1e-5)


def test_down_at_gpt_oss_intermediate_size():
    c = make_case(3, 2, 2, 4, 96, 2880)
    h = np.random.default_rng(3).standard_normal((2, 2, 2880)).astype(np.float32)
    y, y_ref = run_down(c, h)
    assert_close(y, y_ref, 1e-5)


def test_scale_bytes_0_1_127_254():
    c = make_case(4, 2, 2, 3, 2880, 96, extreme_scales=True)
    h, h_ref = run_gate_up(c)
    assert_close(h, h_ref, 1e-5)


def test_bfloat16_activations_and_output():
    c = make_case(5, 7, 4, 8, 2880, 96)
    h, h_ref = run_gate_up(c, "bfloat16")
    assert_close(h, h_ref, 1e-5)  # x is rounded to bf16 in the reference too; accumulation is float
    y, y_ref = run_down(c, h, "bfloat16")
    assert_close(y, y_ref, 2 ** -8)  # one bf16 rounding of the output


def test_shuffled_lane_and_group_order_gives_the_same_bits():
    c = make_case(6, 7, 4, 8, 2880, 96)
    h0, _ = run_gate_up(c)
    h1, _ = run_gate_up(c, seed=1234)
    np.testing.assert_array_equal(h0, h1)
    y0, _ = run_down(c, h0)
    y1, _ = run_down(c, h0, seed=99)
    np.testing.assert_array_equal(y0, y1)


def test_helpers_decode_every_code_and_scale_byte_exactly():
    """The header's FP4 and E8M0 decoders against engine/mxfp4.py, bit for bit."""
    body = """
    const uint i = thread_position_in_grid.x;
    out[i] = i < 16u ? mxfp4_e2m1_to_float(i) : mxfp4_e8m0_to_float((i - 16u) & 255u);
    """
    (got,) = run_kernel("decode_tables_f32", ("unused",), ("out",), body,
                        (L.HELPERS_FILE, L.helpers_source()), [Arg(np.zeros(8, np.float32), "float32")],
                        [(288,)], ["float32"], (288, 1, 1), (32, 1, 1))
    np.testing.assert_array_equal(got[:16].view(np.uint32), mxfp4.FP4_VALUES.view(np.uint32))  # -0 too
    want = mxfp4.scale_values(np.arange(255, dtype=np.uint8))
    np.testing.assert_array_equal(got[16:16 + 255], want)
    assert np.isinf(got[16 + 255])  # byte 255 (NaN in the spec) comes out as inf: documented


# ---- the suite can fail: planted bugs in copies of the source are caught ---------------------

def _mutate(text, old, new):
    assert text.count(old) == 1, f"mutation anchor not found exactly once: {old!r}"
    return text.replace(old, new)


MUTATIONS = {
    "swapped nibble order": ("header", "(bits >> (4 * p))", "(bits >> (4 * (p ^ 1)))"),
    "scale byte 0 read as +0": ("header", "s == 0u ? as_type<float>(0x00400000u) : ", ""),
    "wrong scale index": ("gate_up", "s[r * NB + b]", "s[b * 2 * ROWS + r]"),
    "off-by-one row": ("gate_up", "2 * INTER + 2 * j0);", "2 * INTER + 2 * j0 + 1);"),
    "dropped barrier": ("down", "threadgroup_barrier(mem_flags::mem_threadgroup);", ""),
    "divergent simd_sum": ("down", "acc[r] = simd_sum(acc[r]);", "if (lane < 16) acc[r] = simd_sum(acc[r]);"),
}


def _check_all(c, header=None, gate_up_body=None, down_body=None):
    h, h_ref = run_gate_up(c, header=header, body=gate_up_body)
    assert_close(h, h_ref, 1e-5)
    y, y_ref = run_down(c, h_ref.astype(np.float32), header=header, body=down_body)
    assert_close(y, y_ref, 1e-5)


@pytest.mark.parametrize("bug", sorted(MUTATIONS))
def test_planted_bug_is_caught(bug):
    where, old, new = MUTATIONS[bug]
    c = make_case(7, 2, 3, 5, 224, 96, extreme_scales=True)
    _check_all(c)  # the unmutated source passes on exactly this case
    texts = {"header": L.helpers_source(), "gate_up": L.GATE_UP.source(), "down": L.DOWN.source()}
    texts[where] = _mutate(texts[where], old, new)
    with pytest.raises((AssertionError, KernelError)) as caught:
        _check_all(c, header=texts["header"], gate_up_body=texts["gate_up"], down_body=texts["down"])
    if bug == "divergent simd_sum":
        assert "divergent" in str(caught.value) and "line" in str(caught.value)


# ---- prefill GEMMs over (token, slot) pairs sorted by expert ------------------------------------

def run_gemms(c, dtype="float32", gate_up_body=None, down_body=None, seed=0):
    """Both GEMM kernels as build.experts_metal_gemm chains them; returns (y [N, D], reference)."""
    n_tok, top_k = c["idx"].shape
    _, rows, nb, _ = c["gu_blocks"].shape
    hidden, inter = nb * 32, rows // 2
    flat = c["idx"].reshape(-1).astype(np.uint32)
    order = np.argsort(flat, kind="stable").astype(np.uint32)
    experts = flat[order]
    x_arg, x = _cast(c["x"], dtype)
    gb_arg, gbias = _cast(c["gu_bias"], dtype)
    w_arg, w = _cast(c["weights"], dtype)
    db_arg, dbias = _cast(c["dn_bias"], dtype)
    (h,) = run_launch(L.gate_up_gemm_launch(n_tok, top_k, hidden, inter, dtype),
                      [x_arg, Arg(order, "uint32"), Arg(experts, "uint32"),
                       Arg(mxfp4.blocks_as_uint32(c["gu_blocks"]), "uint32"), Arg(c["gu_scales"], "uint8"),
                       gb_arg, Arg(np.array(LIMIT, np.float32), "float32")], body=gate_up_body, shuffle_seed=seed)
    h_ref = ref.gate_up(x, c["idx"], c["gu_blocks"], c["gu_scales"], gbias, LIMIT)
    assert_close(h, h_ref.reshape(-1, inter)[order], 1e-5)
    (y,) = run_launch(L.down_gemm_launch(n_tok, top_k, hidden, inter, dtype),
                      [Arg(h, "float32"), Arg(order, "uint32"), Arg(experts, "uint32"), w_arg,
                       Arg(mxfp4.blocks_as_uint32(c["dn_blocks"]), "uint32"), Arg(c["dn_scales"], "uint8"),
                       db_arg], body=down_body, shuffle_seed=seed)
    y_ref = ref.down(h_ref, c["idx"], w, c["dn_blocks"], c["dn_scales"], dbias)
    return y.reshape(n_tok, top_k, hidden).sum(axis=1), y_ref


@pytest.mark.parametrize("n_tok,top_k,n_exp", [(33, 4, 8), (7, 3, 5), (1, 1, 3)])
def test_prefill_gemms(n_tok, top_k, n_exp):
    # 33 tokens x 4 = 132 pairs: 5 row tiles, most holding several experts, the last one partial.
    c = make_case(20 + n_tok, n_tok, top_k, n_exp, 160, 96, extreme_scales=True, top_scale=252)
    y, y_ref = run_gemms(c)
    assert_close(y, y_ref, 1e-5)


def test_prefill_gemms_at_gpt_oss_hidden_size_bf16():
    c = make_case(30, 9, 4, 8, 2880, 64)
    y, y_ref = run_gemms(c, "bfloat16", seed=5)
    assert_close(y, y_ref, 1e-5)


GEMM_MUTATIONS = {
    "dropped barrier before the MMA": ("gate_up", 3, "    threadgroup_barrier(mem_flags::mem_threadgroup);\n    for (int kk", "    for (int kk"),
    "expert pass skipped": ("down", 1, "  if (e == e_last) break;", "  break;"),
    "swapped sub-tile": ("down", 1, "&Cs[sm * 16 + 8 * i][sn * 16 + 8 * j]", "&Cs[sm * 16 + 8 * j][sn * 16 + 8 * i]"),
}


@pytest.mark.parametrize("bug", sorted(GEMM_MUTATIONS))
def test_planted_gemm_bug_is_caught(bug):
    where, _, old, new = (GEMM_MUTATIONS[bug][0],) + GEMM_MUTATIONS[bug][1:]
    c = make_case(40, 9, 4, 8, 160, 96)
    y, y_ref = run_gemms(c)
    assert_close(y, y_ref, 1e-5)
    texts = {"gate_up": L.GATE_UP_GEMM.source(), "down": L.DOWN_GEMM.source()}
    texts[where] = _mutate(texts[where], old, new)
    with pytest.raises((AssertionError, KernelError)):
        y, y_ref = run_gemms(c, gate_up_body=texts["gate_up"], down_body=texts["down"])
        assert_close(y, y_ref, 1e-5)
