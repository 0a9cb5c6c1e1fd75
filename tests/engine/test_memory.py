"""The memory planner: byte counts against independent arithmetic and against what MLX really
allocates, the policy ladder, and refusals before loading."""

from __future__ import annotations

import math

import mlx.core as mx
import pytest

from bench.fullsize_checkpoint import config_for, nbytes, tensor_specs, write_checkpoint
from engine.errors import ModelError
from engine.memory import (KV_BITS_SUPPORTED, KV_STEP, Policy, apply_wired_limit, breakdown, candidate_policies, check_fits,
                           kv_cache_bytes, plan, quantized_bytes, read_footprint)

GB = 10**9
MAC16_BUDGET = int(10.7 * GB)  # a 16 GB Mac's default GPU working set, rounded down


@pytest.fixture(scope="module")
def full20b(tmp_path_factory):
    # Real headers, zero data in holes: 13.8 GB of tensors, a few KB of disk, written in ms.
    return write_checkpoint(tmp_path_factory.mktemp("fs20") / "gpt-oss-20b", "sparse", "20b")


@pytest.fixture(scope="module")
def full120b(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("fs120") / "gpt-oss-120b", "sparse", "120b")


def test_footprint_matches_the_shapes(full20b):
    fp = read_footprint(full20b)
    specs = tensor_specs(config_for("20b"))
    experts = sum(nbytes(s, d) for n, s, d in specs if ".mlp.experts." in n)
    assert fp.expert_bytes * 24 * 32 == experts
    # The facts sheet: 10.15 GB of MXFP4 experts (4.25 bits/weight) plus their bf16 biases.
    mxfp4 = 24 * 32 * (5760 * 2880 + 2880 * 2880) * 4.25 / 8
    assert experts == pytest.approx(mxfp4 + 24 * 32 * (5760 + 2880) * 2, rel=1e-9)
    assert fp.embed_bytes == 201088 * 2880 * 2
    parts = breakdown(fp, Policy(embed_on_cpu=True))
    assert parts["embedding"] == 0
    assert parts["attention+lm_head"] == 24 * 2 * (4096 + 512 + 512 + 4096) * 2880 + 201088 * 2880 * 2


def test_quantized_bytes_match_mlx():
    w = mx.zeros((256, 512), dtype=mx.bfloat16)
    for bits in (4, 8):
        q = mx.quantize(w, group_size=64, bits=bits)
        assert quantized_bytes(256, 512, bits) == sum(a.nbytes for a in q)


def test_16gb_mac_plan_fits_with_native_mxfp4_experts(full20b):
    p = plan(full20b, context_length=4096, budget_bytes=MAC16_BUDGET)
    assert p.fits and p.peak_bytes <= MAC16_BUDGET and p.reason == ""
    assert p.policy.embed_on_cpu
    # No policy that keeps every expert resident fits 10.7 GB: residency must be on.
    assert p.policy.expert_slots is not None and 8 <= p.policy.expert_slots < 32
    assert p.context_cap >= 4096
    fp = read_footprint(full20b)
    assert p.breakdown["experts"] == 24 * p.policy.expert_slots * fp.expert_bytes


def test_richer_policy_with_more_memory(full20b):
    big = plan(full20b, 4096, budget_bytes=64 * GB)
    assert big.fits and big.policy.non_expert_bits is None and big.policy.expert_slots is None
    ladder = candidate_policies(read_footprint(full20b), 4096)
    ranks = [ladder.index(plan(full20b, 4096, budget_bytes=int(b * GB)).policy) for b in (64, 14, 12.5, 11, 9, 7)]
    assert ranks == sorted(ranks)  # less memory never gives a richer policy
    assert len(set(ranks)) > 3


def test_context_cap_is_the_edge_of_the_budget(full20b):
    p = plan(full20b, 4096, budget_bytes=MAC16_BUDGET)
    fp = read_footprint(full20b)
    from dataclasses import replace

    at_cap = sum(breakdown(fp, replace(p.policy, context_length=p.context_cap), p.prefill_chunk).values())
    beyond = sum(breakdown(fp, replace(p.policy, context_length=p.context_cap + KV_STEP), p.prefill_chunk).values())
    assert at_cap <= MAC16_BUDGET < beyond


