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

import collections
import threading
import time
from dataclasses import dataclass
from typing import Iterable, Iterator

import mlx.core as mx
import numpy as np

from engine.errors import ModelError

NONFINITE = -1  # the sampled "token" that says the logits held NaN or Inf (see flag_nonfinite)


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0  # 0 means greedy
    top_p: float = 1.0
    min_p: float = 0.0
    seed: int | None = None
    logprobs: int | None = None  # also report each token's log-probability and this many top ones (0-20)


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
        self.pending: collections.deque = collections.deque()  # lazy log-probs, one per sampled token

    def note_logprobs(self, raw: mx.array, token: mx.array) -> None:
        """Queue (lazily) the model's log-probability of `token` and its top-k, from the raw logits
        [1, V] (before temperature, filters and masks: the model's own distribution). Only when asked."""
        logp = raw.astype(mx.float32)
        logp = logp - mx.logsumexp(logp, axis=-1, keepdims=True)  # [1, V]
        chosen = mx.take_along_axis(logp, token.astype(mx.int32)[:, None], axis=-1)[:, 0]  # [1]
        k = self.params.logprobs
        top = mx.argpartition(-logp, k - 1, axis=-1)[:, :k] if k else mx.zeros((1, 0), dtype=mx.uint32)  # [1, k]
        self.pending.append((chosen, top, mx.take_along_axis(logp, top, axis=-1)))

    def take_logprobs(self) -> tuple[float, list[tuple[int, float]]]:
        """The oldest queued token's (log-probability, [(id, log-probability)] best first)."""
        chosen, top, top_logp = self.pending.popleft()
        mx.eval(chosen, top, top_logp)
        pairs = sorted(zip(top[0].tolist(), top_logp[0].tolist()), key=lambda p: -p[1])
        return chosen.item(), pairs

    def __call__(self, logits: mx.array) -> mx.array:
        p = self.params
        if p.temperature <= 0:
            return mx.argmax(logits, axis=-1)
        logits = filter_logits(logits.astype(mx.float32) / p.temperature, p.top_p, p.min_p)
        key = None
        if self.key is not None:
            self.key, key = mx.random.split(self.key)
        return mx.random.categorical(logits, key=key)


def host_embedding(model) -> bool:
    """Does the model gather embedding rows on the host (engine.memory's embed_on_cpu)?"""
    return getattr(getattr(model, "embed", None), "on_host", False)


def model_ids(model, ids) -> mx.array | np.ndarray:
    """Token ids [T] (list, or a lazy mx.array) -> the [1, T] input the model takes. A model whose
    embedding table stays on the host gets NumPy ids: its row gather then needs no device sync."""
    if host_embedding(model):
        return np.asarray(ids if not isinstance(ids, mx.array) else ids.tolist(), dtype=np.int64).reshape(1, -1)
    return (ids if isinstance(ids, mx.array) else mx.array(ids)).reshape(1, -1)


def prefill(model, ids: list[int], cache, chunk: int = 512, cancel: threading.Event | None = None,
            splits: Iterable[int] = (), clear_cache: bool = True) -> Iterator[int]:
    """Feed `ids` into the cache chunk by chunk, computing no logits. Yields how many ids are in after
    each chunk (a chunk also ends at each position in `splits`, where the caller may snapshot the
    cache). Stops early, between chunks, when `cancel` is set.

    Only the cache is computed: no vocab projection, and not the last layer's MoE (which with
    expert residency would also read the router and copy experts in). Clearing MLX's buffer cache
    after each chunk returns the chunk's activations (the attention scores grow with the context,
    so the next chunk can't reuse them) instead of keeping them on top of the next chunk's: bench/prefill_memory.py measures the peak with and without.
    """
    ends = sorted({e for e in splits if 0 < e < len(ids)} | {len(ids)}) if ids else []
    fill = getattr(model, "fill_cache", model.hidden)  # a pipeline stage has only hidden()
    done = 0
    for end in ends:
        while done < end:
            if cancel is not None and cancel.is_set():
                return
            piece = ids[done:min(done + chunk, end)]
            fill(model_ids(model, piece), cache)
            mx.eval(cache.state())
            if clear_cache:
                mx.clear_cache()
            done += len(piece)
            yield done


def decode_one_token(model, ids, cache, sampler: "Sampler", constraint=None, fed_generated: bool = True) -> mx.array:
    """Feed ids (usually the last sampled token), sample the next token lazily: [1] ids.

    constraint (engine.structured.ReplyConstraint): told the token just fed (when it was generated,
    not the prompt's last), it may mask the logits where JSON is due. The mask is computed on the
    CPU while the model step runs.
    """
    if isinstance(ids, mx.array):  # a NONFINITE token is fed as 0 by the step queued behind it;
        ids = mx.maximum(ids, 0)   # the loop stops before using that step
    raw = model(model_ids(model, ids), cache=cache, last_only=True)[:, -1, :]
    logits = raw
    if constraint is not None:
        mx.async_eval(raw)
        fed = None
        if fed_generated:
            fed = ids.item() if isinstance(ids, mx.array) else int(ids[-1])
        mask = constraint.next_mask(fed) if fed is None or fed >= 0 else None  # NONFINITE: the loop raises
        if mask is not None:
            logits = mx.where(mask, raw, mx.array(-float("inf"), dtype=raw.dtype))
    token = sampler(logits)
    if sampler.params.logprobs is not None:
        sampler.note_logprobs(raw, token)
    return flag_nonfinite(raw, token)


