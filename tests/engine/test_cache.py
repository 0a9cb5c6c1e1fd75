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