def test_120b_on_a_16gb_mac_is_refused_before_loading(full120b):
    p = plan(full120b, 4096, budget_bytes=MAC16_BUDGET)
    assert not p.fits
    assert "GB missing" in p.reason and p.reason.endswith(".") and "\n" not in p.reason
    missing = float(p.reason.split("(")[1].split(" GB missing")[0])
    assert missing == pytest.approx((p.peak_bytes - MAC16_BUDGET) / GB, abs=0.06)
    with pytest.raises(ModelError, match="GB missing"):
        check_fits(full120b, 4096, MAC16_BUDGET)


def test_bad_context_lengths_are_refused(full20b):
    with pytest.raises(ModelError, match="at most 131072 tokens"):
        plan(full20b, 200_000, budget_bytes=MAC16_BUDGET)
    with pytest.raises(ModelError, match="at least one token"):
        plan(full20b, 0, budget_bytes=MAC16_BUDGET)
    tight = plan(full20b, 131072, budget_bytes=6 * GB)  # the KV cache alone is 3.2 GB at 128k
    assert not tight.fits and f"at most {tight.context_cap} tokens" in tight.reason


def test_missing_folder_is_a_model_error(tmp_path):
    with pytest.raises(ModelError):
        plan(tmp_path / "nowhere", 4096, budget_bytes=GB)


def test_wired_limit_is_a_noop_without_metal():
    if mx.metal.is_available():
        pytest.skip("Metal machine: the limit is really set")
    assert apply_wired_limit() is None


# --- prediction vs what MLX allocates, on a small checkpoint in the official layout -----------

@pytest.fixture
def small(small_checkpoint):
    return small_checkpoint


@pytest.mark.parametrize("policy", [Policy(), Policy(non_expert_bits=8), Policy(non_expert_bits=4, expert_slots=3),
                                    Policy(embed_on_cpu=False)])
def test_resident_weights_match_mlx_active_memory(small, policy):
    from engine.loader import load_model

    fp = read_footprint(small)
    parts = breakdown(fp, policy)
    predicted = sum(v for k, v in parts.items() if k not in ("kv_cache", "workspace"))
    mx.clear_cache()
    before = mx.get_active_memory()
    model = load_model(small, dtype="bfloat16", policy=policy)
    measured = mx.get_active_memory() - before
    # Small arrays the planner ignores (RoPE periods, sinks in float32) stay under 2%.
    assert measured == pytest.approx(predicted, rel=0.02)
    del model


@pytest.mark.parametrize("kv_bits", [None, 8])
def test_kv_cache_prediction_matches_the_cache(small, kv_bits):
    from engine.loader import load_model

    model = load_model(small, dtype="bfloat16", policy=Policy(kv_bits=kv_bits))
    cache = model.make_cache()
    tokens = 300
    model(mx.array([list(range(tokens))]), cache, last_only=True)
    mx.eval(cache.state())
    fp = read_footprint(small)
    assert cache.nbytes() == kv_cache_bytes(fp, tokens, kv_bits, chunk=tokens)  # one 300-token chunk
    assert kv_cache_bytes(fp, 4096, 8, 512) < kv_cache_bytes(fp, 4096, None, 512)
    assert math.ceil(tokens / KV_STEP) * KV_STEP >= tokens


def test_prefill_chunk_shrinks_with_the_context(full20b):
    short = plan(full20b, 2048, budget_bytes=MAC16_BUDGET)
    long = plan(full20b, 32768, budget_bytes=MAC16_BUDGET)
    assert short.prefill_chunk == 512 and 16 <= long.prefill_chunk < short.prefill_chunk
    assert long.breakdown["workspace"] < MAC16_BUDGET / 4


