"""What Structured Outputs cost per token: the llguidance mask vs a decode step at the 20b's shapes.

    PYTHONPATH=. python bench/structured_cost.py [--layers 1] [--decode 24] [--rounds 3]

1. The mask alone: a realistic constrained reply (a JSON answer of ~150 tokens to a nested schema)
   fed through engine.structured.ReplyConstraint token by token; each next_mask call is timed with
   the bit expansion to a [V] bool mask evaluated (what the decode loop waits for).
2. Side by side in one run, rounds alternating: greedy decode through engine.generate on a
   checkpoint with gpt-oss-20b's layer shapes and its full vocabulary (201088: the mask, the
   masking and the lm_head are vocabulary-sized), unconstrained vs constrained to a JSON Schema
   (the mask is computed while the model step runs). A single layer keeps the checkpoint small
   (~3 GB); the 20b's step has 24 such layers, so the relative cost there is smaller still.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import shutil
import statistics
import time
from pathlib import Path

import mlx.core as mx
import numpy as np

from engine.structured import ReplyConstraint
from engine.tokenizer import load_tokenizer
from models.tokenizer_json import shared_o200k_harmony_folder

SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "items": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "qty": {"type": "integer", "minimum": 0}, "unit": {"enum": ["kg", "g", "pcs"]},
        }, "required": ["name", "qty"], "additionalProperties": False}},
        "total": {"type": "number"}, "notes": {"type": ["string", "null"]},
    },
    "required": ["title", "items", "total"], "additionalProperties": False,
}
ANSWER = {"title": "Shopping list for the week-end 🛒", "items": [
    {"name": "coffee beans, dark roast", "qty": 2, "unit": "pcs"}, {"name": "eggs", "qty": 12},
    {"name": "flour (type 55)", "qty": 1, "unit": "kg"}, {"name": "café crème", "qty": 250, "unit": "g"}],
    "total": 23.75, "notes": "Ask for the receipt; \"bio\" if possible."}


def mask_times(enc) -> np.ndarray:
    """Seconds per next_mask call along a constrained final answer (header forced, then JSON)."""
    reply = "<|channel|>final<|message|>" + json.dumps(ANSWER, ensure_ascii=False) + "<|return|>"
    ids = enc.encode(reply, allowed_special="all")
    constraint = ReplyConstraint(enc, response_schema=SCHEMA, final_only=True)
    times, token = [], None
    for t in ids:
        t0 = time.perf_counter()
        mask = constraint.next_mask(token)
        if mask is not None:
            mx.eval(mask)
            assert mask[t].item(), f"the mask refused {enc.decode([t])!r}"
        times.append(time.perf_counter() - t0)
        token = t
    return np.array(times)


def make_checkpoint(folder: Path, layers: int) -> Path:
    if (folder / "config.json").exists():
        return folder
    from models.tiny import random_tensors, tiny_config, write_checkpoint

    cfg = tiny_config(layers=layers, experts=32, hidden=2880, intermediate=2880, heads=64, kv_heads=8,
                      head_dim=64, vocab=201088, sliding_window=128)
    print(f"writing a {layers}-layer checkpoint with the 20b's shapes and vocabulary to {folder} ...", flush=True)
    write_checkpoint(folder, cfg, random_tensors(cfg, seed=0), shard_bytes=1 << 30)
    shutil.copy(shared_o200k_harmony_folder() / "tokenizer.json", folder / "tokenizer.json")
    return folder


def decode_tps(model, enc, prompt: list[int], n: int, constrained: bool) -> float:
    from engine.generate import Generation, SamplingParams

    constraint = ReplyConstraint(enc, response_schema=SCHEMA, final_only=True) if constrained else None
    gen = Generation(model, prompt, model.make_cache(), SamplingParams(temperature=0.0), max_tokens=n + 1,
                     constraint=constraint)
    first = None
    for i, _ in enumerate(gen):
        if i == 0:
            first = time.perf_counter()
    return n / (time.perf_counter() - first)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folder", type=Path, default=Path("/tmp/structured_cost_ckpt"))
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--decode", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dtype", default="bfloat16")
    a = ap.parse_args(argv)
    enc = load_tokenizer(shared_o200k_harmony_folder())

    mask_times(enc)  # warm-up: llguidance's view of the vocabulary is built once per encoding
    ms = mask_times(enc) * 1e3
    print(f"mask per token over {len(ms)} tokens: median {np.median(ms):.3f} ms, mean {ms.mean():.3f} ms, "
          f"p95 {np.percentile(ms, 95):.3f} ms, max {ms.max():.2f} ms")

    from engine import load_model
    model = load_model(make_checkpoint(a.folder, a.layers), dtype=a.dtype)
    prompt = enc.encode("<|start|>user<|message|>Give me the list as JSON.<|end|><|start|>assistant", allowed_special="all")
    decode_tps(model, enc, prompt, 4, True)  # warm-up both paths
    decode_tps(model, enc, prompt, 4, False)
    res = {False: [], True: []}
    for r in range(a.rounds):
        for constrained in (False, True):
            res[constrained].append(decode_tps(model, enc, prompt, a.decode, constrained))
            print(f"round {r} {'constrained' if constrained else 'free':11s} {res[constrained][-1]:7.2f} tok/s", flush=True)
            gc.collect()
    free, cons = statistics.median(res[False]), statistics.median(res[True])
    step, added = 1e3 / free, 1e3 / cons - 1e3 / free
    print(f"\nmachine: {platform.machine()} {platform.system()}, MLX {mx.__version__}, device {mx.default_device()}, "
          f"{a.dtype}; {a.layers} layer(s) of the 20b + its 201088-token head")
    print(f"decode step {step:.2f} ms free, {1e3 / cons:.2f} ms constrained: +{added:.2f} ms/token "
          f"({100 * added / step:+.1f}%)")
    print(f"mask median {np.median(ms):.3f} ms = {100 * np.median(ms) / step:.1f}% of this step; "
          f"{100 * np.median(ms) / 22.7:.1f}% of the 20b's 22.7 ms step on an M2 Pro (44 tok/s)")


if __name__ == "__main__":
    main()
