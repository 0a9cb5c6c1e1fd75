"""Token generation: chunked prefill, pipelined decode, sampling, stop tokens, cancellation, stats.

    gen = Generation(model, prompt_ids, cache, sampling=SamplingParams(temperature=0.7), max_tokens=512,
                     stop_ids={200002, 200012})
    for token in gen: ...
    gen.stats

The prompt is appended after what the cache already holds. Every token that is yielded has also
been fed through the model (decode is pipelined one step ahead with mx.async_eval), so when the
iteration ends the cache holds the prompt and all yielded tokens.

# V vocab
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Iterable, Iterator

import mlx.core as mx

from engine.errors import ModelError

NONFINITE = -1  # the sampled "token" that says the logits held NaN or Inf (see flag_nonfinite)


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0  # 0 means greedy
    top_p: float = 1.0
    min_p: float = 0.0
    seed: int | None = None


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    generated_tokens: int = 0
    ttft_s: float = 0.0  # time to first token, prefill included
    prefill_tps: float = 0.0
    decode_tps: float = 0.0
    peak_memory_bytes: int = 0
    stop_reason: str = ""  # "stop" | "max_tokens" | "cancelled" | "error"


def filter_logits(logits: mx.array, top_p: float, min_p: float) -> mx.array:
    """Set to -inf the logits [.., V] that top-p (nucleus) and min-p sampling exclude."""
    neg_inf = mx.array(-float("inf"), dtype=logits.dtype)
    if min_p > 0:
        probs = mx.softmax(logits, axis=-1)
        threshold = min_p * probs.max(axis=-1, keepdims=True)
        logits = mx.where(probs < threshold, neg_inf, logits)
    if top_p < 1.0:
        order = mx.argsort(-logits, axis=-1)
        sorted_probs = mx.take_along_axis(mx.softmax(logits, axis=-1), order, axis=-1)
        # Keep a token while the mass before it is below top_p (so the first is always kept).
        keep_sorted = (mx.cumsum(sorted_probs, axis=-1) - sorted_probs) < top_p
        keep = mx.put_along_axis(mx.zeros(logits.shape, dtype=mx.bool_), order, keep_sorted, axis=-1)
        logits = mx.where(keep, logits, neg_inf)
    return logits


class Sampler:
    """Logits [1, V] -> token id [1]; reproducible when a seed is given."""

    def __init__(self, params: SamplingParams):
        self.params = params
        self.key = mx.random.key(params.seed) if params.seed is not None else None

    def __call__(self, logits: mx.array) -> mx.array:
        p = self.params
        if p.temperature <= 0:
            return mx.argmax(logits, axis=-1)
        logits = filter_logits(logits.astype(mx.float32) / p.temperature, p.top_p, p.min_p)
        key = None
        if self.key is not None:
            self.key, key = mx.random.split(self.key)
        return mx.random.categorical(logits, key=key)


def flag_nonfinite(logits: mx.array, token: mx.array) -> mx.array:
    """token [1] as int32, or NONFINITE when logits [1, V] hold NaN or +-Inf (damaged weights).

    Folded into the token the loop reads anyway: the check adds no host sync. One sum is enough:
    any NaN or Inf makes it non-finite (raw logits are never masked to -inf), and |logits| * V is
    far from overflowing.
    """
    bad = ~mx.isfinite(logits.sum(axis=-1))
    return mx.where(bad, NONFINITE, token.astype(mx.int32))


class Generation:
    """Iterate to get generated token ids; `stats` is filled in as it goes."""

    def __init__(self, model, prompt_ids: Iterable[int], cache, sampling: SamplingParams = SamplingParams(),
                 max_tokens: int = 1024, stop_ids: Iterable[int] = (), cancel: threading.Event | None = None,
                 prefill_chunk: int = 512):
        self.model, self.cache = model, cache
        self.prompt = list(prompt_ids)
        if not self.prompt:
            raise ValueError("the prompt must hold at least one token")
        self.sampler = Sampler(sampling)
        self.max_tokens = max_tokens
        self.stop_ids = frozenset(stop_ids)
        self.cancel = cancel
        self.prefill_chunk = prefill_chunk
        self.stats = GenerationStats(prompt_tokens=len(self.prompt))

    def _cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def _step(self, ids: list[int] | mx.array) -> mx.array:
        """Feed tokens, sample the next one (lazily)."""
        # A NONFINITE token is fed as 0 by the step queued behind it; the loop stops before using it.
        ids = mx.maximum(ids, 0) if isinstance(ids, mx.array) else mx.array(ids)
        logits = self.model(ids.reshape(1, -1), cache=self.cache, last_only=True)
        return flag_nonfinite(logits[:, -1, :], self.sampler(logits[:, -1, :]))

    def _prefill(self) -> mx.array | None:
        """Fill the cache with all but the last prompt token, chunk by chunk, then feed the last one
        alone to get the first token. Evaluating only the cache lets MLX skip what no cache needs
        (the last layer's MoE and the vocab projection for every prompt token but one)."""
        body = self.prompt[:-1]
        for i in range(0, len(body), self.prefill_chunk):
            if self._cancelled():
                return None
            self.model.hidden(mx.array([body[i:i + self.prefill_chunk]]), self.cache)
            mx.eval(self.cache.state())
        return self._step(self.prompt[-1:])

    def __iter__(self) -> Iterator[int]:
        stats = self.stats
        mx.reset_peak_memory()
        start = time.perf_counter()
        token = self._prefill() if self.max_tokens > 0 else None
        if token is None:
            stats.stop_reason = "cancelled" if self._cancelled() else "max_tokens"
            return
        mx.async_eval(token)
        first_at = None
        next_token = None
        try:
            while True:
                if stats.generated_tokens + 1 < self.max_tokens:
                    # Queue the next step before waiting for this token: the device never idles.
                    next_token = self._step(token)
                    mx.async_eval(next_token)
                else:
                    next_token = None
                    mx.eval(self._step(token))  # keep the cache holding every yielded token
                tid = token.item()
                if tid == NONFINITE:
                    stats.stop_reason = "error"
                    raise ModelError("The model computed NaN (not a number) instead of a next word, so its "
                                     "weights are damaged; download the model again.")
                now = time.perf_counter()
                if first_at is None:
                    first_at = now
                    stats.ttft_s = now - start
                    stats.prefill_tps = stats.prompt_tokens / max(stats.ttft_s, 1e-9)
                stats.generated_tokens += 1
                if stats.generated_tokens > 1:
                    stats.decode_tps = (stats.generated_tokens - 1) / max(now - first_at, 1e-9)
                stats.peak_memory_bytes = mx.get_peak_memory()
                yield tid
                if tid in self.stop_ids:
                    stats.stop_reason = "stop"
                    break
                if next_token is None:
                    stats.stop_reason = "max_tokens"
                    break
                if self._cancelled():
                    stats.stop_reason = "cancelled"
                    break
                token = next_token
        finally:
            if next_token is not None:
                mx.eval(next_token)  # let the queued step finish before the cache is used again
            if not stats.stop_reason:
                stats.stop_reason = "cancelled"  # the consumer stopped iterating


def generate_greedy(model, prompt_ids: list[int], max_tokens: int, stop_ids=()) -> list[int]:
    """Convenience for tools and tests: greedy tokens from a fresh cache."""
    gen = Generation(model, prompt_ids, model.make_cache(), SamplingParams(temperature=0.0),
                     max_tokens=max_tokens, stop_ids=stop_ids)
    return list(gen)
