"""engine.metal_kernels.choose_experts, called once when a model is built: when the kernels run, the
first-use self-test, the switch-off and GPT_OSS_KERNELS (read at load, never per call). Metal is not here, so `experts_metal` is replaced by the same .metal source run
through the CPU harness: that also checks the kernels against engine.moe.experts_mlx (MLX's own
mxfp4 gather_qmm), a reference independent of ours.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from metal_harness import Arg, clang, run_launch, to_bf16_bits

mx = pytest.importorskip("mlx.core")
pytestmark = pytest.mark.skipif(clang() is None, reason="clang is not installed (apt-get install clang)")

import engine.metal_kernels as mk  # noqa: E402
from engine.metal_kernels import build, launch as L, selftest  # noqa: E402

D, I, K = 96, 64, 4


def _np_arg(a, dtype):
    f = np.array(a.astype(mx.float32))
    return Arg(to_bf16_bits(f), "bfloat16") if dtype == "bfloat16" else Arg(f, dtype)


def harness_experts(gate_up_body=None):
    """An experts_metal that runs the kernels' source on the CPU (optionally a mutated gate_up)."""

    def run(x, idx, weights, ew, limit):
        if x.shape[0] > build.GEMV_MAX_TOKENS:
            return harness_gemm(x, idx, weights, ew, limit)
        n_tok, hidden = x.shape
        top_k = idx.shape[1]
        inter = ew.down_blocks.shape[-1] * 8
        dt = build.DTYPE_NAMES[x.dtype]
        ids = Arg(np.array(idx.astype(mx.uint32)), "uint32")
        (h,) = run_launch(L.gate_up_launch(n_tok, top_k, hidden, inter, dt),
                          [_np_arg(x, dt), ids, Arg(np.array(ew.gate_up_blocks), "uint32"),
                           Arg(np.array(ew.gate_up_scales), "uint8"), _np_arg(ew.gate_up_bias, dt),
                           Arg(np.array(limit, np.float32), "float32")], body=gate_up_body)
        (y,) = run_launch(L.down_launch(n_tok, top_k, hidden, inter, dt),
                          [Arg(h, "float32"), ids, _np_arg(weights, dt), Arg(np.array(ew.down_blocks), "uint32"),
                           Arg(np.array(ew.down_scales), "uint8"), _np_arg(ew.down_bias, dt)])
        return mx.array(y).astype(x.dtype)

    return run


def harness_gemm(x, idx, weights, ew, limit):
    """build.experts_metal_gemm with the two GEMM kernels run by the CPU harness."""
    n_tok, hidden = x.shape
    top_k = idx.shape[1]
    inter = ew.down_blocks.shape[-1] * 8
    dt = build.DTYPE_NAMES[x.dtype]
    flat = np.array(idx.astype(mx.uint32)).reshape(-1)
    order = np.argsort(flat, kind="stable").astype(np.uint32)
    srt = [Arg(order, "uint32"), Arg(flat[order], "uint32")]
    (h,) = run_launch(L.gate_up_gemm_launch(n_tok, top_k, hidden, inter, dt),
                      [_np_arg(x, dt), *srt, Arg(np.array(ew.gate_up_blocks), "uint32"),
                       Arg(np.array(ew.gate_up_scales), "uint8"), _np_arg(ew.gate_up_bias, dt),
                       Arg(np.array(limit, np.float32), "float32")])
    (y,) = run_launch(L.down_gemm_launch(n_tok, top_k, hidden, inter, dt),
                      [Arg(h, "float32"), *srt, _np_arg(weights, dt), Arg(np.array(ew.down_blocks), "uint32"),
                       Arg(np.array(ew.down_scales), "uint8"), _np_arg(ew.down_bias, dt)])
    return mx.array(y.reshape(n_tok, top_k, hidden).sum(axis=1)).astype(x.dtype)


@pytest.fixture
def on_metal(monkeypatch):
    """Pretend Metal is here and route the kernels through the CPU harness."""
    mk.reset_session()
    monkeypatch.delenv(mk.ENV_VAR, raising=False)
    monkeypatch.setattr(mk, "metal_available", lambda: True)
    monkeypatch.setattr(build, "experts_metal", harness_experts())
    monkeypatch.setattr(mk, "SELF_TEST_TOKENS", (1, 3))
    monkeypatch.setattr(selftest, "SELF_TEST_TOKENS", (1, 3))
    yield
    mk.reset_session()


def _inputs(dtype, n_tok=2, seed=0):
    key = mx.random.key(seed)
    ew = selftest.random_experts(6, D, I, dtype, key)
    x = mx.random.normal((n_tok, D), key=mx.random.key(seed + 1)).astype(dtype)
    idx = mx.array(np.stack([np.random.default_rng(seed + n).permutation(6)[:K] for n in range(n_tok)]),
                   dtype=mx.uint32)
    w = mx.softmax(mx.random.normal((n_tok, K), key=mx.random.key(seed + 2)), axis=-1).astype(dtype)
    return x, idx, w, ew


def choose(dtype):
    from engine.moe import experts_mlx

    return mk.choose_experts(dtype, D, I, K, 7.0, reference=experts_mlx)


