"""A shipped demo model folder -> a trainable DemoModel (the inverse of export.py), for fine-tuning.

    model = load_folder(Path("models/demo"))

Experts come back from MXFP4 (engine/mxfp4.decode) and the rest from bf16, so the float model
starts exactly where the shipped one is (its logits match the engine's, see the tests).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from engine import mxfp4
from models.demo_train.model import DemoConfig, DemoModel


def folder_config(folder: Path) -> DemoConfig:
    """The DemoConfig a folder's config.json describes."""
    c = json.loads((folder / "config.json").read_text())
    rope = c["rope_scaling"]
    return DemoConfig(vocab_size=c["vocab_size"], hidden_size=c["hidden_size"], intermediate_size=c["intermediate_size"],
                      num_hidden_layers=c["num_hidden_layers"], num_local_experts=c["num_local_experts"],
                      num_experts_per_tok=c["num_experts_per_tok"], num_attention_heads=c["num_attention_heads"],
                      num_key_value_heads=c["num_key_value_heads"], head_dim=c["head_dim"],
                      sliding_window=c["sliding_window"], rope_theta=c["rope_theta"], yarn_factor=rope["factor"],
                      yarn_beta_fast=rope["beta_fast"], yarn_beta_slow=rope["beta_slow"],
                      yarn_original_max=rope["original_max_position_embeddings"], swiglu_limit=c["swiglu_limit"],
                      rms_norm_eps=c["rms_norm_eps"], layer_types=list(c["layer_types"]))


def folder_tensors(folder: Path) -> dict[str, np.ndarray]:
    """Every tensor of the folder's safetensors shards, by its official name (float32 or uint8)."""
    from safetensors import safe_open

    out = {}
    for shard in sorted(folder.glob("model*.safetensors")):
        with safe_open(str(shard), framework="pt") as f:
            for name in f.keys():
                t = f.get_tensor(name)
                out[name] = t.numpy() if t.dtype == torch.uint8 else t.float().numpy()
    return out


def folder_state(folder: Path, cfg: DemoConfig) -> dict[str, torch.Tensor]:
    """The folder's weights as DemoModel's state dict (names as export.checkpoint_tensors writes them)."""
    t = folder_tensors(folder)
    state = {}
    for name in DemoModel(cfg).state_dict():
        if ".mlp.gate_up_" in name or ".mlp.down_" in name:
            kind = "gate_up_proj" if "gate_up" in name else "down_proj"
            prefix = "model." + name.split(".mlp.")[0] + ".mlp.experts."
            if name.endswith("_bias"):
                value = t[prefix + f"{kind}_bias"]
            else:
                value = mxfp4.decode(t[prefix + f"{kind}_blocks"], t[prefix + f"{kind}_scales"])
        else:
            value = t[name if name.startswith("lm_head") else "model." + name]
        state[name] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    return state


def load_folder(folder: Path) -> DemoModel:
    """A DemoModel holding the folder's weights."""
    cfg = folder_config(folder)
    model = DemoModel(cfg)
    model.load_state_dict(folder_state(folder, cfg))
    return model
