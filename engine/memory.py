"""What fits in memory: the loading policy, the planner that picks it, and MLX's wired limit.

plan(folder, context_length) reads only config.json and the safetensors headers, adds up what
each tensor group costs once loaded under a Policy, plus the KV cache for the context and the
workspace of one prefill chunk, and compares that with the memory budget (on a Mac the GPU's
recommended working set; elsewhere the available RAM). It walks the policies from richest to
leanest and keeps the first that fits, or refuses, before anything is loaded, with one sentence
that says how much is missing and what to do.

The ladder (docs/memory.md says why):
  1. attention + lm_head in the load dtype (bf16), every expert resident
  2. the same in 8-bit, then 4-bit (MLX affine, group 64)
  3. 8-bit (then 4-bit) non-expert weights with only some experts resident per layer (LRU slots
     filled from the memory-mapped checkpoint), as many slots as fit, never fewer than a quarter
  4. every rung above is tried with the bf16 KV cache, then with the 8-bit one
     (KV_BITS_SUPPORTED), before the next rung: an 8-bit cache costs about what bf16 itself
     costs against float32, while a step down in weights costs 3x that and an expert slot less
     costs speed (docs/memory.md has the figures)
The embedding table always stays in the memory-mapped checkpoint (rows gathered on the CPU).
Cached conversations (engine/prompt_cache.py) get a share of what the chosen policy leaves free,
never more: the policy is chosen first, so no expert slot or bit of precision is traded for them
(Plan.prompt_cache_tokens says how many tokens of cached prefixes fit; 0 on a tight Mac, where
they go to disk instead).
Experts are never requantized: they stay in the checkpoint's MXFP4.

# E experts, D hidden, I expert intermediate, V vocab, H query heads, KV kv heads, hd head dim,
# T prefill chunk (tokens), C context length (tokens), K experts per token, S expert slots
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from engine.errors import ModelError

GB = 10**9
QUANT_GROUP = 64  # MLX affine quantization group for non-expert weights
MIN_RESIDENT_FRACTION = 0.25  # fewer slots than this and nearly every expert pick is a copy
KV_STEP = 256  # the KV cache grows in steps of this many tokens
DEFAULT_PREFILL_CHUNK = 512
MIN_PREFILL_CHUNK = 16
# KV cache widths the engine implements (engine/cache.py): the model dtype, or 8-bit codes with a
# scale and bias per group of QUANT_GROUP along the head dim (full-attention layers only).
KV_BITS_SUPPORTED: tuple[int | None, ...] = (None, 8)
ATTENTION_SHARE = 16  # a prefill chunk's attention scores may take 1/16 of the budget
SLIDING_LAP = 256  # a sliding layer's buffer holds its window plus this many rows (engine/cache.py)
PROMPT_CACHE_SHARE = 0.5  # cached conversations may take half of what the plan leaves free


@dataclass(frozen=True)
class Policy:
    """How the model's weights and cache are held in memory.

    non_expert_bits: None keeps the load dtype (bf16); 8 or 4 quantize attention projections
        and lm_head with MLX affine quantization, group size 64.
    embed_on_cpu: the embedding table stays in the memory-mapped checkpoint; rows are gathered
        with NumPy, so it costs no GPU bytes.
    expert_slots: None keeps every expert resident; an int keeps that many experts per layer in
        GPU buffers and copies the others in from the checkpoint on demand (LRU).
    kv_bits: None keeps the KV cache in the model dtype; 8 quantizes it.
    context_length: the longest context (prompt + answer, in tokens) the plan reserves for.
    """

    non_expert_bits: int | None = None
    embed_on_cpu: bool = True
    expert_slots: int | None = None
    kv_bits: int | None = None
    context_length: int = 4096

    def describe(self) -> str:
        """A short human-readable name, e.g. '8-bit attention/lm_head, 26/32 experts resident'."""
        bits = "bf16" if self.non_expert_bits is None else f"{self.non_expert_bits}-bit"
        experts = "all experts resident" if self.expert_slots is None else f"{self.expert_slots} expert slots/layer"
        kv = "bf16 KV" if self.kv_bits is None else f"{self.kv_bits}-bit KV"
        return f"{bits} attention/lm_head, {experts}, {kv}, {self.context_length}-token context"


@dataclass(frozen=True)
class Footprint:
    """Bytes per tensor group as stored in the checkpoint (from the headers only)."""

    model_name: str
    num_layers: int
    num_experts: int
    experts_per_token: int
    expert_bytes: int  # one expert of one layer: blocks + scales + biases (MXFP4 as stored)
    quantizable: tuple[tuple[int, int], ...]  # (out, in) of every attention projection and lm_head
    quantizable_bytes: int  # their bytes in the checkpoint's float dtype
    other_float_bytes: int  # norms, sinks, router, attention biases: always kept as they are
    embed_bytes: int
    float_itemsize: int  # bytes per element of the checkpoint's float tensors
    hidden: int
    intermediate: int
    vocab: int
    heads: int
    kv_heads: int
    head_dim: int
    full_layers: int  # layers that see the whole context
    sliding_layers: int
    sliding_window: int
    max_context: int


@dataclass(frozen=True)
class Plan:
    """The planner's answer. peak_bytes is the predicted peak of MLX memory for this policy."""

    policy: Policy
    peak_bytes: int
    fits: bool
    reason: str  # the sentence shown to the user when it does not fit ('' when it does)
    budget_bytes: int
    breakdown: dict[str, int] = field(default_factory=dict)  # group -> bytes
    context_cap: int = 0  # the longest context this policy fits in the budget
    prefill_chunk: int = DEFAULT_PREFILL_CHUNK
    prompt_cache_tokens: int = 0  # tokens of other conversations' cached prefixes that fit beside it
    cached_token_bytes: int = 0  # what one such token costs (full-attention layers, the policy's KV)

    @property
    def prompt_cache_bytes(self) -> int:
        return self.prompt_cache_tokens * self.cached_token_bytes

    def summary(self) -> str:
        """One line per group, for logs and the benchmarks."""
        lines = [f"{self.policy.describe()}: peak {self.peak_bytes / GB:.2f} GB of "
                 f"{self.budget_bytes / GB:.2f} GB budget ({'fits' if self.fits else 'does not fit'})"]
        lines += [f"  {k:<18} {v / GB:7.3f} GB" for k, v in self.breakdown.items()]
        return "\n".join(lines)