def test_off_without_metal_logs_one_line(monkeypatch, caplog):
    mk.reset_session()
    monkeypatch.setattr(mk, "metal_available", lambda: False)
    with caplog.at_level(logging.INFO, logger="engine.metal_kernels"):
        assert choose(mx.float32) is None
        assert choose(mx.float32) is None
    assert len([r for r in caplog.records if "Metal is not available" in r.message]) == 1


@pytest.mark.parametrize("dtype,tol", [(mx.float32, 1e-4), (mx.bfloat16, 3e-2)])
def test_kernels_agree_with_mlx_gather_qmm_and_pass_the_self_test(on_metal, dtype, tol):
    from engine.moe import experts_mlx

    x, idx, w, ew = _inputs(dtype, n_tok=3)
    experts = choose(dtype)
    assert experts is not None and mk._off_reason is None and len(mk._tested) == 1
    got = experts(x, idx, w, ew, 7.0)
    assert got.shape == (3, D) and got.dtype == dtype
    want = experts_mlx(x, idx, w, ew).astype(mx.float32)
    err = mx.max(mx.abs(got.astype(mx.float32) - want)).item()
    assert err <= tol * mx.max(mx.abs(want)).item()


def test_failed_self_test_switches_off_for_the_session(on_metal, monkeypatch, caplog):
    broken = L.GATE_UP.source().replace("s[r * NB + b]", "s[b]")
    assert broken != L.GATE_UP.source()
    monkeypatch.setattr(build, "experts_metal", harness_experts(gate_up_body=broken))
    with caplog.at_level(logging.WARNING, logger="engine.metal_kernels"):
        assert choose(mx.float32) is None
        assert choose(mx.float32) is None  # stays off, no second test or log line
    lines = [r.message for r in caplog.records if "switched off" in r.message]
    assert len(lines) == 1 and "self-test mismatch" in lines[0]


def test_compile_error_switches_off(on_metal, monkeypatch):
    monkeypatch.setattr(build, "experts_metal", harness_experts(gate_up_body="this is not metal;"))
    assert choose(mx.float32) is None
    assert "failed to run" in mk._off_reason


def test_env_var_forces_either_path_and_is_read_at_load_only(on_metal, monkeypatch):
    broken = L.GATE_UP.source().replace("s[r * NB + b]", "s[b]")
    monkeypatch.setattr(build, "experts_metal", harness_experts(gate_up_body=broken))
    x, idx, w, ew = _inputs(mx.float32)
    monkeypatch.setenv(mk.ENV_VAR, "mlx")
    assert choose(mx.float32) is None
    monkeypatch.setenv(mk.ENV_VAR, "metal")  # no self-test gate: the (broken) kernels run
    experts = choose(mx.float32)
    assert experts is not None and mk._off_reason is None
    monkeypatch.setenv(mk.ENV_VAR, "mlx")  # too late: the choice was made when the model was built
    monkeypatch.setattr(mk, "mode", lambda: pytest.fail("the hot path read the setting"))
    monkeypatch.setattr(mk, "metal_available", lambda: pytest.fail("the hot path probed Metal"))
    assert experts(x, idx, w, ew, 7.0).shape == (2, D)


def test_prefill_goes_to_mlx_in_auto_mode_and_to_the_gemms_when_forced(on_metal, monkeypatch):
    from engine.moe import experts_mlx

    x, idx, w, ew = _inputs(mx.float32, n_tok=build.GEMV_MAX_TOKENS + 1)
    calls = []

    def reference(*a):
        calls.append(a[0].shape[0])
        return experts_mlx(*a)

    assert not mk.PREFILL_KERNELS
    auto = mk.choose_experts(mx.float32, D, I, K, 7.0, reference=reference)
    calls.clear()  # the self-test's own calls
    auto(x, idx, w, ew, 7.0)
    assert calls == [build.GEMV_MAX_TOKENS + 1]
    monkeypatch.setenv(mk.ENV_VAR, "metal")
    got = mk.choose_experts(mx.float32, D, I, K, 7.0, reference=reference)(x, idx, w, ew, 7.0)
    want = experts_mlx(x, idx, w, ew).astype(mx.float32)
    assert calls == [build.GEMV_MAX_TOKENS + 1]  # the GEMM kernels ran, not the reference
    assert mx.max(mx.abs(got - want)).item() <= 1e-4 * mx.max(mx.abs(want)).item()


def test_the_loader_binds_the_chosen_backend_to_every_layer(on_metal, tmp_path, monkeypatch):
    from engine import load_model
    from engine.moe import experts_mlx
    from models.tiny import write_tiny_checkpoint

    folder = write_tiny_checkpoint(tmp_path / "m", layers=2, experts=8, hidden=D, intermediate=I, seed=0)
    with_kernels = load_model(folder, dtype="float32")
    assert all(b.moe.compute.__name__ == "experts_kernels" for b in with_kernels.blocks)
    monkeypatch.setenv(mk.ENV_VAR, "mlx")
    plain = load_model(folder, dtype="float32")
    assert all(b.moe.compute is experts_mlx for b in plain.blocks)
    ids = mx.array([[1, 2, 3]])  # 3 tokens: the GEMV kernels
    got, want = with_kernels(ids)[0, -1], plain(ids)[0, -1]
    assert mx.max(mx.abs(got - want)).item() <= 1e-3 * mx.max(mx.abs(want)).item()