@pytest.mark.parametrize("kv_bits", [None, 8])
def test_prefill_workspace_prediction_covers_the_measured_peak(small, kv_bits):
    """Prefill of a 1023-token prompt in 512-token chunks: KV + workspace predicted vs measured."""
    from engine.generate import Generation, SamplingParams
    from engine.loader import load_model

    policy = Policy(context_length=1024, kv_bits=kv_bits)
    model = load_model(small, dtype="bfloat16", policy=policy)
    mx.clear_cache()
    base = mx.get_active_memory()
    mx.reset_peak_memory()
    list(Generation(model, list(range(1023)), model.make_cache(), SamplingParams(temperature=0),
                    max_tokens=1, prefill_chunk=512))
    measured = mx.get_peak_memory() - base
    parts = breakdown(read_footprint(small), policy, 512)
    predicted = parts["kv_cache"] + parts["workspace"]
    assert 0.5 * predicted <= measured <= predicted  # conservative, but not wildly so


def _best_without_8bit_kv(folder, context, budget):
    """The policy the planner chose before the 8-bit KV rung existed (same ladder, bf16 KV only)."""
    fp = read_footprint(folder)
    chunk = plan(folder, context, budget_bytes=budget).prefill_chunk
    return next(p for p in candidate_policies(fp, context)
                if p.kv_bits is None and sum(breakdown(fp, p, chunk).values()) <= budget)


def test_planner_trades_the_kv_cache_for_expert_slots_at_long_contexts(full20b):
    """On a 16 GB Mac the 8-bit KV cache buys expert slots at 32k and 128k; at 4k the bf16 cache
    already fits beside the same slots, so it stays."""
    assert 8 in KV_BITS_SUPPORTED
    short = plan(full20b, 4096, budget_bytes=MAC16_BUDGET)
    assert short.policy == _best_without_8bit_kv(full20b, 4096, MAC16_BUDGET)
    for context in (32768, 131072):
        now = plan(full20b, context, budget_bytes=MAC16_BUDGET)
        before = _best_without_8bit_kv(full20b, context, MAC16_BUDGET)
        assert now.fits and now.policy.kv_bits == 8
        assert now.policy.non_expert_bits == before.non_expert_bits
        assert now.policy.expert_slots > before.expert_slots
        assert now.breakdown["kv_cache"] < 0.55 * breakdown(read_footprint(full20b), before, now.prefill_chunk)["kv_cache"]


def test_cached_conversations_take_only_what_the_policy_leaves(full20b):
    """The prompt cache's share is computed after the policy is chosen: a 16 GB Mac keeps the same
    expert slots as a plan that knew nothing of it, and its cached tokens fit in what is left."""
    from engine.memory import PROMPT_CACHE_SHARE, cached_token_bytes

    fp = read_footprint(full20b)
    for budget in (MAC16_BUDGET, 24 * GB, 64 * GB):
        p = plan(full20b, 8192, budget_bytes=budget)
        cheapest_first = [pol for pol in candidate_policies(fp, 8192) if sum(breakdown(fp, pol, p.prefill_chunk).values()) <= budget]
        assert p.policy == cheapest_first[0]  # the richest policy that fits, as without a prompt cache
        assert p.cached_token_bytes == cached_token_bytes(fp, p.policy.kv_bits)
        assert p.peak_bytes + p.prompt_cache_bytes <= p.peak_bytes + (budget - p.peak_bytes) * PROMPT_CACHE_SHARE
        assert p.prompt_cache_bytes + p.cached_token_bytes > (budget - p.peak_bytes) * PROMPT_CACHE_SHARE
    # 20b: 12 full layers x 8 kv heads x 64 x 2 (k, v) x 2 bytes = 24 KiB per token in bf16
    assert cached_token_bytes(fp, None) == 24 * 1024
    assert cached_token_bytes(fp, 8) == 12 * 8 * 64 * 2 * (1 + 4 / 64)
    assert plan(full20b, 8192, budget_bytes=64 * GB).prompt_cache_tokens > 100_000
