"""Generation: greedy equals argmax of full forwards, sampling filters, seeds, stops, cancellation."""

import threading

import mlx.core as mx
import numpy as np
import pytest

from engine import load_model
from engine.generate import Generation, SamplingParams, filter_logits, generate_greedy


@pytest.fixture(scope="module")
def model(tiny_dir):
    return load_model(tiny_dir, dtype="float32")


def argmax_loop(model, prompt, n):
    seq, out = list(prompt), []
    for _ in range(n):
        t = int(mx.argmax(model(mx.array([seq]))[0, -1]).item())
        out.append(t)
        seq.append(t)
    return out


def test_greedy_equals_full_forward_argmax(model):
    prompt = list(range(3, 40))
    assert generate_greedy(model, prompt, 25) == argmax_loop(model, prompt, 25)


def test_chunked_prefill_gives_the_same_tokens(model):
    prompt = [int(i) for i in np.random.default_rng(0).integers(0, 512, 70)]
    gen = Generation(model, prompt, model.make_cache(), SamplingParams(temperature=0), max_tokens=10,
                     prefill_chunk=16)
    assert list(gen) == generate_greedy(model, prompt, 10)


def test_cache_holds_prompt_and_every_yielded_token(model):
    cache = model.make_cache()
    tokens = list(Generation(model, [1, 2, 3], cache, SamplingParams(temperature=0), max_tokens=7))
    assert len(tokens) == 7 and cache.offset == 3 + 7


def test_stop_token_is_yielded_last(model):
    prompt = list(range(3, 40))
    free = generate_greedy(model, prompt, 12)
    stop = free[5]
    gen = Generation(model, prompt, model.make_cache(), SamplingParams(temperature=0), max_tokens=12,
                     stop_ids={stop})
    out = list(gen)
    assert out == free[: free.index(stop) + 1]
    assert gen.stats.stop_reason == "stop"


def test_max_tokens_and_stats(model):
    gen = Generation(model, list(range(50)), model.make_cache(), SamplingParams(temperature=0), max_tokens=9)
    assert len(list(gen)) == 9
    s = gen.stats
    assert s.stop_reason == "max_tokens" and s.prompt_tokens == 50 and s.generated_tokens == 9
    assert s.ttft_s > 0 and s.prefill_tps > 0 and s.decode_tps > 0 and s.peak_memory_bytes > 0


def test_cancel_between_tokens(model):
    cancel = threading.Event()
    gen = Generation(model, [5, 6, 7], model.make_cache(), SamplingParams(temperature=0), max_tokens=100,
                     cancel=cancel)
    out = []
    for t in gen:
        out.append(t)
        if len(out) == 4:
            cancel.set()
    assert len(out) == 4 and gen.stats.stop_reason == "cancelled"


def test_seed_makes_sampling_reproducible(model):
    def run(seed):
        p = SamplingParams(temperature=1.0, top_p=0.95, seed=seed)
        return list(Generation(model, [9, 8, 7], model.make_cache(), p, max_tokens=30))

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_top_p_and_min_p_keep_the_right_tokens():
    probs = np.array([0.5, 0.2, 0.15, 0.1, 0.05])
    logits = mx.array(np.log(probs)[None, :].astype(np.float32))
    kept = lambda out: (np.isfinite(np.array(out))[0]).tolist()
    # top-p 0.8: 0.5 + 0.2 = 0.7 < 0.8, so the third token is still needed.
    assert kept(filter_logits(logits, top_p=0.8, min_p=0.0)) == [True, True, True, False, False]
    assert kept(filter_logits(logits, top_p=0.3, min_p=0.0)) == [True, False, False, False, False]
    # min-p 0.25: keep tokens with at least 0.25 * 0.5 = 0.125.
    assert kept(filter_logits(logits, top_p=1.0, min_p=0.25)) == [True, True, True, False, False]


def test_sampling_follows_the_distribution():
    from engine.generate import Sampler

    probs = np.array([0.6, 0.3, 0.1], dtype=np.float32)
    sampler = Sampler(SamplingParams(temperature=1.0, seed=0))
    logits = mx.array(np.log(probs)[None, :])
    draws = np.array([sampler(logits).item() for _ in range(3000)])
    freq = np.bincount(draws, minlength=3) / len(draws)
    assert np.abs(freq - probs).max() < 0.04


def test_empty_prompt_is_refused(model):
    with pytest.raises(ValueError, match="at least one token"):
        Generation(model, [], model.make_cache())


def test_masks_are_built_once_per_forward_pass_per_layer_kind(model, monkeypatch):
    from engine.model import Attention

    built = []
    original = Attention._mask
    monkeypatch.setattr(Attention, "_mask", lambda self, *a: built.append(self.window) or original(self, *a))
    cache = model.make_cache()
    model(mx.array([list(range(40))]), cache=cache)  # 4 layers: 2 sliding, 2 full
    assert sorted(built, key=str) == sorted([model.config.sliding_window, None], key=str)
    built.clear()
    model(mx.array([[7]]), cache=cache)
    assert len(built) == 2


def test_a_consumer_that_stops_at_the_stop_token_sees_stop_not_cancelled(model):
    """The session closes the generator as soon as it sees the stop token: the reason must
    already say "stop" (every saved answer used to say "cancelled")."""
    free = list(Generation(model, [1, 2, 3], model.make_cache(), SamplingParams(temperature=0.0), max_tokens=6))
    stop_id = free[2]
    gen = Generation(model, [1, 2, 3], model.make_cache(), SamplingParams(temperature=0.0), max_tokens=6,
                     stop_ids={stop_id})
    tokens = iter(gen)
    for token in tokens:
        if token == stop_id:
            break
    tokens.close()
    assert gen.stats.stop_reason == "stop"
    last = Generation(model, [1, 2, 3], model.make_cache(), SamplingParams(temperature=0.0), max_tokens=2)
    tokens = iter(last)
    seen = [next(tokens), next(tokens)]
    tokens.close()
    assert len(seen) == 2 and last.stats.stop_reason == "max_tokens"
