"""Incremental decoding through the KV caches equals one full forward; snapshots rewind exactly."""

import mlx.core as mx
import numpy as np

from engine import load_model


def test_prefill_then_token_by_token_matches_full_forward(tiny_dir, random_ids):
    model = load_model(tiny_dir, dtype="float32")
    ids = random_ids(model.config.vocab_size, 80, seed=3)  # window is 16: well past it
    full = np.array(model(mx.array(ids)))
    cache = model.make_cache()
    parts = [np.array(model(mx.array(ids[:, :20]), cache=cache))]
    for t in range(20, 80):
        parts.append(np.array(model(mx.array(ids[:, t:t + 1]), cache=cache)))
    steps = np.concatenate(parts, axis=1)
    assert cache.offset == 80
    assert np.abs(steps - full).max() < 1e-4


def test_chunked_prefill_matches_full_forward(tiny_dir, random_ids):
    model = load_model(tiny_dir, dtype="float32")
    ids = random_ids(model.config.vocab_size, 100, seed=4)
    full = np.array(model(mx.array(ids)))
    cache = model.make_cache()
    chunks = [np.array(model(mx.array(ids[:, a:a + 23]), cache=cache)) for a in range(0, 100, 23)]
    assert np.abs(np.concatenate(chunks, axis=1) - full).max() < 1e-4


def test_snapshot_restore_rewinds_to_the_same_logits(tiny_dir, random_ids):
    model = load_model(tiny_dir, dtype="float32")
    ids = random_ids(model.config.vocab_size, 90, seed=5)
    cache = model.make_cache()
    model(mx.array(ids[:, :50]), cache=cache)
    snap = cache.snapshot()
    model(mx.array(ids[:, 50:90]), cache=cache)  # a branch that gets thrown away
    cache.restore(snap)
    assert cache.offset == 50
    other = random_ids(model.config.vocab_size, 30, seed=6)
    resumed = np.array(model(mx.array(other), cache=cache))
    fresh = np.array(model(mx.array(np.concatenate([ids[:, :50], other], axis=1))))[:, 50:]
    assert np.abs(resumed - fresh).max() < 1e-4


# --- 8-bit KV cache (full-attention layers) -----------------------------------------------------

import pytest  # noqa: E402

from engine.cache import QuantizedFullCache  # noqa: E402
from engine.model import quantized_attention  # noqa: E402


@pytest.mark.parametrize("head_dim,group", [(64, 64), (32, 32)])
@pytest.mark.parametrize("T", [1, 7])
def test_quantized_attention_is_attention_over_the_dequantized_cache(head_dim, group, T):
    """Same softmax-with-sinks as MLX's fused attention on the dequantized keys/values: only the
    8-bit rounding of the cache may differ from a full-precision cache, never the attention."""
    B, H, KV, S = 1, 8, 2, 50
    rng = np.random.default_rng(T)
    q, k, v = (mx.array(rng.standard_normal(s).astype(np.float32) * 2)
               for s in ((B, H, T, head_dim), (B, KV, S, head_dim), (B, KV, S, head_dim)))
    sinks = mx.array(rng.standard_normal(H).astype(np.float32) + 4)  # large enough to take real mass
    kq, vq = mx.quantize(k, group_size=group, bits=8), mx.quantize(v, group_size=group, bits=8)
    kd, vd = mx.dequantize(*kq, group_size=group, bits=8), mx.dequantize(*vq, group_size=group, bits=8)
    visible = mx.arange(S - T, S)[:, None] >= mx.arange(S)[None, :]
    scale = head_dim ** -0.5
    want = mx.fast.scaled_dot_product_attention(q, kd, vd, scale=scale, mask=visible if T > 1 else None,
                                                sinks=sinks)
    got = quantized_attention(q, kq, vq, scale, sinks, visible if T > 1 else None, group, 8)
    assert np.abs(np.array(got - want)).max() < 1e-5
    # and the sinks are really in it: without them the result differs
    no_sink = quantized_attention(q, kq, vq, scale, mx.full((H,), -1e9), visible if T > 1 else None, group, 8)
    assert np.abs(np.array(no_sink - want)).max() > 1e-2


