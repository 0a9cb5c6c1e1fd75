"""Prefill and decode tokens/s in one run: mlx-lm, ours with no memory policy, and ours with the
policy the planner picks for gpt-oss-20b on a 16 GB Mac (what the app ships), on the same folder.

    python -m bench.engine_speed [--folder /work/bench_data/speed-3l] [--layers 3] [--rounds 3]

The checkpoint has gpt-oss-20b's layer shapes (hidden 2880, 32 experts of 2880, 64/8 heads of 64,
MXFP4 experts in the official layout) with fewer layers and a smaller vocabulary, so it is 1-2 GB.
The 16 GB policy is planned on a header-only full-size 20b folder (bench/fullsize_checkpoint.py)
with a 10.7 GB budget and applied as is (8-bit attention/lm_head, embedding on the host, the same
expert slots per layer, the plan's prefill chunk). Rounds alternate between the engines so machine
noise hits all alike (each round starts with the next engine); the ratios are what count.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import time
from pathlib import Path

import mlx.core as mx
import numpy as np


def make_checkpoint(folder: Path, layers: int, vocab: int) -> Path:
    """The 20b's config and official tensor layout cut to `layers` layers and a `vocab` vocabulary,
    with plausible random bytes (bench/fullsize_checkpoint.py's "random" data: every FP4 code,
    trained-like scales), written in seconds."""
    if (folder / "config.json").exists():
        return folder
    import json

    from bench import fullsize_checkpoint as fs

    cfg = fs.config_for("20b")
    cfg.update(num_hidden_layers=layers, layer_types=cfg["layer_types"][:layers], vocab_size=vocab)
    for key in ("eos_token_id", "pad_token_id"):
        cfg[key] = vocab - 1 if key in cfg else cfg.get(key)
    print(f"writing a {layers}-layer checkpoint with the 20b's layer shapes to {folder} ...", flush=True)
    folder.mkdir(parents=True, exist_ok=True)
    rng, weight_map = np.random.default_rng(0), {}
    shards = fs.split_shards(fs.tensor_specs(cfg), "120b")  # greedy 5 GB cuts: one shard here
    for i, shard in enumerate(shards):
        name = f"model-{i:05d}-of-{len(shards) - 1:05d}.safetensors"
        fs.write_shard(folder / name, shard, "random", rng)
        weight_map.update({t: name for t, _, _ in shard})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (folder / "config.json").write_text(json.dumps(cfg, indent=2))
    return folder


def timed_run(step_fn, prompt: mx.array, decode_tokens: int) -> tuple[float, float]:
    """step_fn(prompt) yields token ids; returns (prefill tok/s, decode tok/s)."""
    start = time.perf_counter()
    first = None
    n = 0
    for _ in step_fn(prompt):
        n += 1
        if first is None:
            first = time.perf_counter()
        if n == decode_tokens + 1:
            break
    end = time.perf_counter()
    return prompt.size / (first - start), (n - 1) / (end - first)


MAC16_BUDGET = int(10.7e9)  # a 16 GB Mac's default GPU working set, rounded down


def shipped_plan(context: int):
    """The planner's choice for the real gpt-oss-20b on a 16 GB Mac (from headers only)."""
    import tempfile

    from bench.fullsize_checkpoint import write_checkpoint
    from engine.memory import plan

    with tempfile.TemporaryDirectory() as tmp:
        return plan(write_checkpoint(Path(tmp) / "gpt-oss-20b", "sparse", "20b"), context, MAC16_BUDGET)


def ours(folder, dtype, policy=None, chunk=512):
    from engine import load_model
    from engine.generate import Generation, SamplingParams

    model = load_model(folder, dtype=dtype, policy=policy)

    def run(prompt):
        return Generation(model, prompt.tolist(), model.make_cache(), SamplingParams(temperature=0),
                          max_tokens=10 ** 6, prefill_chunk=chunk)
    return model, run


def mlx_lm(folder, dtype):
    from mlx_lm.generate import generate_step
    from mlx_lm.sample_utils import make_sampler
    from mlx_lm.utils import load_model

    model, _ = load_model(Path(folder))
    if dtype == "float32":
        model.set_dtype(mx.float32)  # the non-quantized weights; experts stay MXFP4
    sampler = make_sampler(temp=0.0)

    def run(prompt):
        return (int(t) for t, _ in generate_step(prompt, model, sampler=sampler, prefill_step_size=512))
    return model, run


def residency_note(model) -> str:
    """The expert stores' counters since load (warm-up included), for a model that has them."""
    from engine.residency import model_stores, total_stats

    if not hasattr(model, "blocks") or not model_stores(model):
        return ""
    s = total_stats(model)
    return (f"  (experts: {s.hit_rate:.0%} hits, {s.bytes_fetched / 1e9:.2f} GB copied in, "
            f"{s.overflow_calls} overflowing calls)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folder", type=Path, default=Path("/work/bench_data/speed-3l"))
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--vocab", type=int, default=32768)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--decode", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--context", type=int, default=4096, help="context the 16 GB plan is made for")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"],
                    help="compute dtype for every engine")
    a = ap.parse_args(argv)
    folder = make_checkpoint(a.folder, a.layers, a.vocab)
    shipped = shipped_plan(a.context)
    print(f"16 GB plan for gpt-oss-20b: {shipped.policy.describe()}; prefill chunk {shipped.prefill_chunk}",
          flush=True)
    engines = {
        "mlx-lm": lambda: mlx_lm(folder, a.dtype),
        "ours, no policy": lambda: ours(folder, a.dtype),
        "ours, 16 GB policy": lambda: ours(folder, a.dtype, shipped.policy, shipped.prefill_chunk),
    }
    prompt = mx.array(np.random.default_rng(0).integers(0, a.vocab, a.prompt).astype(np.int32))
    results = {name: [] for name in engines}
    names = list(engines)
    for r in range(a.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotate who goes first
            model, run = engines[name]()
            timed_run(run, prompt[:32], 2)  # warm-up
            results[name].append(timed_run(run, prompt, a.decode))
            print(f"round {r} {name:19s} prefill {results[name][-1][0]:8.1f} tok/s  "
                  f"decode {results[name][-1][1]:6.2f} tok/s{residency_note(model)}", flush=True)
            del model, run
            gc.collect()
            mx.clear_cache()
    print(f"\nmachine: {platform.machine()} {platform.system()}, MLX {mx.__version__}, "
          f"device {mx.default_device()}, {a.dtype}; {a.layers} layers, prompt {a.prompt}, decode {a.decode}")
    med = {k: (statistics.median(p for p, _ in v), statistics.median(d for _, d in v)) for k, v in results.items()}
    base = med["mlx-lm"]
    for k, (p, d) in med.items():
        print(f"{k:19s} median prefill {p:8.1f} tok/s ({p / base[0]:.2f}x mlx-lm)   "
              f"decode {d:6.2f} tok/s ({d / base[1]:.2f}x mlx-lm)")


if __name__ == "__main__":
    main()
