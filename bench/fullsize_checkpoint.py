"""Write a checkpoint with exactly gpt-oss-20b's tensor names, shapes, dtypes and shard layout.

Two variants:
  random  real-looking bytes (plausible bf16 magnitudes, sane E8M0 scales): for speed runs.
  sparse  real headers, zero data: each shard is one header followed by a hole (ftruncate), so a
          13.8 GB checkpoint takes a few kilobytes of disk. For memory runs: loading it moves
          exactly as many bytes as the real one.
The writer streams tensor by tensor in chunks, so its own peak memory stays far under 2 GB.

  python -m bench.fullsize_checkpoint /work/bench_data/gpt-oss-20b-sparse --variant sparse
  python -m bench.fullsize_checkpoint /work/bench_data/gpt-oss-20b-random --variant random
  python -m bench.fullsize_checkpoint /work/bench_data/gpt-oss-120b-sparse --size 120b --variant sparse

Shard layout of the 20b (from its model.safetensors.index.json): tensors in the index's order
(layers sorted as strings: 0, 1, 10, ..., 19, 2, 20, ..., 9; then embed_tokens, norm, lm_head),
cut into three files where the official index cuts them. The 120b is cut greedily at 5 GB.

# E experts, D hidden, I expert intermediate, V vocab, H query heads, KV kv heads, hd head dim
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import struct
import sys
import time
from pathlib import Path

import numpy as np

CONFIG_20B = {
    "architectures": ["GptOssForCausalLM"],
    "attention_bias": True,
    "attention_dropout": 0.0,
    "eos_token_id": 200002,
    "experts_per_token": 4,
    "head_dim": 64,
    "hidden_act": "silu",
    "hidden_size": 2880,
    "initial_context_length": 4096,
    "initializer_range": 0.02,
    "intermediate_size": 2880,
    "layer_types": ["sliding_attention", "full_attention"] * 12,
    "max_position_embeddings": 131072,
    "model_type": "gpt_oss",
    "num_attention_heads": 64,
    "num_experts_per_tok": 4,
    "num_hidden_layers": 24,
    "num_key_value_heads": 8,
    "num_local_experts": 32,
    "output_router_logits": False,
    "pad_token_id": 199999,
    "quantization_config": {
        "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                   "model.embed_tokens", "lm_head"],
        "quant_method": "mxfp4",
    },
    "rms_norm_eps": 1e-05,
    "rope_scaling": {"beta_fast": 32.0, "beta_slow": 1.0, "factor": 32.0,
                     "original_max_position_embeddings": 4096, "rope_type": "yarn", "truncate": False},
    "rope_theta": 150000,
    "router_aux_loss_coef": 0.9,
    "sliding_window": 128,
    "swiglu_limit": 7.0,
    "tie_word_embeddings": False,
    "transformers_version": "4.55.0.dev0",
    "use_cache": True,
    "vocab_size": 201088,
}
GENERATION_CONFIG = {"bos_token_id": 199998, "do_sample": True,
                     "eos_token_id": [200002, 199999, 200012], "pad_token_id": 199999}

# Where the official 20b index starts its second and third shard.
SHARD_STARTS_20B = ("model.layers.18.self_attn.q_proj.weight", "model.layers.6.mlp.experts.gate_up_proj_blocks")
GREEDY_SHARD_BYTES = 5 * 10**9
CHUNK_BYTES = 64 * 2**20  # bytes generated and written at a time
_ITEMSIZE = {"BF16": 2, "U8": 1}


def config_for(size: str) -> dict:
    """config.json for '20b' or '120b' (the 120b differs in layer and expert counts only)."""
    cfg = json.loads(json.dumps(CONFIG_20B))
    if size == "120b":
        cfg.update(num_hidden_layers=36, num_local_experts=128,
                   layer_types=["sliding_attention", "full_attention"] * 18)
    elif size != "20b":
        raise SystemExit(f"--size must be 20b or 120b, not {size!r}")
    return cfg


def tensor_specs(cfg: dict) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, shape, safetensors dtype) in the official index's order."""
    D, I, E, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_local_experts"], cfg["vocab_size"]
    H, KV, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    per_layer = [
        ("input_layernorm.weight", (D,), "BF16"),
        ("self_attn.o_proj.bias", (D,), "BF16"),
        ("self_attn.o_proj.weight", (D, H * hd), "BF16"),
        ("self_attn.q_proj.bias", (H * hd,), "BF16"),
        ("self_attn.k_proj.bias", (KV * hd,), "BF16"),
        ("self_attn.v_proj.bias", (KV * hd,), "BF16"),
        ("self_attn.q_proj.weight", (H * hd, D), "BF16"),
        ("self_attn.k_proj.weight", (KV * hd, D), "BF16"),
        ("self_attn.v_proj.weight", (KV * hd, D), "BF16"),
        ("self_attn.sinks", (H,), "BF16"),
        ("mlp.router.bias", (E,), "BF16"),
        ("mlp.router.weight", (E, D), "BF16"),
        ("mlp.experts.gate_up_proj_bias", (E, 2 * I), "BF16"),
        ("mlp.experts.gate_up_proj_blocks", (E, 2 * I, D // 32, 16), "U8"),
        ("mlp.experts.gate_up_proj_scales", (E, 2 * I, D // 32), "U8"),
        ("mlp.experts.down_proj_bias", (E, D), "BF16"),
        ("mlp.experts.down_proj_blocks", (E, D, I // 32, 16), "U8"),
        ("mlp.experts.down_proj_scales", (E, D, I // 32), "U8"),
        ("post_attention_layernorm.weight", (D,), "BF16"),
    ]
    specs = []
    for layer in sorted(range(cfg["num_hidden_layers"]), key=str):
        specs += [(f"model.layers.{layer}.{n}", s, d) for n, s, d in per_layer]
    specs += [("model.embed_tokens.weight", (V, D), "BF16"), ("model.norm.weight", (D,), "BF16"),
              ("lm_head.weight", (V, D), "BF16")]
    return specs


def nbytes(shape: tuple[int, ...], dtype: str) -> int:
    return int(np.prod(shape)) * _ITEMSIZE[dtype]


def split_shards(specs, size: str) -> list[list[tuple[str, tuple[int, ...], str]]]:
    """Cut the ordered tensor list into shards (official cut points for the 20b)."""
    shards, current, current_bytes = [], [], 0
    for spec in specs:
        name, shape, dtype = spec
        cut = (name in SHARD_STARTS_20B) if size == "20b" else (
            current and current_bytes + nbytes(shape, dtype) > GREEDY_SHARD_BYTES)
        if cut:
            shards.append(current)
            current, current_bytes = [], 0
        current.append(spec)
        current_bytes += nbytes(shape, dtype)
    shards.append(current)
    return shards


def _header_bytes(shard) -> bytes:
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape, dtype in shard:
        n = nbytes(shape, dtype)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # safetensors pads the header to 8 bytes
    return struct.pack("<Q", len(raw)) + raw


def _random_chunk(rng: np.random.Generator, name: str, dtype: str, n: int) -> bytes:
    """n bytes of plausible data for one chunk of tensor `name`."""
    if dtype == "U8" and name.endswith("_scales"):
        # E8M0 exponents 118..121: block scales 2^-9..2^-6, like trained weights of std ~0.02.
        return (118 + (np.frombuffer(rng.bytes(n), np.uint8) & 3)).astype(np.uint8).tobytes()
    if dtype == "U8":
        return rng.bytes(n)  # any byte is two valid FP4 codes
    if name.endswith("layernorm.weight") or name == "model.norm.weight":
        return np.full(n // 2, 0x3F80, np.uint16).tobytes()  # bf16 1.0
    # bf16 with random sign and mantissa, exponent 119..122: magnitudes 2^-8..2^-4.
    r = np.frombuffer(rng.bytes(n), np.uint16)
    bits = (r & 0x807F) | ((119 + ((r >> 7) & 3)).astype(np.uint16) << 7)
    return bits.astype(np.uint16).tobytes()


def write_shard(path: Path, shard, variant: str, rng: np.random.Generator) -> int:
    """Write one shard; returns its size in bytes."""
    header = _header_bytes(shard)
    total = len(header) + sum(nbytes(s, d) for _, s, d in shard)
    with open(path, "wb") as fh:
        fh.write(header)
        if variant == "sparse":
            fh.truncate(total)  # a hole: reads as zeros, takes no disk
            return total
        for name, shape, dtype in shard:
            left = nbytes(shape, dtype)
            while left:
                n = min(left, CHUNK_BYTES)
                fh.write(_random_chunk(rng, name, dtype, n))
                left -= n
    return total


def write_checkpoint(out_dir: str | Path, variant: str = "sparse", size: str = "20b", seed: int = 0) -> Path:
    """Write config.json, generation_config.json, the index and the shards into out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = config_for(size)
    shards = split_shards(tensor_specs(cfg), size)
    rng = np.random.default_rng(seed)
    weight_map, total = {}, 0
    for i, shard in enumerate(shards):
        fname = f"model-{i:05d}-of-{len(shards) - 1:05d}.safetensors"  # the 20b's own naming
        write_shard(out / fname, shard, variant, rng)
        for name, shape, dtype in shard:
            weight_map[name] = fname
            total += nbytes(shape, dtype)
    (out / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}))
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    (out / "generation_config.json").write_text(json.dumps(GENERATION_CONFIG, indent=2))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--variant", choices=("random", "sparse"), default="sparse")
    ap.add_argument("--size", choices=("20b", "120b"), default="20b")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    out = write_checkpoint(args.out_dir, args.variant, args.size, args.seed)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    disk = sum(os.stat(p).st_blocks * 512 for p in out.iterdir())
    print(f"wrote {out}: {index['metadata']['total_size'] / 1e9:.2f} GB of tensors "
          f"({args.variant}), {disk / 1e9:.3f} GB on disk, in {time.perf_counter() - t0:.1f} s; "
          f"writer peak RSS {peak_rss / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
