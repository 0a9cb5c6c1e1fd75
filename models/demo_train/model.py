"""A float, trainable gpt-oss of any size (PyTorch): the same math as the engine, written for gradients.

Why PyTorch and not MLX: MLX's CPU backend on this Linux machine multiplies matrices about 58x
slower than NumPy/PyTorch (measured with MLX 0.32.4: 1024^3 float32 matmul 0.72 s vs 0.0125 s),
which would turn an hour of training into days. The engine (MLX) is what runs and evaluates the exported model.

# B batch, L tokens, D hidden, H query heads, G kv heads, Hd head dim, E experts, K experts per token,
# I expert intermediate size, V vocab.

Same forward pass as the reference (GPT_OSS_FACTS.md): RMSNorm, GQA attention with a learned
sink logit per head, sliding-window layers, YaRN RoPE (truncate=false), a top-K router with a
softmax over the chosen K, clamped SwiGLU experts with interleaved gate/up rows. The expert
weights can be fake-quantized to MXFP4 with a straight-through gradient, so the exported model
(experts packed MXFP4, as the engine runs them) keeps its accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class DemoConfig:
    vocab_size: int = 768
    hidden_size: int = 128
    intermediate_size: int = 128
    num_hidden_layers: int = 4
    num_local_experts: int = 4
    num_experts_per_tok: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 32
    sliding_window: int = 128
    rope_theta: float = 150000.0
    yarn_factor: float = 32.0
    yarn_beta_fast: float = 32.0
    yarn_beta_slow: float = 1.0
    yarn_original_max: int = 4096
    swiglu_limit: float = 7.0
    rms_norm_eps: float = 1e-5
    layer_types: list[str] = field(default_factory=list)

    def __post_init__(self):
        if not self.layer_types:
            # As in gpt-oss: even layers slide, odd layers see everything.
            self.layer_types = ["sliding_attention" if i % 2 == 0 else "full_attention"
                                for i in range(self.num_hidden_layers)]


def yarn_inv_freq(cfg: DemoConfig) -> tuple[torch.Tensor, float]:
    """Per-pair inverse frequencies [Hd/2] and the cos/sin concentration, as the reference computes."""
    d = cfg.head_dim
    freq = cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    if cfg.yarn_factor <= 1.0:
        return (1.0 / freq).float(), 1.0
    concentration = 0.1 * math.log(cfg.yarn_factor) + 1.0
    d_half = d / 2
    low = d_half * math.log(cfg.yarn_original_max / (cfg.yarn_beta_fast * 2 * math.pi)) / math.log(cfg.rope_theta)
    high = d_half * math.log(cfg.yarn_original_max / (cfg.yarn_beta_slow * 2 * math.pi)) / math.log(cfg.rope_theta)
    ramp = (torch.arange(d_half, dtype=torch.float64) - low) / (high - low)
    mask = 1 - ramp.clamp(0, 1)  # 1 keeps the original frequency (extrapolation)
    inv_freq = (1.0 / (cfg.yarn_factor * freq)) * (1 - mask) + (1.0 / freq) * mask
    return inv_freq.float(), concentration


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, H, L, Hd], cos/sin [L, Hd/2]: NeoX-style halves."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def mxfp4_round(w: torch.Tensor) -> torch.Tensor:
    """w [..., N] rounded to MXFP4 values (blocks of 32 along the last axis), no gradient.

    Matches engine/mxfp4.encode: scale 2**(floor(log2 amax) - 2), nearest FP4 value, ties to
    even, saturate at 6.
    """
    shape = w.shape
    x = w.detach().reshape(*shape[:-1], -1, 32)
    amax = x.abs().amax(dim=-1, keepdim=True)
    scale = torch.exp2(torch.floor(torch.log2(amax.clamp_min(1e-30))) - 2)
    m = (x.abs() / scale).clamp_max(6.0)
    # FP4 grid: step 0.5 below 2, step 1 in [2, 4), step 2 in [4, 6]; torch.round is half-to-even.
    q = torch.where(m < 2, torch.round(m * 2) / 2, torch.where(m < 4, torch.round(m), torch.round(m / 2) * 2))
    return torch.where(amax > 0, torch.sign(x) * q * scale, torch.zeros_like(x)).reshape(shape)


def fake_mxfp4(w: torch.Tensor) -> torch.Tensor:
    """MXFP4 rounding in the forward pass, identity in the backward pass (straight-through)."""
    return w + (mxfp4_round(w) - w).detach()


class Attention(nn.Module):
    def __init__(self, cfg: DemoConfig):
        super().__init__()
        self.cfg = cfg
        h, g, hd, d = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim, cfg.hidden_size
        self.q_proj = nn.Linear(d, h * hd)
        self.k_proj = nn.Linear(d, g * hd)
        self.v_proj = nn.Linear(d, g * hd)
        self.o_proj = nn.Linear(h * hd, d)
        self.sinks = nn.Parameter(torch.zeros(h))

    def forward(self, x, cos, sin, mask, past=None):
        """x [B, L, D]; past: (k, v) [1, G, P, Hd] of a shared prefix every row continues.

        Returns the output [B, L, D] and this call's (k, v), for rows that continue x.
        """
        cfg = self.cfg
        b, l, _ = x.shape
        h, g, hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        q = self.q_proj(x).view(b, l, h, hd).transpose(1, 2)
        k = self.k_proj(x).view(b, l, g, hd).transpose(1, 2)
        v = self.v_proj(x).view(b, l, g, hd).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        own = (k, v)
        if past is not None:
            k = torch.cat([past[0].expand(b, -1, -1, -1), k], dim=2)
            v = torch.cat([past[1].expand(b, -1, -1, -1), v], dim=2)
        k, v = k.repeat_interleave(h // g, dim=1), v.repeat_interleave(h // g, dim=1)
        # The sink is one more logit per head in the softmax denominator that carries no value:
        # an extra all-zero key (score 0) whose mask entry is the sink logit, with a zero value.
        zeros = k.new_zeros(b, h, 1, hd)
        k, v = torch.cat([k, zeros], dim=2), torch.cat([v, zeros], dim=2)
        sink = self.sinks.view(1, h, 1, 1).expand(1, h, l, 1)
        bias = torch.cat([mask.expand(1, h, l, mask.shape[-1]), sink], dim=-1)  # [1, H, L, P+L+1]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # scale 1/sqrt(Hd)
        out = out.transpose(1, 2).reshape(b, l, h * hd)
        return self.o_proj(out), own


class Experts(nn.Module):
    def __init__(self, cfg: DemoConfig):
        super().__init__()
        self.cfg = cfg
        e, d, i = cfg.num_local_experts, cfg.hidden_size, cfg.intermediate_size
        self.router = nn.Linear(d, e)
        # Rows of gate_up are interleaved as in the checkpoint: row 2j is gate, 2j+1 is up.
        self.gate_up_proj = nn.Parameter(torch.randn(e, 2 * i, d) / math.sqrt(d))
        self.gate_up_bias = nn.Parameter(torch.zeros(e, 2 * i))
        self.down_proj = nn.Parameter(torch.randn(e, d, i) / math.sqrt(i) / math.sqrt(2 * cfg.num_hidden_layers))
        self.down_bias = nn.Parameter(torch.zeros(e, d))
        self.quantize = False

    def forward(self, x):
        cfg = self.cfg
        shape = x.shape
        x = x.reshape(-1, shape[-1])  # [N, D]
        logits = self.router(x)  # [N, E]
        top, idx = logits.topk(cfg.num_experts_per_tok, dim=-1)  # [N, K]
        # Softmax over the chosen K only, spread back to [N, E] with zeros for the others.
        weights = torch.zeros_like(logits).scatter(1, idx, torch.softmax(top, dim=-1))
        wgu, wd = self.gate_up_proj, self.down_proj
        if self.quantize:
            wgu, wd = fake_mxfp4(wgu), fake_mxfp4(wd)
        # Every expert on every token, then weighted: E/K times the arithmetic of running only the
        # chosen ones, but at these sizes two large matmuls beat a loop of gathers (1.6x faster
        # per step); unchosen experts get weight 0, so the result and gradients are the same.
        e, i, d = wgu.shape[0], cfg.intermediate_size, shape[-1]
        h = (x @ wgu.reshape(e * 2 * i, d).t()).view(-1, e, 2 * i) + self.gate_up_bias  # [N, E, 2I]
        gate, up = h[..., 0::2], h[..., 1::2]
        gate = gate.clamp(max=cfg.swiglu_limit)
        up = up.clamp(-cfg.swiglu_limit, cfg.swiglu_limit)
        act = gate * torch.sigmoid(1.702 * gate) * (up + 1)  # [N, E, I]
        # Weighting each expert's activations before the down projection turns the per-expert
        # matmuls and the weighted sum into one [N, E*I] x [E*I, D] matmul.
        weighted = (act * weights[..., None]).reshape(-1, e * i)
        out = weighted @ wd.transpose(1, 2).reshape(e * i, d) + weights @ self.down_bias
        return out.reshape(shape)


class Block(nn.Module):
    def __init__(self, cfg: DemoConfig, layer: int):
        super().__init__()
        self.sliding = cfg.layer_types[layer] == "sliding_attention"
        self.input_layernorm = nn.RMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = nn.RMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps)
        self.mlp = Experts(cfg)

    def forward(self, x, cos, sin, full_mask, sliding_mask, past=None):
        attn, kv = self.self_attn(self.input_layernorm(x), cos, sin, sliding_mask if self.sliding else full_mask, past)
        x = x + attn
        return x + self.mlp(self.post_attention_layernorm(x)), kv


class DemoModel(nn.Module):
    def __init__(self, cfg: DemoConfig):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList([Block(cfg, i) for i in range(cfg.num_hidden_layers)])
        self.norm = nn.RMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        nn.init.normal_(self.embed_tokens.weight, std=0.02)
        nn.init.normal_(self.lm_head.weight, std=0.02)

    def set_quantize(self, on: bool) -> None:
        """Fake-quantize the expert weights to MXFP4 (straight-through) from now on."""
        for layer in self.layers:
            layer.mlp.quantize = on

    def forward(self, ids: torch.Tensor, select: torch.Tensor | None = None,
                prefix: torch.Tensor | None = None) -> torch.Tensor:
        """ids [B, L] -> logits [B, L, V].

        select [B, L] bool: return logits [S, V] of the selected positions only (training needs
        only the completion's, and the vocabulary projection is a large share of the work).
        prefix [1, P]: tokens every row starts with; the rows are then prefix + ids, and only the
        logits of ids are returned. Training batches share their system message this way: it is
        a third of the tokens, computed once per batch instead of once per row.
        """
        cfg = self.cfg
        p = 0 if prefix is None else prefix.shape[1]
        total = p + ids.shape[1]
        inv_freq, conc = yarn_inv_freq(cfg)
        angles = torch.arange(total, dtype=torch.float32)[:, None] * inv_freq[None, :]
        cos, sin = torch.cos(angles) * conc, torch.sin(angles) * conc
        i = torch.arange(total)[:, None]
        j = torch.arange(total)[None, :]
        neg = torch.tensor(float("-inf"))
        full_mask = torch.where(j <= i, 0.0, neg)
        sliding_mask = torch.where((j <= i) & (i - j < cfg.sliding_window), 0.0, neg)
        x = self.embed_tokens(ids)
        shared = None if prefix is None else self.embed_tokens(prefix)
        for layer in self.layers:
            past = None
            if shared is not None:
                shared, past = layer(shared, cos[:p], sin[:p], full_mask[:p, :p], sliding_mask[:p, :p])
            x, _ = layer(x, cos[p:], sin[p:], full_mask[p:], sliding_mask[p:], past)
        if select is not None:
            x = x[select]
        return self.lm_head(self.norm(x))