# ----------------------------------------------------------------------------- footprint

def read_footprint(model_folder: str | Path) -> Footprint:
    """Group the checkpoint's tensors by what they are, from config.json and the headers."""
    from engine.checkpoint_format import is_expert_tensor, read_checkpoint  # headers only, no MLX
    from engine.config import load_config

    cfg = load_config(model_folder)
    tensors = read_checkpoint(model_folder, cfg)
    expert_total = quant_bytes = other = embed = 0
    quantizable, float_itemsize = [], 2
    for name, info in tensors.items():
        if is_expert_tensor(name):
            expert_total += info.nbytes
        elif name == "model.embed_tokens.weight":
            embed = info.nbytes
            float_itemsize = info.nbytes // max(1, math.prod(info.shape))
        elif name == "lm_head.weight" or (".self_attn." in name and name.endswith("_proj.weight")):
            quant_bytes += info.nbytes
            quantizable.append((info.shape[0], info.shape[1]))
        else:
            other += info.nbytes
    if cfg.tie_word_embeddings:  # lm_head is the embedding: it must then live on the GPU
        quantizable.append((cfg.vocab_size, cfg.hidden_size))
        quant_bytes += embed
    full = sum(1 for i in range(cfg.num_hidden_layers) if not cfg.is_sliding(i))
    E, L = cfg.num_local_experts, cfg.num_hidden_layers
    name = Path(model_folder).name or "the model"
    return Footprint(
        model_name=name, num_layers=L, num_experts=E, experts_per_token=cfg.num_experts_per_tok,
        expert_bytes=expert_total // (L * E), quantizable=tuple(quantizable),
        quantizable_bytes=quant_bytes, other_float_bytes=other, embed_bytes=embed,
        float_itemsize=float_itemsize, hidden=cfg.hidden_size, intermediate=cfg.intermediate_size,
        vocab=cfg.vocab_size, heads=cfg.num_attention_heads, kv_heads=cfg.num_key_value_heads,
        head_dim=cfg.head_dim, full_layers=full, sliding_layers=L - full,
        sliding_window=cfg.sliding_window, max_context=cfg.max_position_embeddings,
    )


# ----------------------------------------------------------------------------- estimates

