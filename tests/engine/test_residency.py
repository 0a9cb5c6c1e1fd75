"""Expert residency: the LRU slot store gives exactly the all-resident output, and its counters
match an independent LRU simulation. Runs on a tiny random checkpoint in the official layout."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from engine.checkpoint import Checkpoint
from engine.config import load_config
from engine.memory import Policy
from engine.moe import ExpertWeights, experts_mlx
from engine.residency import ExpertStore, layer_source, load_layer_experts, total_stats
from models.tiny import write_tiny_checkpoint

E, K, D = 8, 2, 64


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_res")
    write_tiny_checkpoint(folder, layers=2, experts=E, hidden=D, top_k=K, vocab=300, seed=3)
    cfg = load_config(folder)
    return folder, cfg, Checkpoint(folder, cfg)


def full_weights(source) -> ExpertWeights:
    """Every expert resident, straight from the same memory-mapped bytes."""
    parts = {}
    for name, a in source.items():
        arr = mx.array(np.ascontiguousarray(a))
        parts[name] = arr.view(mx.bfloat16) if a.dtype == np.uint16 else arr
    return ExpertWeights(**parts)


def simulate_lru(calls, slots, warm):
    """Reference LRU over distinct experts per call: returns (hits, misses) per call."""
    order, out = list(warm), []
    for wanted in calls:
        wanted = sorted(set(wanted))
        if len(wanted) > slots:  # a temporary buffer: only the missing experts are read, no LRU change
            hits = sum(e in order for e in wanted)
            out.append((hits, len(wanted) - hits))
            continue
        hits = sum(e in order for e in wanted)
        for e in wanted:
            if e not in order:
                victim = next(v for v in order if v not in wanted)
                order.remove(victim)
            else:
                order.remove(e)
            order.append(e)
        out.append((hits, len(wanted) - hits))
    return out


@pytest.mark.parametrize("slots", [2, 3, 5])
def test_random_routing_matches_all_resident_and_counts(tiny, slots):
    _, _, ckpt = tiny
    source = layer_source(ckpt, 1)
    full = full_weights(source)
    store = ExpertStore(source, slots)
    rng = np.random.default_rng(slots)
    calls = []
    for step in range(40):
        n = 1 if step % 5 else int(rng.integers(2, 40))  # mostly decode steps, some prefill chunks
        idx_np = np.stack([rng.choice(E, size=K, replace=False) for _ in range(n)]).astype(np.uint32)
        x = mx.array(rng.standard_normal((n, D)).astype(np.float32)).astype(mx.bfloat16)
        w = mx.softmax(mx.array(rng.standard_normal((n, K)).astype(np.float32)), axis=-1).astype(mx.bfloat16)
        idx = mx.array(idx_np)
        expected = experts_mlx(x, idx, w, full)
        ew, slot_idx = store.resolve(idx)
        got = experts_mlx(x, slot_idx, w, ew)
        assert ew.gate_up_blocks.shape[0] <= E  # never more than every expert
        np.testing.assert_array_equal(np.array(got.astype(mx.float32)), np.array(expected.astype(mx.float32)))
        calls.append(idx_np.ravel().tolist())
    ref = simulate_lru(calls, slots, warm=range(slots))
    assert store.stats.hits == sum(h for h, _ in ref)
    assert store.stats.misses == sum(m for _, m in ref)
    fetched_experts = sum(m for _, m in ref)
    assert store.stats.bytes_fetched == fetched_experts * store.expert_bytes
    assert store.stats.misses > 0 and store.stats.hits > 0  # the trace exercised both paths


def test_slots_hold_the_experts_they_claim(tiny):
    _, _, ckpt = tiny
    source = layer_source(ckpt, 0)
    store = ExpertStore(source, 3)
    store.resolve(mx.array([[6, 7]], dtype=mx.uint32))
    store.resolve(mx.array([[5, 7]], dtype=mx.uint32))
    assert store.resident[-2:] == [5, 7]
    for expert, slot in store._lru.items():
        np.testing.assert_array_equal(np.array(store.buffers["down_blocks"][slot]), source["down_blocks"][expert])


def test_overflow_reads_only_the_missing_experts(tiny, monkeypatch):
    """A call wanting more experts than slots (a prefill chunk) copies in only the experts that are
    not resident; the resident ones come from the slots, and the result is the all-resident one."""
    _, _, ckpt = tiny
    source = layer_source(ckpt, 1)
    store = ExpertStore(source, 3)  # warm: experts 0, 1, 2
    read = []
    fetch = store._fetch
    monkeypatch.setattr(store, "_fetch", lambda name, experts: read.extend(experts) or fetch(name, experts))
    idx_np = np.array([[0, 5], [1, 6], [2, 5], [7, 0]], dtype=np.uint32)  # 6 experts, 3 slots
    rng = np.random.default_rng(0)
    x = mx.array(rng.standard_normal((4, D)).astype(np.float32))
    w = mx.softmax(mx.array(rng.standard_normal((4, K)).astype(np.float32)), axis=-1)
    ew, slot_idx = store.resolve(mx.array(idx_np))
    np.testing.assert_array_equal(np.array(experts_mlx(x, slot_idx, w, ew)),
                                  np.array(experts_mlx(x, mx.array(idx_np), w, full_weights(source))))
    assert sorted(set(read)) == [5, 6, 7]
    assert len(read) == 3 * len(source)  # each missing expert read once per tensor
    assert (store.stats.hits, store.stats.misses, store.stats.overflow_calls) == (3, 3, 1)
    assert store.resident == [0, 1, 2]  # the slots are left as they are


def test_model_with_slots_gives_identical_logits(tiny):
    from engine.loader import load_model

    folder, _, _ = tiny
    ids = mx.array([[1, 5, 9, 200, 17, 3, 3, 41, 8, 120, 77, 2]])
    ref = load_model(folder, dtype="float32")
    model = load_model(folder, dtype="float32", policy=Policy(expert_slots=3, embed_on_cpu=False))
    cache_a, cache_b = ref.make_cache(), model.make_cache()
    a, b = ref(ids, cache_a), model(ids, cache_b)  # a prefill chunk (overflows 3 slots)
    np.testing.assert_array_equal(np.array(b), np.array(a))
    for t in (4, 250, 7):  # decode steps through the slots
        step = mx.array([[t]])
        np.testing.assert_array_equal(np.array(model(step, cache_b)), np.array(ref(step, cache_a)))
    stats = total_stats(model)
    assert stats.hits + stats.misses > 0 and stats.overflow_calls >= 1


def test_bad_slot_count_is_refused(tiny):
    _, cfg, ckpt = tiny
    with pytest.raises(ValueError):
        ExpertStore(layer_source(ckpt, 0), 0)
    assert load_layer_experts(ckpt, 0, cfg, 99).slots == E  # more slots than experts: all of them


def test_trace_kinds_and_hit_rate_simulation_agree_with_the_store(tiny):
    from bench.residency_traces import make_trace, simulate_hit_rate

    _, _, ckpt = tiny
    rates = {}
    for kind in ("uniform", "zipf", "repetitive"):
        trace = make_trace(kind, 200, E, K, seed=1)
        assert trace.shape == (200, K) and all(len(set(r)) == K for r in trace.tolist())
        store = ExpertStore(layer_source(ckpt, 0), 4)
        for row in trace:
            store.resolve(mx.array(row[None].astype(np.uint32)))
        rates[kind] = simulate_hit_rate(trace, 4, E)
        assert store.stats.hit_rate == pytest.approx(rates[kind])
    assert rates["uniform"] < rates["zipf"] < rates["repetitive"]


def test_recorder_sees_every_decode_step(tiny):
    from bench.residency_record import attach, decode_trace
    from engine.generate import Generation, SamplingParams
    from engine.loader import load_model

    folder, cfg, _ = tiny
    model = load_model(folder, dtype="float32", policy=Policy(expert_slots=4))
    recorders = attach(model)
    gen = Generation(model, [1, 2, 3, 4, 5, 6], model.make_cache(), SamplingParams(temperature=0), max_tokens=5)
    out = list(gen)
    for rec in recorders:
        trace = decode_trace(rec)
        assert trace.shape[1] == K and trace.max() < E
        assert len(trace) >= len(out) - 1  # one single-token call per decode step
    assert total_stats(model).hits + total_stats(model).misses > 0
