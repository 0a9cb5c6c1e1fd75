"""Host syncs per decoded token, for each memory policy. A sync is the host waiting for the device:
mx.eval, array.item()/.tolist(), or NumPy reading an mx.array. Decode is pipelined (the next step is
queued before the current token is read), so every sync beyond the token read costs device idle
time; this test pins the count so a new one can't sneak in.

- everything resident: 1 (the token read)
- embedding table on the host (the planner always picks it): 1; its row gather uses the token
  id already read, at the price of queueing the next step only after the read
- expert residency: 1 + one per layer (the router's choice is read to copy experts in)
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from engine import load_model
from engine.generate import Generation, SamplingParams
from engine.memory import Policy


class HostSyncs:
    """Counts host syncs while active (patches mx.eval, mx.array.item/.tolist and NumPy's
    array/asarray/ascontiguousarray when given an mx.array)."""

    def __init__(self, monkeypatch):
        self.count = 0
        for owner, name in ((mx, "eval"), (mx.array, "item"), (mx.array, "tolist")):
            monkeypatch.setattr(owner, name, self._counting(getattr(owner, name), always=True))
        for name in ("array", "asarray", "ascontiguousarray"):
            monkeypatch.setattr(np, name, self._counting(getattr(np, name), always=False))

    def _counting(self, fn, always: bool):
        def wrapper(*args, **kwargs):
            if always or (args and isinstance(args[0], mx.array)):
                self.count += 1
            return fn(*args, **kwargs)
        return wrapper


POLICIES = {
    "everything resident": (None, 1),
    "embedding on the host": (Policy(embed_on_cpu=True), 1),
    "expert residency": (Policy(embed_on_cpu=True, expert_slots=4), "1 + layers"),
}


@pytest.mark.parametrize("name", list(POLICIES))
def test_host_syncs_per_decoded_token(tiny_dir, monkeypatch, name):
    policy, expected = POLICIES[name]
    model = load_model(tiny_dir, dtype="float32", policy=policy)
    if expected == "1 + layers":
        expected = 1 + model.config.num_hidden_layers
    prompt = list(range(3, 40))

    def syncs(tokens: int) -> int:
        gen = Generation(model, prompt, model.make_cache(), SamplingParams(temperature=0), max_tokens=tokens)
        with monkeypatch.context() as m:
            counter = HostSyncs(m)
            out = list(gen)
        assert len(out) == tokens
        return counter.count

    assert (syncs(12) - syncs(4)) / 8 == expected


def test_prefill_chunk_leaves_out_the_last_moe(tiny_dir, monkeypatch):
    """A prefill chunk computes only the cache: with expert residency it reads the router of every
    layer but the last (whose MoE feeds nothing the cache holds), plus the one eval of the cache.
    The cache it leaves is exactly the one a full forward pass leaves."""
    from engine.generate import model_ids, prefill

    model = load_model(tiny_dir, dtype="float32", policy=Policy(embed_on_cpu=True, expert_slots=4))
    ids = list(range(3, 40))
    cache = model.make_cache()
    with monkeypatch.context() as m:
        counter = HostSyncs(m)
        assert list(prefill(model, ids, cache, chunk=len(ids))) == [len(ids)]
    assert counter.count == (model.config.num_hidden_layers - 1) + 1
    full = model.make_cache()
    model.hidden(model_ids(model, ids), full)
    for got, want in zip(cache.state(), full.state()):
        np.testing.assert_array_equal(np.array(got), np.array(want))