def quantized_bytes(out_features: int, in_features: int, bits: int, itemsize: int = 2) -> int:
    """Bytes of one MLX affine-quantized weight: packed codes + a scale and a bias per group."""
    groups = out_features * (in_features // QUANT_GROUP)
    return out_features * in_features * bits // 8 + groups * 2 * itemsize


def kv_cache_bytes(fp: Footprint, context: int, kv_bits: int | None, chunk: int, itemsize: int = 2) -> int:
    """KV cache at `context` tokens: full layers hold all of it, sliding layers a window (+ a chunk).

    With kv_bits the full layers store codes plus a scale and a bias (model dtype) per group
    along the head dim (engine/cache.py QuantizedFullCache); sliding layers keep the model dtype.
    """
    per_token_layer = 2 * fp.kv_heads * fp.head_dim  # k and v elements
    if kv_bits is None:
        full_per_elem = itemsize
    else:
        group = QUANT_GROUP if fp.head_dim % QUANT_GROUP == 0 else fp.head_dim
        full_per_elem = kv_bits / 8 + 2 * itemsize / group
    full_tokens = math.ceil(context / KV_STEP) * KV_STEP
    # A sliding layer's buffer holds window-1 keys plus a lap (or a whole chunk, if larger).
    sliding_tokens = fp.sliding_window - 1 + max(SLIDING_LAP, chunk)
    full = per_token_layer * fp.full_layers * full_tokens * full_per_elem
    return int(full + per_token_layer * fp.sliding_layers * sliding_tokens * itemsize)


def cached_token_bytes(fp: Footprint, kv_bits: int | None, itemsize: int = 2) -> int:
    """Bytes one more cached token costs in memory: keys and values of every full-attention layer
    (the sliding layers' windows are a fixed cost per conversation, not per token)."""
    per_elem = itemsize if kv_bits is None else kv_bits / 8 + 2 * itemsize / (
        QUANT_GROUP if fp.head_dim % QUANT_GROUP == 0 else fp.head_dim)
    return math.ceil(2 * fp.kv_heads * fp.head_dim * fp.full_layers * per_elem)


def prompt_cache_tokens(fp: Footprint, policy: Policy, peak: int, budget: int, itemsize: int = 2) -> int:
    """Tokens of cached conversations that fit in PROMPT_CACHE_SHARE of what `peak` leaves free."""
    free = max(0, budget - peak)
    return int(free * PROMPT_CACHE_SHARE) // max(1, cached_token_bytes(fp, policy.kv_bits, itemsize))


def workspace_bytes(fp: Footprint, policy: Policy, chunk: int, itemsize: int = 2) -> int:
    """Transient memory of the largest step: one prefill chunk of T tokens at the full context.

    Attention scores and their softmax (float32, all heads, T x C), the MoE's per-token expert
    activations, the residual stream, the last position's logits (float32), and with expert
    slots, when a chunk needs more experts than there are slots, a temporary buffer holding them.
    """
    T, C = chunk, policy.context_length
    attn = 2 * fp.heads * T * C * 4
    moe = T * fp.experts_per_token * (3 * fp.intermediate + fp.hidden) * 4
    stream = 6 * T * fp.hidden * 4
    logits = fp.vocab * 4 * 2
    extra_experts = 0
    if policy.expert_slots is not None:
        needed = min(fp.num_experts, T * fp.experts_per_token)
        # engine/residency.py gathers all of that call's experts into a temporary buffer.
        extra_experts = needed * fp.expert_bytes if needed > policy.expert_slots else 0
    return attn + moe + stream + logits + extra_experts


def breakdown(fp: Footprint, policy: Policy, chunk: int = DEFAULT_PREFILL_CHUNK,
              dtype: str = "bfloat16") -> dict[str, int]:
    """Predicted bytes per group under a policy (what plan() adds up)."""
    scale = (4 if dtype == "float32" else 2) / fp.float_itemsize  # float tensors in the load dtype
    itemsize = 4 if dtype == "float32" else 2
    if policy.non_expert_bits is None:
        non_expert = int(fp.quantizable_bytes * scale)
    else:
        non_expert = sum(quantized_bytes(o, i, policy.non_expert_bits, itemsize) for o, i in fp.quantizable)
    slots = fp.num_experts if policy.expert_slots is None else policy.expert_slots
    return {
        "experts": fp.num_layers * slots * fp.expert_bytes,
        "attention+lm_head": non_expert,
        "norms/router/bias": int(fp.other_float_bytes * scale),
        "embedding": 0 if policy.embed_on_cpu else int(fp.embed_bytes * scale),
        "kv_cache": kv_cache_bytes(fp, policy.context_length, policy.kv_bits, chunk, itemsize),
        "workspace": workspace_bytes(fp, policy, chunk, itemsize),
    }


# ----------------------------------------------------------------------------- budget

def device_budget() -> int:
    """Bytes MLX may use: the GPU's recommended working set on a Mac, else the available RAM."""
    ram = _available_ram()
    try:
        import mlx.core as mx

        if mx.metal.is_available():
            info = mx.device_info()
            rec = int(info.get("max_recommended_working_set_size", 0)) or ram
            return min(rec, int(info.get("memory_size", rec)))
    except (ImportError, AttributeError, RuntimeError):
        pass
    return ram


def _available_ram() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def apply_wired_limit() -> int | None:
    """Wire the recommended working set as mlx-lm does (Metal only). Returns the old limit or None."""
    import mlx.core as mx

    if not mx.metal.is_available():
        return None
    rec = mx.device_info().get("max_recommended_working_set_size")
    return None if rec is None else mx.set_wired_limit(int(rec))


@contextlib.contextmanager
def wired_limit(limit: int | None = None):
    """Hold the wired limit (default: the recommended working set) while the block runs, then put
    back the old one: wired memory is taken from the rest of the Mac. Nothing to do off Metal."""
    import mlx.core as mx

    if not mx.metal.is_available():
        yield None
        return
    limit = limit or mx.device_info().get("max_recommended_working_set_size")
    if limit is None:
        yield None
        return
    old = mx.set_wired_limit(int(limit))
    try:
        yield int(limit)
    finally:
        mx.synchronize()  # work still queued may use the wired pages
        mx.set_wired_limit(old)


# ----------------------------------------------------------------------------- the planner

def candidate_policies(fp: Footprint, context_length: int) -> list[Policy]:
    """Every policy the planner may choose, richest first (see the module docstring)."""
    base = Policy(embed_on_cpu=True, context_length=context_length)
    ladder = [replace(base, non_expert_bits=b, kv_bits=kv) for b in (None, 8, 4) for kv in KV_BITS_SUPPORTED]
    min_slots = max(fp.experts_per_token, math.ceil(fp.num_experts * MIN_RESIDENT_FRACTION))
    for bits in (8, 4):
        for slots in range(fp.num_experts - 1, min_slots - 1, -1):
            ladder += [replace(base, non_expert_bits=bits, expert_slots=slots, kv_bits=kv) for kv in KV_BITS_SUPPORTED]
    return ladder


def prefill_chunk_for(fp: Footprint, context_length: int, budget: int,
                      requested: int = DEFAULT_PREFILL_CHUNK) -> int:
    """Halve the prefill chunk until its attention scores (T x C, all heads) fit their share."""
    chunk = max(1, min(requested, context_length))
    while chunk > MIN_PREFILL_CHUNK and 2 * fp.heads * chunk * context_length * 4 > budget / ATTENTION_SHARE:
        chunk //= 2
    return chunk


def _context_cap(fp: Footprint, policy: Policy, budget: int, chunk: int, dtype: str) -> int:
    """Longest context (multiple of KV_STEP, at most the model's) this policy fits in budget."""
    lo, hi = 0, fp.max_context // KV_STEP
    while lo < hi:  # peak grows with the context: binary search in KV steps
        mid = (lo + hi + 1) // 2
        p = replace(policy, context_length=mid * KV_STEP)
        if sum(breakdown(fp, p, min(chunk, p.context_length), dtype).values()) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo * KV_STEP


def plan(model_folder: str | Path, context_length: int = 4096, budget_bytes: int | None = None,
         prefill_chunk: int = DEFAULT_PREFILL_CHUNK, dtype: str = "bfloat16") -> Plan:
    """Pick the richest policy that fits `budget_bytes` (default: this machine's budget).

    Reads only config.json and the safetensors headers. When nothing fits, the returned plan has
    fits=False, the leanest policy, and a one-sentence `reason` for the user.
    """
    return plan_footprint(read_footprint(model_folder), context_length, budget_bytes, prefill_chunk, dtype)


def plan_footprint(fp: Footprint, context_length: int = 4096, budget_bytes: int | None = None,
                   prefill_chunk: int = DEFAULT_PREFILL_CHUNK, dtype: str = "bfloat16") -> Plan:
    """plan() for a Footprint (from the headers, from config.json alone, or of one pipeline stage)."""
    budget = int(budget_bytes) if budget_bytes is not None else device_budget()
    if context_length < 1:
        raise ModelError("The context length must be at least one token.")
    if context_length > fp.max_context:
        raise ModelError(f"{fp.model_name} handles at most {fp.max_context} tokens of context; "
                         f"choose a context length of {fp.max_context} or less.")
    chunk = prefill_chunk_for(fp, context_length, budget, prefill_chunk)
    candidates = candidate_policies(fp, context_length)
    for policy in candidates:
        parts = breakdown(fp, policy, chunk, dtype)
        peak = sum(parts.values())
        if peak <= budget:
            cap = _context_cap(fp, policy, budget, chunk, dtype)
            itemsize = 4 if dtype == "float32" else 2
            return Plan(policy, peak, True, "", budget, parts, cap, chunk,
                        prompt_cache_tokens(fp, policy, peak, budget, itemsize),
                        cached_token_bytes(fp, policy.kv_bits, itemsize))
    leanest = candidates[-1]
    parts = breakdown(fp, leanest, chunk, dtype)
    peak = sum(parts.values())
    cap = _context_cap(fp, leanest, budget, chunk, dtype)
    return Plan(leanest, peak, False, _refusal(fp, peak, budget, context_length, cap), budget, parts, cap, chunk)


def _refusal(fp: Footprint, need: int, budget: int, context: int, cap: int) -> str:
    missing = need - budget
    way = (f"choose a context of at most {cap} tokens, or close other apps"
           if cap >= 1024 else "close other apps, use a Mac with more memory, or run it across several Macs "
           "(docs/distributed.md)")
    quarter = " even with only a quarter of its experts resident," if fp.num_experts >= 4 * fp.experts_per_token else ""
    return (f"{fp.model_name} needs at least {need / GB:.1f} GB for a {context}-token context{quarter} but only "
            f"{budget / GB:.1f} GB is available ({missing / GB:.1f} GB missing); {way}.")


def check_fits(model_folder: str | Path, context_length: int = 4096, budget_bytes: int | None = None) -> Plan:
    """plan(), but raise ModelError with the plan's reason when nothing fits (for loaders)."""
    p = plan(model_folder, context_length, budget_bytes)
    if not p.fits:
        raise ModelError(p.reason)
    return p


# ----------------------------------------------------------------------------- Macs and stages

MAC_RAM_GB = (16, 24, 32, 48, 64, 96, 128, 192)  # unified memory sizes Apple sells


def mac_budget(ram_gb: float) -> int:
    """Default GPU working set of an Apple-silicon Mac with `ram_gb` GB of memory.

    What Metal reports as recommendedMaxWorkingSetSize (and MLX as max_recommended_working_set_size):
    about 2/3 of the memory below 36 GB (10.7 GB on a 16 GB Mac), 3/4 from 36 GB up.
    """
    return int(ram_gb * GB * (2 / 3 if ram_gb < 36 else 3 / 4))


def footprint_from_config(cfg, model_name: str = "the model", layers: tuple[int, int] | None = None,
                          head: bool = True, float_itemsize: int = 2) -> Footprint:
    """The Footprint that the official checkpoint of `cfg` (an engine.config.GptOssConfig) has,
    without reading any file: for a model not yet downloaded, or one pipeline stage.

    layers: the stage's [first, last) layers (default all); head: whether it holds the embedding,
    the final norm and lm_head. Bytes follow engine/checkpoint.expected_tensors: bf16 floats,
    MXFP4 experts (uint8 blocks of 16 bytes per 32 weights, one E8M0 byte per block).
    """
    D, I, E, V = cfg.hidden_size, cfg.intermediate_size, cfg.num_local_experts, cfg.vocab_size
    H, KV, hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    first, last = layers if layers is not None else (0, cfg.num_hidden_layers)
    n, f = last - first, float_itemsize
    expert = (2 * I * D // 2 + 2 * I * D // 32 + 2 * I * f) + (D * I // 2 + D * I // 32 + D * f)
    quantizable = [(H * hd, D), (KV * hd, D), (KV * hd, D), (D, H * hd)] * n
    bias = (H * hd + 2 * KV * hd + D) if cfg.attention_bias else 0
    other = n * (2 * D + H + E * D + E + bias) * f
    if head:
        quantizable.append((V, D))
        other += D * f  # the final norm
    full = sum(1 for i in range(first, last) if not cfg.is_sliding(i))
    return Footprint(
        model_name=model_name, num_layers=n, num_experts=E, experts_per_token=cfg.num_experts_per_tok,
        expert_bytes=expert, quantizable=tuple(quantizable),
        quantizable_bytes=sum(o * i for o, i in quantizable) * f, other_float_bytes=other,
        embed_bytes=V * D * f if head else 0, float_itemsize=f, hidden=D, intermediate=I,
        vocab=V if head else 0, heads=H, kv_heads=KV, head_dim=hd, full_layers=full,
        sliding_layers=n - full, sliding_window=cfg.sliding_window, max_context=cfg.max_position_embeddings,
    )
