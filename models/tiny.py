"""Tiny random gpt-oss checkpoints in exactly the official layout, for tests and benchmarks.

    python -m models.tiny OUT --layers 4 --experts 8 --hidden 96 --seed 0

Same tensor names, dtypes (bf16 weights, uint8 MXFP4 blocks and E8M0 scales), sharded safetensors
with an index json, config.json with the real keys and generation_config.json. Weights are drawn
so that activations stay O(1) through the layers (numerically tame), experts are MXFP4-encoded
with engine/mxfp4.

# E experts, D hidden, I expert intermediate, V vocab, H query heads, KV kv heads, hd head dim
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from engine import mxfp4
from models.safetensors_writer import write_sharded


def tiny_config(layers=4, experts=8, hidden=96, intermediate=None, heads=4, kv_heads=2, head_dim=32,
                vocab=512, top_k=4, sliding_window=16, initial_context=4096, **extra) -> dict:
    """A config.json dict with the real gpt-oss keys, scaled down."""
    top_k = min(top_k, experts)
    cfg = {
        "architectures": ["GptOssForCausalLM"],
        "model_type": "gpt_oss",
        "hidden_size": hidden,
        "intermediate_size": intermediate or hidden,
        "num_hidden_layers": layers,
        "num_local_experts": experts,
        "num_experts_per_tok": top_k,
        "experts_per_token": top_k,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": head_dim,
        "vocab_size": vocab,
        "rms_norm_eps": 1e-5,
        "sliding_window": sliding_window,
        "layer_types": ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers)],
        "rope_theta": 150000,
        "rope_scaling": {"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                         "original_max_position_embeddings": initial_context, "truncate": False},
        "initial_context_length": initial_context,
        "max_position_embeddings": 131072,
        "swiglu_limit": 7.0,
        "tie_word_embeddings": False,
        "attention_bias": True,
        "attention_dropout": 0.0,
        "hidden_act": "silu",
        "initializer_range": 0.02,
        "output_router_logits": False,
        "router_aux_loss_coef": 0.9,
        "use_cache": True,
        "eos_token_id": 200002 if vocab > 200002 else vocab - 1,
        "pad_token_id": 199999 if vocab > 199999 else vocab - 2,
        "torch_dtype": "bfloat16",
        "quantization_config": {"quant_method": "mxfp4", "modules_to_not_convert": [
            "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]},
    }
    cfg.update(extra)
    return cfg


def random_tensors(cfg: dict, seed: int = 0, expert_scale: float = 1.0) -> dict[str, np.ndarray]:
    """Weights for `cfg`, float32 except the MXFP4 blocks/scales (uint8), in checkpoint order."""
    rng = np.random.default_rng(seed)
    D, I, E, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_local_experts"], cfg["vocab_size"]
    H, KV, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]

    def normal(*shape, std):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    t: dict[str, np.ndarray] = {}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = 1 + normal(D, std=0.1)
        t[p + "post_attention_layernorm.weight"] = 1 + normal(D, std=0.1)
        for name, rows, cols in (("q", H * hd, D), ("k", KV * hd, D), ("v", KV * hd, D), ("o", D, H * hd)):
            t[p + f"self_attn.{name}_proj.weight"] = normal(rows, cols, std=cols ** -0.5)
            t[p + f"self_attn.{name}_proj.bias"] = normal(rows, std=0.02)
        t[p + "self_attn.sinks"] = normal(H, std=1.0)
        t[p + "mlp.router.weight"] = normal(E, D, std=D ** -0.5)
        t[p + "mlp.router.bias"] = normal(E, std=0.1)
        for name, rows, cols, std in (("gate_up_proj", 2 * I, D, D ** -0.5), ("down_proj", D, I, I ** -0.5 * 0.5)):
            # One expert at a time: full-size layers never hold their float32 weights at once.
            encoded = [mxfp4.encode(normal(rows, cols, std=expert_scale * std)) for _ in range(E)]
            t[p + f"mlp.experts.{name}_blocks"] = np.stack([b for b, _ in encoded])
            t[p + f"mlp.experts.{name}_scales"] = np.stack([s for _, s in encoded])
            t[p + f"mlp.experts.{name}_bias"] = normal(E, rows, std=0.02)
    t["model.embed_tokens.weight"] = normal(V, D, std=1.0)
    t["model.norm.weight"] = 1 + normal(D, std=0.1)
    t["lm_head.weight"] = normal(V, D, std=D ** -0.5)
    return t


def write_checkpoint(out_dir: str | Path, cfg: dict, tensors: dict[str, np.ndarray],
                     shard_bytes: int = 4 << 20) -> Path:
    """Write config.json, generation_config.json and sharded safetensors to out_dir."""
    out = Path(out_dir)
    bf16 = {name for name, a in tensors.items() if a.dtype == np.float32}
    write_sharded(out, tensors, bf16, shard_bytes)
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    eos = cfg["eos_token_id"]
    gen = {"bos_token_id": cfg["vocab_size"] - 3 if cfg["vocab_size"] < 199998 else 199998,
           "eos_token_id": [eos] if isinstance(eos, int) else eos,
           "pad_token_id": cfg["pad_token_id"], "do_sample": True, "temperature": 1.0, "top_p": 1.0}
    (out / "generation_config.json").write_text(json.dumps(gen, indent=2))
    return out


def write_tiny_checkpoint(out_dir: str | Path, layers: int = 4, experts: int = 8, hidden: int = 96,
                          seed: int = 0, shard_bytes: int = 4 << 20, **config) -> Path:
    """A random tiny checkpoint in the official layout; extra keyword args go to tiny_config."""
    cfg = tiny_config(layers=layers, experts=experts, hidden=hidden, **config)
    return write_checkpoint(out_dir, cfg, random_tensors(cfg, seed), shard_bytes)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=96)
    ap.add_argument("--intermediate", type=int, default=None)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=32)
    ap.add_argument("--vocab", type=int, default=512)
    ap.add_argument("--top-k", type=int, default=4)
    ap.add_argument("--sliding-window", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shard-mb", type=float, default=4.0)
    a = ap.parse_args(argv)
    out = write_tiny_checkpoint(a.out, a.layers, a.experts, a.hidden, a.seed, int(a.shard_mb * (1 << 20)),
                                intermediate=a.intermediate, heads=a.heads, kv_heads=a.kv_heads,
                                head_dim=a.head_dim, vocab=a.vocab, top_k=a.top_k,
                                sliding_window=a.sliding_window)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
