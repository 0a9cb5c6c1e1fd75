"""The gpt-oss forward pass in MLX, computing what the reference (transformers' GptOssForCausalLM
and OpenAI's gpt_oss/torch) computes: RMSNorm, GQA attention with learned sinks, a 128-token sliding
window on even layers, YaRN RoPE without truncation, and the MXFP4 mixture of experts.

# B batch, T new tokens, S visible keys, D hidden, H query heads, KV kv heads, hd head dim, V vocab
"""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np

from engine.cache import FullCache, ModelCache, SlidingCache
from engine.config import GptOssConfig, YarnScaling

BUILD = object()  # mask argument: "build it here" (a layer called on its own)


def yarn_inv_freq(head_dim: int, base: float, yarn: YarnScaling | None) -> tuple[np.ndarray, float]:
    """Inverse RoPE frequencies [hd/2] and the attention factor that scales cos and sin.

    With truncate=false (gpt-oss) the correction range is not floored/ceiled: matching the
    reference here is what keeps long positions right.
    """
    pos_freqs = base ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim)
    extrapolation = 1.0 / pos_freqs
    if yarn is None:
        return extrapolation.astype(np.float32), 1.0
    interpolation = 1.0 / (yarn.factor * pos_freqs)

    def correction_dim(rotations: float) -> float:
        return (head_dim * math.log(yarn.original_max_position_embeddings / (rotations * 2 * math.pi))
                ) / (2 * math.log(base))

    low, high = correction_dim(yarn.beta_fast), correction_dim(yarn.beta_slow)
    if yarn.truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, head_dim - 1)
    if low == high:
        high += 0.001
    ramp = np.clip((np.arange(head_dim // 2, dtype=np.float32) - low) / (high - low), 0, 1)
    extrapolation_share = 1 - ramp
    inv_freq = interpolation * (1 - extrapolation_share) + extrapolation * extrapolation_share
    return inv_freq.astype(np.float32), yarn.attention_factor


class Linear:
    """y = x W^T + b; W in the model dtype, or MLX-quantized (affine) to save memory."""

    def __init__(self, weight: mx.array, bias: mx.array | None, bits: int | None = None,
                 group_size: int = 64):
        self.bias = bias
        self.bits, self.group_size = bits, group_size
        if bits is None:
            self.weight, self.scales, self.biases = weight, None, None
        else:
            self.weight, self.scales, self.biases = mx.quantize(weight, group_size=group_size, bits=bits)

    def __call__(self, x: mx.array) -> mx.array:
        if self.bits is None:
            y = x @ self.weight.T
        else:
            y = mx.quantized_matmul(x, self.weight, self.scales, self.biases, transpose=True,
                                    group_size=self.group_size, bits=self.bits)
        return y if self.bias is None else y + self.bias

    def parameters(self) -> list[mx.array]:
        return [a for a in (self.weight, self.scales, self.biases, self.bias) if a is not None]


class Attention:
    def __init__(self, cfg: GptOssConfig, q, k, v, o, sinks, sliding: bool, freqs, attn_factor):
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = q, k, v, o
        self.sinks = sinks
        self.H, self.KV, self.hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        self.window = cfg.sliding_window if sliding else None
        self.scale = 1.0 / math.sqrt(self.hd)
        self.freqs, self.attn_factor = freqs, attn_factor

    def _rope(self, x: mx.array, offset: int) -> mx.array:
        x = mx.fast.rope(x, self.hd, traditional=False, base=None, scale=1.0, offset=offset, freqs=self.freqs)
        # YaRN scales cos and sin; rotation is linear, so scaling the result is the same. (Folding
        # the square into the softmax scale instead drifts further from the reference in bf16.)
        return x * self.attn_factor if self.attn_factor != 1.0 else x

    def _mask(self, T: int, offset: int, start: int, S: int):
        """Boolean [T, S] mask (True = visible), "causal", or None when every key is visible."""
        if T == 1 and (self.window is None or S <= self.window):
            return None
        if self.window is None:
            return "causal"  # MLX aligns it to the last key: query i sees keys up to offset + i
        q_pos = mx.arange(offset, offset + T)[:, None]
        k_pos = mx.arange(start, start + S)[None, :]
        visible = k_pos <= q_pos
        if self.window is not None:
            visible = visible & (q_pos - k_pos < self.window)
        return visible

    def mask_for(self, T: int, cache):
        """The mask for T new tokens after what `cache` holds (the same for every layer of a kind,
        so the model builds it once per forward pass). A sliding cache keeps window - 1 keys."""
        offset = cache.offset
        S = (min(offset, self.window - 1) if self.window is not None else offset) + T
        return self._mask(T, offset, offset + T - S, S)

    def __call__(self, x: mx.array, cache, mask=BUILD) -> mx.array:
        B, T, _ = x.shape
        q = self.q_proj(x).reshape(B, T, self.H, self.hd).transpose(0, 2, 1, 3)
        k = self.k_proj(x).reshape(B, T, self.KV, self.hd).transpose(0, 2, 1, 3)
        v = self.v_proj(x).reshape(B, T, self.KV, self.hd).transpose(0, 2, 1, 3)
        offset = cache.offset
        if mask is BUILD:
            mask = self.mask_for(T, cache)
        q, k = self._rope(q, offset), self._rope(k, offset)
        k, v, start = cache.update(k, v)
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
                 lm_head: Linear, dtype):
        self.config = cfg
        self.embed, self.blocks, self.norm, self.lm_head = embed, blocks, norm, lm_head
        self.dtype = dtype

    def make_cache(self) -> ModelCache:
        cfg = self.config
        return ModelCache([SlidingCache(cfg.sliding_window) if cfg.is_sliding(i) else FullCache()
                           for i in range(cfg.num_hidden_layers)])

    def hidden(self, ids: mx.array, cache: ModelCache | None = None) -> mx.array:
        """Final normalized hidden states [B, T, D]."""
        if cache is None:
            cache = self.make_cache()
        x = self.embed(ids)
        masks = {}  # one per layer kind (sliding window or full), built once per pass
        for block, layer_cache in zip(self.blocks, cache.layers):
            kind = block.attn.window
            if kind not in masks:
                masks[kind] = block.attn.mask_for(x.shape[1], layer_cache)
            x = block(x, layer_cache, masks[kind])
        return mx.fast.rms_norm(x, self.norm, self.config.rms_norm_eps)

    def __call__(self, ids: mx.array, cache: ModelCache | None = None, last_only: bool = False) -> mx.array:
        """Logits [B, T, V] (or [B, 1, V] with last_only, which skips the vocab projection elsewhere)."""
        h = self.hidden(ids, cache)
        if last_only:
            h = h[:, -1:, :]
        return self.lm_head(h)