@pytest.fixture(scope="module")
def hd64_dir(tmp_path_factory):
    """head_dim 64 like gpt-oss (one quantization group per key), window 16."""
    from models.tiny import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("hd64") / "m", layers=4, experts=8, hidden=128,
                                 heads=8, kv_heads=2, head_dim=64, seed=2)


def _model_8bit(folder, dtype="float32"):
    from engine.memory import Policy

    return load_model(folder, dtype=dtype, policy=Policy(embed_on_cpu=False, kv_bits=8))


def test_policy_kv_bits_gives_an_8bit_cache_at_half_the_bytes(hd64_dir, random_ids):
    model = _model_8bit(hd64_dir, "bfloat16")
    cache = model.make_cache()
    kinds = [type(c).__name__ for c in cache.layers]
    assert kinds == ["SlidingCache", "QuantizedFullCache"] * 2
    ids = mx.array(random_ids(model.config.vocab_size, 256, seed=8))
    model(ids, cache=cache)
    model.kv_bits = None
    plain = model.make_cache()
    model(ids, cache=plain)
    full_q = sum(a.nbytes for c in cache.layers if isinstance(c, QuantizedFullCache) for a in c.state)
    full_p = sum(a.nbytes for c in plain.layers if not hasattr(c, "window") for a in c.state)
    assert full_q == full_p / 2 * (1 + 4 / 64)  # a code byte + bf16 scale and bias per 64, vs 2 bytes


def test_8bit_cache_agrees_with_the_full_precision_cache(hd64_dir, random_ids):
    model = _model_8bit(hd64_dir)
    ids = mx.array(random_ids(model.config.vocab_size, 300, seed=9))
    quant = np.array(model(ids, cache=model.make_cache()))[0]
    model.kv_bits = None
    exact = np.array(model(ids, cache=model.make_cache()))[0]
    err = np.abs(quant - exact)
    assert err.mean() / exact.std() < 0.02 and err.max() / exact.std() < 0.5
    assert (quant.argmax(-1) == exact.argmax(-1)).mean() >= 0.95
    lp_e = exact - np.logaddexp.reduce(exact, -1, keepdims=True)
    lp_q = quant - np.logaddexp.reduce(quant, -1, keepdims=True)
    assert (np.exp(lp_e) * (lp_e - lp_q)).sum(-1).mean() < 1e-3


def test_8bit_cache_chunked_and_token_by_token_equal_one_pass(hd64_dir, random_ids):
    """Each key row is quantized on its own: how the prompt is cut changes nothing."""
    model = _model_8bit(hd64_dir)
    ids = random_ids(model.config.vocab_size, 120, seed=10)
    full = np.array(model(mx.array(ids), cache=model.make_cache()))
    cache = model.make_cache()
    parts = [np.array(model(mx.array(ids[:, a:a + 37]), cache=cache)) for a in range(0, 74, 37)]
    parts += [np.array(model(mx.array(ids[:, t:t + 1]), cache=cache)) for t in range(74, 120)]
    assert cache.offset == 120
    assert np.abs(np.concatenate(parts, axis=1) - full).max() < 1e-4


def test_snapshot_restore_with_the_8bit_cache(hd64_dir, random_ids):
    model = _model_8bit(hd64_dir)
    ids = random_ids(model.config.vocab_size, 300, seed=11)  # crosses a 256-row growth step
    cache = model.make_cache()
    model(mx.array(ids[:, :200]), cache=cache)
    snap = cache.snapshot()
    model(mx.array(ids[:, 200:300]), cache=cache)  # a branch that gets thrown away
    cache.restore(snap)
    assert cache.offset == 200
    other = random_ids(model.config.vocab_size, 80, seed=12)
    resumed = np.array(model(mx.array(other), cache=cache))
    fresh = np.array(model(mx.array(np.concatenate([ids[:, :200], other], axis=1)), cache=model.make_cache()))
    assert np.abs(resumed - fresh[:, 200:]).max() < 1e-4
