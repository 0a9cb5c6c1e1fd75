"""The gpt-oss forward pass in MLX, computing what the reference (transformers' GptOssForCausalLM
and OpenAI's gpt_oss/torch) computes: RMSNorm, GQA attention with learned sinks, a 128-token sliding
window on even layers, YaRN RoPE without truncation, and the MXFP4 mixture of experts.

# B batch, T new tokens, S visible keys, D hidden, H query heads, KV kv heads, hd head dim, V vocab
"""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np

from engine.cache import FullCache, ModelCache, QuantizedFullCache, SlidingCache
from engine.config import GptOssConfig, YarnScaling

BUILD = object()  # mask argument: "build it here" (a layer called on its own)
KV_GROUP = 64  # quantization group of an 8-bit KV cache along the head dim (gpt-oss: one per row)


def yarn_inv_freq(head_dim: int, base: float, yarn: YarnScaling | None) -> tuple[np.ndarray, float]:
    """Inverse RoPE frequencies [hd/2] (float32) and the attention factor that scales cos and sin.

    Every step is the reference's float32 operation in the reference's order, so the frequencies
    are bit-identical to transformers' wherever its float32 pow is correctly rounded (PyTorch's
    CPU pow rounds 2 of gpt-oss's 32 one ulp off: bench/rope_parity.py). With truncate=false the
    correction range is not floored/ceiled: matching the reference here keeps long positions right.
    """
    exponents = np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim)
    # pow in float64 rounded once: the correctly rounded float32 power
    pos_freqs = (np.float64(base) ** exponents.astype(np.float64)).astype(np.float32)
    extrapolation = np.float32(1.0) / pos_freqs
    if yarn is None:
        return extrapolation, 1.0
    interpolation = np.float32(1.0) / (np.float32(yarn.factor) * pos_freqs)

    def correction_dim(rotations: float) -> float:
        return (head_dim * math.log(yarn.original_max_position_embeddings / (rotations * 2 * math.pi))
                ) / (2 * math.log(base))

    low, high = correction_dim(yarn.beta_fast), correction_dim(yarn.beta_slow)
    if yarn.truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, head_dim - 1)
    if low == high:
        high += 0.001
    ramp = (np.arange(head_dim // 2, dtype=np.float32) - np.float32(low)) / np.float32(high - low)
    extrapolation_share = np.float32(1.0) - np.clip(ramp, np.float32(0), np.float32(1))
    inv_freq = (interpolation * (np.float32(1.0) - extrapolation_share)
                + extrapolation * extrapolation_share)
    return inv_freq.astype(np.float32), yarn.attention_factor


@mx.compile
def _rotate(x: mx.array, cos: mx.array, sin: mx.array) -> mx.array:
    """NeoX halves: [x1, x2] -> [x1 cos - x2 sin, x2 cos + x1 sin], in float32, back in x's dtype.

    cos = [c, c] and sin = [-s, s] over the head dim, so one fused multiply-add does both halves
    with the reference's roundings (the minus sign is exact)."""
    h = x.shape[-1] // 2
    swapped = mx.concatenate([x[..., h:], x[..., :h]], axis=-1)
    return (x * cos + swapped * sin).astype(x.dtype)


class Rotary:
    """YaRN RoPE as the reference computes it, shared by every layer.

    The angle of position p and pair i is float32(p * inv_freq[i]) (one rounding, as transformers
    does), then cos and sin are taken precisely and scaled by the attention factor. mx.fast.rope
    differs in two ways that grow with the position: it takes periods and inverts them (a second
    rounding of every frequency: an angle error of p * 1 ulp), and on Metal it uses fast::cos/sin,
    whose error grows with the argument.
    """

    def __init__(self, inv_freq: np.ndarray, attention_factor: float):
        self.inv_freq = mx.array(np.asarray(inv_freq, dtype=np.float32))  # [hd/2]
        self.attention_factor = attention_factor
        self._last = None  # (offset, T, cos, sin): the layers of one forward pass share the tables

    def tables(self, offset: int, T: int) -> tuple[mx.array, mx.array]:
        """cos, sin [T, hd] float32 for positions offset .. offset + T - 1 (see _rotate)."""
        if self._last is not None and self._last[:2] == (offset, T):
            return self._last[2:]
        angles = mx.arange(offset, offset + T, dtype=mx.float32)[:, None] * self.inv_freq[None, :]
        factor = mx.array(self.attention_factor, dtype=mx.float32)
        cos, sin = mx.cos(angles) * factor, mx.sin(angles) * factor
        cos, sin = mx.concatenate([cos, cos], axis=-1), mx.concatenate([-sin, sin], axis=-1)
        self._last = (offset, T, cos, sin)
        return cos, sin

    def __call__(self, x: mx.array, offset: int) -> mx.array:
        """x [B, H, T, hd] at positions offset.. -> rotated x, same shape and dtype."""
        cos, sin = self.tables(offset, x.shape[2])
        return _rotate(x, cos, sin)


def weights_by_column() -> bool:
    """Hold dense weights as [in, out] (y = x W) instead of the checkpoint's [out, in] (y = x W^T)?

    Decided once, at load, for the backend in use. MLX's CPU matmul runs 1.5-2.8x faster on [in, out]
    weights, and its quantized matmul 4-5x faster without the transpose (bench/linear_layout.py).
    Metal's kernels are built for the checkpoint's rows, the layout mlx-lm uses, which is kept there.
    """
    return mx.default_device() == mx.cpu


class Linear:
    """y = x W^T + b; W in the model dtype, or MLX-quantized (affine) to save memory.

    by_column stores W^T contiguous (see weights_by_column); quantized, its groups of group_size
    then run along the output features, where MLX's CPU kernel is fast. A layer whose outputs
    don't split into whole groups keeps the rows."""

    def __init__(self, weight: mx.array, bias: mx.array | None, bits: int | None = None,
                 group_size: int = 64, by_column: bool = False):
        self.bias = bias
        self.bits, self.group_size = bits, group_size
        self.by_column = by_column and (bits is None or weight.shape[0] % group_size == 0)
        if self.by_column:
            weight = mx.contiguous(weight.T)
        if bits is None:
            self.weight, self.scales, self.biases = weight, None, None
        else:
            self.weight, self.scales, self.biases = mx.quantize(weight, group_size=group_size, bits=bits)

    def __call__(self, x: mx.array) -> mx.array:
        if self.bits is None:
            y = x @ self.weight if self.by_column else x @ self.weight.T
        else:
            y = mx.quantized_matmul(x, self.weight, self.scales, self.biases, transpose=not self.by_column,
                                    group_size=self.group_size, bits=self.bits)
        return y if self.bias is None else y + self.bias

    def parameters(self) -> list[mx.array]:
        return [a for a in (self.weight, self.scales, self.biases, self.bias) if a is not None]


def quantized_attention(q: mx.array, keys: tuple, values: tuple, scale: float, sinks: mx.array,
                        visible: mx.array | None, group_size: int, bits: int) -> mx.array:
    """Attention with sinks over a quantized cache, in float32; the result in q's dtype.

    q [B, H, T, hd]; keys, values: (codes, scales, biases) of [B, KV, S, ...] (QuantizedFullCache);
    sinks [H]; visible [T, S] bool or None (all visible). Scores come from quantized matmuls on
    the codes (no dequantized copy of the cache); the sink joins the softmax's denominator only.
    """
    B, H, T, hd = q.shape
    KV, S = keys[0].shape[1], keys[0].shape[2]
    rep = H // KV  # query heads kv*rep .. kv*rep + rep - 1 share kv head kv
    f32 = mx.float32
    qg = (q.astype(f32) * scale).reshape(B, KV, rep * T, hd)
    k_codes, k_scales, k_biases = keys
    scores = mx.quantized_matmul(qg, k_codes, k_scales.astype(f32), k_biases.astype(f32), transpose=True,
                                 group_size=group_size, bits=bits).reshape(B, KV, rep, T, S)
    if visible is not None:
        scores = mx.where(visible, scores, -mx.inf)
    sink = sinks.astype(f32).reshape(1, KV, rep, 1, 1)
    top = mx.maximum(scores.max(axis=-1, keepdims=True), sink)  # finite: the sink always is
    e = mx.exp(scores - top)
    probs = e / (e.sum(axis=-1, keepdims=True) + mx.exp(sink - top))
    v_codes, v_scales, v_biases = values
    out = mx.quantized_matmul(probs.reshape(B, KV, rep * T, S), v_codes, v_scales.astype(f32),
                              v_biases.astype(f32), transpose=False, group_size=group_size, bits=bits)
    return out.reshape(B, H, T, hd).astype(q.dtype)


class Attention:
    def __init__(self, cfg: GptOssConfig, q, k, v, o, sinks, sliding: bool, rotary: Rotary):
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = q, k, v, o
        self.sinks = sinks
        self.H, self.KV, self.hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        self.window = cfg.sliding_window if sliding else None
        self.scale = 1.0 / math.sqrt(self.hd)
        self.rotary = rotary

    def _mask(self, T: int, offset: int, start: int, S: int):
        """Boolean [T, S] mask (True = visible), "causal", or None when every key is visible."""
        if T == 1 and (self.window is None or S <= self.window):
            return None
        if self.window is None:
            return "causal"  # MLX aligns it to the last key: query i sees keys up to offset + i
        return self._visible(T, offset, start, S)

    def _visible(self, T: int, offset: int, start: int, S: int) -> mx.array:
        """Boolean [T, S]: query offset + i sees key start + j (causal, and the window if any)."""
        q_pos = mx.arange(offset, offset + T)[:, None]
        k_pos = mx.arange(start, start + S)[None, :]
        visible = k_pos <= q_pos
        if self.window is not None:
            visible = visible & (q_pos - k_pos < self.window)
        return visible

    def mask_for(self, T: int, cache):
        """The mask for T new tokens after what `cache` holds (the same for every layer of a kind,
        so the model builds it once per forward pass)."""
        offset, S = cache.offset, cache.held() + T
        return self._mask(T, offset, offset + T - S, S)

    def __call__(self, x: mx.array, cache, mask=BUILD) -> mx.array:
        B, T, _ = x.shape
        q = self.q_proj(x).reshape(B, T, self.H, self.hd).transpose(0, 2, 1, 3)
        k = self.k_proj(x).reshape(B, T, self.KV, self.hd).transpose(0, 2, 1, 3)
        v = self.v_proj(x).reshape(B, T, self.KV, self.hd).transpose(0, 2, 1, 3)
        offset = cache.offset
        if mask is BUILD:
            mask = self.mask_for(T, cache)
        q, k = self.rotary(q, offset), self.rotary(k, offset)
        k, v, start = cache.update(k, v)
        if isinstance(cache, QuantizedFullCache):
            # the quantized path takes a boolean mask (or None): "causal" is spelled out for it
            visible = self._visible(T, offset, start, k[0].shape[2]) if isinstance(mask, str) else mask
            out = quantized_attention(q, k, v, self.scale, self.sinks, visible, cache.group_size, cache.bits)
        else:
            out = mx.fast.scaled_dot_product_attention(q, k, v, scale=self.scale, mask=mask, sinks=self.sinks)
        return self.o_proj(out.transpose(0, 2, 1, 3).reshape(B, T, -1))


class Block:
    def __init__(self, attn_norm, attn: Attention, mlp_norm, moe, eps: float):
        self.attn_norm, self.attn, self.mlp_norm, self.moe, self.eps = attn_norm, attn, mlp_norm, moe, eps

    def __call__(self, x: mx.array, cache, mask=BUILD) -> mx.array:
        x = x + self.attn(mx.fast.rms_norm(x, self.attn_norm, self.eps), cache, mask)
        return x + self.moe(mx.fast.rms_norm(x, self.mlp_norm, self.eps))


class Embedding:
    """Token ids -> rows of the table; the table is an MLX array, or a memory-mapped NumPy array
    whose rows are gathered on the CPU (keeps 1.16 GB of the 20b out of GPU memory)."""

    def __init__(self, table, dtype):
        self.table, self.dtype = table, dtype
        self.on_host = not isinstance(table, mx.array)  # then callers pass NumPy ids (no device sync)

    def __call__(self, ids) -> mx.array:
        if not self.on_host:
            return self.table[ids].astype(self.dtype)
        rows = np.asarray(self.table[np.asarray(ids)])  # bf16 bits come as uint16
        if rows.dtype == np.uint16:
            return mx.array(rows).view(mx.bfloat16).astype(self.dtype)
        return mx.array(rows).astype(self.dtype)


class GptOss:
    """The whole model. Call with token ids [B, T] (and a cache) to get logits [B, T, V]."""

    def __init__(self, cfg: GptOssConfig, embed: Embedding, blocks: list[Block], norm: mx.array,
                 lm_head: Linear, dtype, kv_bits: int | None = None):
        self.config = cfg
        self.embed, self.blocks, self.norm, self.lm_head = embed, blocks, norm, lm_head
        self.dtype = dtype
        self.kv_bits = kv_bits  # the policy's KV cache width: None (model dtype) or 8

    def make_cache(self, start: int = 0) -> ModelCache:
        """Empty caches for every layer. Full-attention layers store keys/values in the model
        dtype, or quantized when self.kv_bits is set (the policy's); sliding layers keep
        their 128-token window in the model dtype (a few MB, not worth the error).
        `start` > 0 puts the first token at that position with nothing before it (for tests and
        benchmarks of long positions without a long prefix)."""
        cfg = self.config
        bits = self.kv_bits
        group = KV_GROUP if cfg.head_dim % KV_GROUP == 0 else cfg.head_dim  # tiny models: hd 32

        def full():
            return FullCache(start) if bits is None else QuantizedFullCache(bits, group, start)

        return ModelCache([SlidingCache(cfg.sliding_window, start) if cfg.is_sliding(i) else full()
                           for i in range(cfg.num_hidden_layers)])

    def hidden(self, ids: mx.array, cache: ModelCache | None = None) -> mx.array:
        """Final normalized hidden states [B, T, D]."""
        if cache is None:
            cache = self.make_cache()
        return mx.fast.rms_norm(self._blocks(ids, cache), self.norm, self.config.rms_norm_eps)

    def fill_cache(self, ids: mx.array, cache: ModelCache) -> None:
        """Append ids' keys and values to the cache and compute nothing else (a prefill chunk):
        the last layer's MoE, and with expert residency its router read and copies, are left out."""
        self._blocks(ids, cache, last_moe=False)

    def _blocks(self, ids, cache: ModelCache, last_moe: bool = True) -> mx.array:
        x = self.embed(ids)
        masks = {}  # one per layer kind (sliding window or full), built once per pass
        last = len(self.blocks) - 1
        for i, (block, layer_cache) in enumerate(zip(self.blocks, cache.layers)):
            kind = block.attn.window
            if kind not in masks:
                masks[kind] = block.attn.mask_for(x.shape[1], layer_cache)
            if i < last or last_moe:
                x = block(x, layer_cache, masks[kind])
            else:
                block.attn(mx.fast.rms_norm(x, block.attn_norm, block.eps), layer_cache, masks[kind])
        return x

    def __call__(self, ids: mx.array, cache: ModelCache | None = None, last_only: bool = False) -> mx.array:
        """Logits [B, T, V] (or [B, 1, V] with last_only, which skips the vocab projection elsewhere)."""
        h = self.hidden(ids, cache)
        if last_only:
            h = h[:, -1:, :]
        return self.lm_head(h)
