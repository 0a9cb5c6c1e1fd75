"""Model folder -> GptOss: validate everything first, then build the model from lazy arrays.

Experts are never dequantized: the checkpoint's uint8 MXFP4 blocks are viewed as uint32 and used
as they are. Each layer is evaluated as soon as it is built, so peak memory while loading stays
close to the loaded weights themselves.
"""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx

from engine.checkpoint import Checkpoint
from engine.config import load_config
from engine.errors import ModelError, require_folder
from engine.model import Attention, Block, Embedding, GptOss, Linear, Rotary, weights_by_column, yarn_inv_freq
from engine.moe import MoE, ExpertWeights, experts_mlx

DTYPES = {"bfloat16": mx.bfloat16, "float16": mx.float16, "float32": mx.float32}


def _packed(ckpt: Checkpoint, name: str) -> mx.array:
    """[..., blocks, 16] uint8 -> [..., blocks * 4] uint32, MLX's mxfp4 packing (same bytes)."""
    a = ckpt.array(name)
    return a.reshape(*a.shape[:-2], -1).view(mx.uint32)


def _expert_weights(ckpt: Checkpoint, prefix: str, dtype) -> ExpertWeights:
    p = prefix + "mlp.experts."
    return ExpertWeights(
        gate_up_blocks=_packed(ckpt, p + "gate_up_proj_blocks"),
        gate_up_scales=ckpt.array(p + "gate_up_proj_scales"),
        gate_up_bias=ckpt.array(p + "gate_up_proj_bias").astype(dtype),
        down_blocks=_packed(ckpt, p + "down_proj_blocks"),
        down_scales=ckpt.array(p + "down_proj_scales"),
        down_bias=ckpt.array(p + "down_proj_bias").astype(dtype),
    )


def experts_backend(dtype, cfg):
    """The experts function every MoE layer will call, chosen once here: the custom Metal kernels
    when they are on and pass their self-test, else MLX's gather_qmm (engine.moe.experts_mlx)."""
    try:
        from engine.metal_kernels import choose_experts
    except ImportError:  # the kernels are optional: a broken install means the MLX path
        return experts_mlx
    fused = choose_experts(dtype, cfg.hidden_size, cfg.intermediate_size, cfg.num_experts_per_tok,
                           cfg.swiglu_limit, reference=experts_mlx)
    return fused or experts_mlx


def default_dtype() -> str:
    """bfloat16 on the GPU; float32 on MLX's CPU backend, which runs bf16 matmuls ~6x slower."""
    return "bfloat16" if mx.default_device() == mx.gpu else "float32"


def load_model(folder: str | Path, dtype: str | None = None, policy=None,
               layers: tuple[int, int] | None = None, head: bool = True,
               by_column: bool | None = None) -> GptOss:
    """Load a gpt-oss checkpoint folder (official Hugging Face layout).

    dtype: compute dtype of everything but the experts ("bfloat16", or "float32" for parity
    checks); None picks default_dtype().
    policy: an engine.memory.Policy (non-expert bits, embedding on CPU, expert slots, KV cache
    bits); None keeps every weight resident in `dtype` and the KV cache in `dtype`.
    layers, head: for one stage of a pipeline (engine/distributed.py): only layers [first, last)
    are read (the model's blocks are those), and with head=False no embedding, norm or lm_head.
    by_column: hold dense weights as [in, out]; None picks the backend's layout (weights_by_column).
    Raises ModelError with one clear sentence when the folder can't be used.
    """
    dtype = dtype or default_dtype()
    if dtype not in DTYPES:
        raise ModelError(f"Unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}.")
    folder = Path(folder)
    require_folder(folder)
    cfg = load_config(folder)
    ckpt = Checkpoint(folder, cfg)
    dt = DTYPES[dtype]
    bits = getattr(policy, "non_expert_bits", None)
    slots = getattr(policy, "expert_slots", None)
    by_column = weights_by_column() if by_column is None else by_column

    def w(name):
        return ckpt.array(name).astype(dt)

    def linear(name, quantize=True):
        bias = w(name + ".bias") if name + ".bias" in ckpt.tensors else None
        return Linear(w(name + ".weight"), bias, bits if quantize else None, by_column=by_column)

    # The big single tensors first: quantizing lm_head needs a transient bf16 copy, which must
    # not stack on top of every layer already loaded.
    head_name = "model.embed_tokens" if cfg.tie_word_embeddings else "lm_head"
    lm_head = linear(head_name) if head else None
    norm = w("model.norm.weight") if head else None
    mx.eval(lm_head.parameters() if head else [], norm)
    if not head:
        embed = None
    elif getattr(policy, "embed_on_cpu", False):
        embed = Embedding(ckpt.memmap("model.embed_tokens.weight"), dt)
    else:
        embed = Embedding(w("model.embed_tokens.weight"), dt)
        mx.eval(embed.table)

    compute = experts_backend(dt, cfg)
    rotary = Rotary(*yarn_inv_freq(cfg.head_dim, cfg.rope_theta, cfg.rope_scaling))
    blocks = []
    for i in range(*(layers or (0, cfg.num_hidden_layers))):
        p = f"model.layers.{i}."
        attn = Attention(cfg, *(linear(p + f"self_attn.{n}_proj") for n in "qkvo"),
                         sinks=w(p + "self_attn.sinks"),
                         sliding=cfg.is_sliding(i), rotary=rotary)
        if slots is not None:
            from engine.residency import load_layer_experts  # only when the plan asks for it
            experts = load_layer_experts(ckpt, i, cfg, slots, dtype=dt)
        else:
            experts = _expert_weights(ckpt, p, dt)
        moe = MoE(w(p + "mlp.router.weight"), w(p + "mlp.router.bias"), experts,
                  cfg.num_experts_per_tok, cfg.swiglu_limit, compute=compute)
        block = Block(w(p + "input_layernorm.weight"), attn, w(p + "post_attention_layernorm.weight"),
                      moe, cfg.rms_norm_eps)
        mx.eval(_block_arrays(block))  # read this layer now: bounds the loading peak
        blocks.append(block)
    return GptOss(cfg, embed, blocks, norm, lm_head, dt, kv_bits=getattr(policy, "kv_bits", None))


def _block_arrays(block: Block) -> list[mx.array]:
    a = block.attn
    arrays = [block.attn_norm, block.mlp_norm, a.sinks, block.moe.router_w, block.moe.router_b]
    for lin in (a.q_proj, a.k_proj, a.v_proj, a.o_proj):
        arrays += lin.parameters()
    if isinstance(block.moe.experts, ExpertWeights):
        arrays += list(vars(block.moe.experts).values())
    return arrays
