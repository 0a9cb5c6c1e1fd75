"""The kernels on a real GPU: only runs on an Apple-silicon Mac (.github/workflows/metal.yml).

At gpt-oss-20b's sizes (D = I = 2880, K = 4) against engine.moe.experts_mlx and, in float32,
against the NumPy reference; plus the first-use self-test and the dispatch in auto mode.
"""

from __future__ import annotations

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")

import engine.metal_kernels as mk  # noqa: E402
from engine.metal_kernels import build, selftest  # noqa: E402

pytestmark = pytest.mark.skipif(not mk.metal_available(), reason="needs Metal (an Apple-silicon Mac)")

D = I = 2880
K, E = 4, 8


@pytest.fixture(scope="module")
def experts():
    ew = {dt: selftest.random_experts(E, D, I, dt, mx.random.key(7)) for dt in (mx.float32, mx.bfloat16)}
    mx.eval([vars(e) for e in ew.values()])
    return ew


def _inputs(n_tok, dtype, seed):
    rng = np.random.default_rng(seed)
    x = mx.array(rng.standard_normal((n_tok, D)).astype(np.float32)).astype(dtype)
    ids = np.stack([rng.permutation(E)[:K] for _ in range(n_tok)])
    ids[0, 0], ids[-1, -1] = 0, E - 1  # first and last expert
    w = mx.softmax(mx.array(rng.standard_normal((n_tok, K)).astype(np.float32)), axis=-1).astype(dtype)
    return x, mx.array(ids.astype(np.uint32)), w


@pytest.mark.parametrize("n_tok", [1, 2, 7, 16])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_kernels_match_mlx_at_gpt_oss_sizes(experts, n_tok, dtype):
    from engine.moe import experts_mlx

    dt = build.DTYPES[dtype]
    x, idx, w = _inputs(n_tok, dt, n_tok)
    got = build.experts_metal(x, idx, w, experts[dt], 7.0).astype(mx.float32)
    want = experts_mlx(x, idx, w, experts[dt], 7.0).astype(mx.float32)
    err = mx.max(mx.abs(got - want)).item()
    assert err <= selftest.TOLERANCE[dt] * mx.max(mx.abs(want)).item()


def test_float32_kernels_match_the_numpy_reference(experts):
    import metal_reference as ref

    ew = experts[mx.float32]
    x, idx, w = _inputs(3, mx.float32, 0)
    got = np.array(build.experts_metal(x, idx, w, ew, 7.0))

    def blocks(b):  # [E, R, C/8] uint32 -> [E, R, C/32, 16] uint8
        a = np.array(b)
        return a.view(np.uint8).reshape(a.shape[0], a.shape[1], -1, 16)

    h = ref.gate_up(np.array(x), np.array(idx), blocks(ew.gate_up_blocks), np.array(ew.gate_up_scales),
                    np.array(ew.gate_up_bias), 7.0)
    y = ref.down(h, np.array(idx), np.array(w), blocks(ew.down_blocks), np.array(ew.down_scales),
                 np.array(ew.down_bias))
    np.testing.assert_allclose(got, y, rtol=1e-4, atol=1e-4 * np.abs(y).max())


@pytest.mark.parametrize("dtype", [mx.float32, mx.bfloat16])
def test_self_test_passes_on_this_gpu(dtype):
    from engine.moe import experts_mlx

    assert selftest.self_test(D, I, K, dtype, 7.0, experts_mlx) is None


def test_auto_mode_uses_the_kernels_for_decode(experts, monkeypatch):
    monkeypatch.delenv(mk.ENV_VAR, raising=False)
    mk.reset_session()
    from engine.moe import experts_mlx

    x, idx, w = _inputs(1, mx.bfloat16, 3)
    fused = mk.choose_experts(mx.bfloat16, D, I, K, 7.0, reference=experts_mlx)
    assert fused is not None and mk._off_reason is None
    assert fused(x, idx, w, experts[mx.bfloat16], 7.0).shape == (1, D)
