"""The sliding window as a buffer written in place (engine.cache.SlidingCache).

- numerics: exactly the logits of the old window, which concatenated and sliced on every token
  (kept here as the reference), through chunked prefill, decode, laps, snapshots and restores;
- allocations: a decoded token writes its row into the same buffer (its address never changes
  within a lap), where the old window made a new array per token and layer. The address is read
  through NumPy's view of the evaluated buffer (zero copy).
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from engine import load_model
from engine.cache import ModelCache, SlidingCache
from engine.generate import Generation, SamplingParams


class ConcatSlidingCache:
    """The window as it was: new arrays every update, so old snapshots stay valid."""

    def __init__(self, window: int, start: int = 0):
        self.window, self.keys, self.values, self.offset = window, None, None, start

    def update(self, k, v):
        T = k.shape[2]
        if self.keys is not None:
            k = mx.concatenate([self.keys, k], axis=2)
            v = mx.concatenate([self.values, v], axis=2)
        start = self.offset + T - k.shape[2]
        self.offset += T
        self.keys, self.values = k[:, :, -(self.window - 1):], v[:, :, -(self.window - 1):]
        return k, v, start

    def held(self):
        return 0 if self.keys is None else self.keys.shape[2]

    def snapshot(self):
        return (self.offset, self.keys, self.values)

    def restore(self, snap):
        self.offset, self.keys, self.values = snap

    @property
    def state(self):
        return [] if self.keys is None else [self.keys, self.values]


def _with_reference_window(model):
    cache = model.make_cache()
    return ModelCache([ConcatSlidingCache(c.window) if isinstance(c, SlidingCache) else c for c in cache.layers])


def _steps(model, cache, ids, cuts):
    """Logits of ids fed in pieces ending at `cuts`, then token by token; snapshots and a restore on the way."""
    out, done = [], 0
    for end in cuts:
        out.append(np.array(model(mx.array(ids[:, done:end]), cache=cache)))
        done = end
    snap = cache.snapshot()
    out.append(np.array(model(mx.array(ids[:, done:done + 40]), cache=cache)))  # a branch thrown away
    cache.restore(snap)
    for t in range(done, ids.shape[1]):
        out.append(np.array(model(mx.array(ids[:, t:t + 1]), cache=cache)))
    return np.concatenate(out, axis=1)


@pytest.mark.parametrize("lap", [SlidingCache.LAP, 5])  # 5: the window moves back every few tokens
def test_ring_buffer_logits_equal_the_concatenating_window_exactly(tiny_dir, random_ids, monkeypatch, lap):
    monkeypatch.setattr(SlidingCache, "LAP", lap)
    model = load_model(tiny_dir, dtype="float32")
    ids = random_ids(model.config.vocab_size, 300, seed=21)  # window 16: many laps
    cuts = (7, 30, 61, 200)
    got = _steps(model, model.make_cache(), ids, cuts)
    want = _steps(model, _with_reference_window(model), ids, cuts)
    np.testing.assert_array_equal(got, want)


def _address(a: mx.array) -> int:
    return np.asarray(a).__array_interface__["data"][0]


@pytest.mark.parametrize("kv_bits", [None, 8])
def test_a_decoded_token_allocates_no_window(tiny_dir, kv_bits):
    """Each sliding layer's buffer keeps its address while tokens are decoded (within a lap): the
    token's keys are written in place. The old window made a new array per token: it fails this."""
    from engine.memory import Policy

    model = load_model(tiny_dir, dtype="float32", policy=Policy(embed_on_cpu=True, kv_bits=kv_bits))
    cache = model.make_cache()
    sliding = [c for c in cache.layers if isinstance(c, SlidingCache)]
    gen = Generation(model, list(range(3, 40)), cache, SamplingParams(temperature=0), max_tokens=60)
    seen: list[set] = [set() for _ in sliding]
    for n, _ in enumerate(gen):
        if n >= 2:  # the first lap's buffer exists once decoding runs
            for s, c in zip(seen, sliding):
                s.add(_address(c.state[0]))
                s.add(_address(c.state[1]))
    assert all(len(s) == 2 for s in seen), [len(s) for s in seen]  # one keys and one values buffer per layer

    # the same loop over the old window: a new array per token (kept alive here, so that the
    # allocator can't hand the same address back)
    ref = _with_reference_window(model)
    old = [c for c in ref.layers if isinstance(c, ConcatSlidingCache)]
    kept = []
    for _ in Generation(model, list(range(3, 40)), ref, SamplingParams(temperature=0), max_tokens=20):
        kept.append(old[0].state[0])
    assert len({_address(a) for a in kept}) == len(kept) == 20


def test_a_snapshot_survives_the_writes_after_it(tiny_dir, random_ids):
    """The buffer is overwritten in place; a snapshot is a copy, so it still holds its window."""
    model = load_model(tiny_dir, dtype="float32")
    ids = random_ids(model.config.vocab_size, 120, seed=22)
    cache = model.make_cache()
    model(mx.array(ids[:, :50]), cache=cache)
    layer = next(c for c in cache.layers if isinstance(c, SlidingCache))
    before = np.array(layer.window_rows()[0])
    snap = layer.snapshot()
    model(mx.array(ids[:, 50:120]), cache=cache)
    np.testing.assert_array_equal(np.array(snap[1]), before)