def flag_nonfinite(logits: mx.array, token: mx.array) -> mx.array:
    """token [1] as int32, or NONFINITE when logits [1, V] hold NaN or +-Inf (damaged weights).

    Folded into the token the loop reads anyway: the check adds no host sync. One sum is enough:
    any NaN or Inf makes it non-finite (raw logits are never masked to -inf), and |logits| * V is
    far from overflowing.
    """
    bad = ~mx.isfinite(logits.sum(axis=-1))
    return mx.where(bad, NONFINITE, token.astype(mx.int32))


class Generation:
    """Iterate to get generated token ids; `stats` is filled in as it goes.

    One pipeline for a fresh prompt and for a prompt continued after what the cache holds:
    `prefill_steps()` (optional, to watch progress) feeds all but the last prompt token, then
    iterating feeds the last one and decodes. Stats count the whole `prompt_ids` and the time from
    the first prefill chunk, so prefill tokens/s is true.
    """

    def __init__(self, model, prompt_ids: Iterable[int], cache, sampling: SamplingParams = SamplingParams(),
                 max_tokens: int = 1024, stop_ids: Iterable[int] = (), cancel: threading.Event | None = None,
                 prefill_chunk: int = 512, splits: Iterable[int] = (), on_split=None, constraint=None):
        self.model, self.cache = model, cache
        self.prompt = list(prompt_ids)
        if not self.prompt:
            raise ValueError("the prompt must hold at least one token")
        self.sampler = Sampler(sampling)
        self.max_tokens = max_tokens
        self.stop_ids = frozenset(stop_ids)
        self.cancel = cancel
        self.prefill_chunk = prefill_chunk
        self.splits = tuple(splits)  # positions in the prompt where on_split(position) is called
        self.on_split = on_split
        self.constraint = constraint  # engine.structured.ReplyConstraint: masks logits where JSON is due
        self.stats = GenerationStats(prompt_tokens=len(self.prompt))
        self.token_logprobs = None  # with sampling.logprobs: the yielded token's (logprob, [(id, logprob)])
        self._started: float | None = None
        self._prefilled = False

    def _cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def prefill_steps(self) -> Iterator[int]:
        """Feed all but the last prompt token; yields how many are in after each chunk."""
        if self._started is None:
            mx.reset_peak_memory()
            self._started = time.perf_counter()
        body = self.prompt[:-1]
        for done in prefill(self.model, body, self.cache, self.prefill_chunk, self.cancel,
                            self.splits + (len(body),)):
            if self.on_split is not None and (done in self.splits or done == len(body)):
                self.on_split(done)
            yield done
        self._prefilled = True

    def __iter__(self) -> Iterator[int]:
        stats = self.stats
        if not self._prefilled:
            for _ in self.prefill_steps():
                pass
        if not self._prefilled or self._cancelled() or self.max_tokens <= 0:
            stats.stop_reason = "cancelled" if self._cancelled() else "max_tokens"
            return
        start = self._started
        # An embedding table on the host gathers rows with NumPy: it must read the token before the
        # next step can be built, so its one sync per token comes first and the device waits for
        # the graph; otherwise the next step is queued before the token is read.
        host = host_embedding(self.model)
        token = decode_one_token(self.model, self.prompt[-1:], self.cache, self.sampler, self.constraint,
                                 fed_generated=False)
        mx.async_eval(token)
        first_at = None
        next_token = None
        try:
            while True:
                tid = token.item() if host else None
                feed = [tid] if host else token
                if stats.generated_tokens + 1 < self.max_tokens:
                    next_token = decode_one_token(self.model, feed, self.cache, self.sampler, self.constraint)
                    mx.async_eval(next_token)
                else:
                    next_token = None
                    # the cache holds every yielded token
                    mx.eval(decode_one_token(self.model, feed, self.cache, self.sampler, self.constraint))
                if tid is None:
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
                if self.sampler.params.logprobs is not None:
                    self.token_logprobs = self.sampler.take_logprobs()
                # The reason is set before yielding: a consumer may close the generator right there.
                if tid in self.stop_ids:
                    stats.stop_reason = "stop"
                elif next_token is None:
                    stats.stop_reason = "max_tokens"
                yield tid
                if stats.stop_reason:
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
