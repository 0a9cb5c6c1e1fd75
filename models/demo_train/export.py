"""Trained demo weights -> a model folder in the official gpt-oss layout (experts packed MXFP4).

    python -m models.demo_train.export /work/demo_run models/demo

Writes config.json, generation_config.json, sharded safetensors + index (bf16 weights, uint8
MXFP4 blocks and E8M0 scales via engine/mxfp4.encode), and copies RUN/tokenizer.json. The
special-token ids in config.json come from that tokenizer.json, never from the 20b's numbers.

# E experts, D hidden, I expert intermediate, V vocab
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from engine import mxfp4
from models.demo_train.bpe import special_ids
from models.tiny import tiny_config, write_checkpoint


def checkpoint_tensors(state: dict) -> dict[str, np.ndarray]:
    """Our state dict (torch tensors) -> the official tensor names; experts MXFP4-encoded."""
    t: dict[str, np.ndarray] = {}
    for name, value in state.items():
        a = value.detach().float().numpy()
        if ".mlp.gate_up_" in name or ".mlp.down_" in name:
            kind = "gate_up_proj" if "gate_up" in name else "down_proj"
            prefix = "model." + name.split(".mlp.")[0] + ".mlp.experts."
            if name.endswith("_bias"):
                t[prefix + f"{kind}_bias"] = a
            else:
                blocks, scales = mxfp4.encode(a)  # blocks of 32 along the input dimension
                t[prefix + f"{kind}_blocks"] = blocks
                t[prefix + f"{kind}_scales"] = scales
        elif name.startswith("layers."):
            t["model." + name] = a
        elif name.startswith(("embed_tokens", "norm")):
            t["model." + name] = a
        else:
            t[name] = a  # lm_head.weight
    return t


def demo_config(cfg: dict, specials: dict[str, int]) -> dict:
    """config.json for the demo model: real gpt-oss keys, our sizes and our special-token ids."""
    return tiny_config(
        layers=cfg["num_hidden_layers"], experts=cfg["num_local_experts"], hidden=cfg["hidden_size"],
        intermediate=cfg["intermediate_size"], heads=cfg["num_attention_heads"],
        kv_heads=cfg["num_key_value_heads"], head_dim=cfg["head_dim"], vocab=cfg["vocab_size"],
        top_k=cfg["num_experts_per_tok"], sliding_window=cfg["sliding_window"],
        initial_context=cfg["yarn_original_max"],
        eos_token_id=specials["<|return|>"], pad_token_id=specials["<|endoftext|>"],
        layer_types=cfg["layer_types"], max_position_embeddings=8192, rope_theta=cfg["rope_theta"],
    )


def export(run: Path, out: Path, shard_mb: float = 4.0) -> Path:
    """Write the model folder `out` from RUN/model.pt and RUN/tokenizer.json."""
    import torch

    saved = torch.load(run / "model.pt", map_location="cpu", weights_only=False)
    tok = json.loads((run / "tokenizer.json").read_text())
    specials = special_ids(tok)
    cfg = demo_config(saved["config"], specials)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("model*.safetensors*"):
        old.unlink()  # a previous export may have had more shards
    write_checkpoint(out, cfg, checkpoint_tensors(saved["state"]), int(shard_mb * (1 << 20)))
    gen = {"bos_token_id": specials["<|startoftext|>"],
           "eos_token_id": [specials["<|return|>"], specials["<|call|>"]],
           # Greedy: a model this small is much less accurate when sampled (the app and the
           # terminal chat follow this; see engine/generation_config.py).
           "pad_token_id": specials["<|endoftext|>"], "do_sample": False}
    (out / "generation_config.json").write_text(json.dumps(gen, indent=2))
    shutil.copyfile(run / "tokenizer.json", out / "tokenizer.json")
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="training folder holding model.pt and tokenizer.json")
    ap.add_argument("out", type=Path, help="model folder to write (e.g. models/demo)")
    args = ap.parse_args(argv)
    print(f"wrote {export(args.run, args.out)}")


if __name__ == "__main__":
    main()
