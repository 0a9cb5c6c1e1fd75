"""The demo model made slower without changing a word it says: extra layers whose outputs are zero.

    python bench/padded_demo.py OUT [--extra-layers 24]

Each added layer is a copy of one of the demo's own layers (so it computes as much: attention,
router, experts) with its attention output projection and its experts' down projections (weights
and biases) zeroed: it adds nothing to the residual stream, so the logits, and the greedy answer,
are exactly the demo's while every decode step costs several times more. Benchmarks use it to
measure a cost per token (the local server's) against a step closer to a real model's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ZEROED = ("self_attn.o_proj.weight", "self_attn.o_proj.bias", "mlp.experts.down_proj_blocks",
          "mlp.experts.down_proj_bias")  # MXFP4 code 0 is +0.0 whatever the scale


def _read(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def write_padded_demo(out: Path, extra_layers: int = 24, demo: Path | None = None) -> Path:
    """Write the demo with `extra_layers` silent layers appended (before the final norm) to `out`."""
    from models.registry import demo_folder

    demo = Path(demo or demo_folder())
    out.mkdir(parents=True, exist_ok=True)
    cfg = json.loads((demo / "config.json").read_text())
    layers = cfg["num_hidden_layers"]
    index = json.loads((demo / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    tensors: dict[str, tuple[dict, bytes]] = {}
    for shard in shards:
        header, data = _read(demo / shard)
        for name, meta in header.items():
            if name != "__metadata__":
                a, b = meta["data_offsets"]
                tensors[name] = (meta, data[a:b])
    for i in range(layers, layers + extra_layers):
        source = i % 2 if layers >= 2 else 0  # same sliding/full alternation as the demo's layers
        prefix = f"model.layers.{source}."
        for name in [n for n in tensors if n.startswith(prefix)]:
            meta, blob = tensors[name]
            part = name[len(prefix):]
            tensors[f"model.layers.{i}.{part}"] = (meta, bytes(len(blob)) if part in ZEROED else blob)
    cfg["num_hidden_layers"] = layers + extra_layers
    cfg["layer_types"] = [cfg["layer_types"][i % 2 if layers >= 2 else 0] for i in range(layers + extra_layers)]

    header, blobs, offset = {}, [], 0
    for name, (meta, blob) in tensors.items():
        header[name] = {"dtype": meta["dtype"], "shape": meta["shape"], "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    shard = "model-00000-of-00000.safetensors"
    with open(out / shard, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head)
        for blob in blobs:
            f.write(blob)
    (out / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": offset}, "weight_map": {name: shard for name in tensors}}, indent=2))
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    for name in ("tokenizer.json", "generation_config.json"):
        shutil.copy(demo / name, out / name)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--extra-layers", type=int, default=24)
    args = ap.parse_args()
    print(write_padded_demo(Path(args.out), args.extra_layers))


if __name__ == "__main__":
    main()
