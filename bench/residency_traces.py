"""Expert residency on routing traces: decode speed of the expert path and bytes fetched per token
against the resident fraction, on full-size experts (one layer = 32 experts of 13.2 MB).

Traces (per layer, one row of K expert ids per decoded token):
  uniform     K distinct experts drawn uniformly
  zipf        K distinct experts drawn with P(rank r) ~ 1/r (a few experts are popular)
  repetitive  the same K experts for runs of 16 tokens, then a fresh draw
A recorded trace from bench/residency_record.py (a real model on a Mac) can be replayed with
--trace FILE.npz.

  python -m bench.residency_traces /work/bench_data/gpt-oss-20b-random --layers 2 --tokens 64

Per token it times what residency adds (reading the router's choice and copying the missing
experts in from the memory-mapped checkpoint) and, with --compute (default on Metal), the MXFP4
expert matmuls too, giving tokens/s of the expert path (attention and lm_head come on top and do
not depend on residency). Measured on `--layers` layers, scaled to the model's layer count.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

FRACTIONS = (1.0, 0.75, 0.5, 0.25)
RUN_LENGTH = 16


def make_trace(kind: str, tokens: int, experts: int, k: int, seed: int = 0) -> np.ndarray:
    """[tokens, K] expert ids for one layer."""
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return np.stack([rng.choice(experts, k, replace=False) for _ in range(tokens)])
    if kind == "zipf":
        p = 1.0 / np.arange(1, experts + 1)
        p = p[rng.permutation(experts)]
        p /= p.sum()
        return np.stack([rng.choice(experts, k, replace=False, p=p) for _ in range(tokens)])
    if kind == "repetitive":
        rows = []
        while len(rows) < tokens:
            rows += [rng.choice(experts, k, replace=False)] * RUN_LENGTH
        return np.stack(rows[:tokens])
    raise ValueError(f"unknown trace kind {kind!r}")


def simulate_hit_rate(trace: np.ndarray, slots: int, experts: int) -> float:
    """LRU hit rate of a [tokens, K] trace with `slots` slots, warm-started with experts 0..S-1."""
    order, hits, total = list(range(slots)), 0, 0
    for row in trace:
        wanted = sorted(set(row.tolist()))
        for e in wanted:
            total += 1
            if e in order:
                hits += 1
                order.remove(e)
            else:
                order.remove(next(v for v in order if v not in wanted))
            order.append(e)
    return hits / total if total else 1.0


def time_layer(store, trace: np.ndarray, hidden: int, compute: bool = True) -> tuple[float, float, int]:
    """Per token for one layer: (seconds in resolve, i.e. reading the choice and copying experts
    in; seconds in the expert matmuls, 0 unless compute), and bytes fetched over the trace."""
    import mlx.core as mx

    from engine.moe import experts_mlx

    rng = np.random.default_rng(1)
    x = mx.array(rng.standard_normal((1, hidden)).astype(np.float32) * 0.1).astype(mx.bfloat16)
    w = mx.full((1, trace.shape[1]), 1.0 / trace.shape[1], dtype=mx.bfloat16)
    t_resolve = t_compute = 0.0
    for row in trace:
        idx = mx.array(row[None].astype(np.uint32))
        mx.eval(idx)
        t0 = time.perf_counter()
        ew, slot_idx = store.resolve(idx)
        t1 = time.perf_counter()
        if compute:
            mx.eval(experts_mlx(x, slot_idx, w, ew))
        t_resolve += t1 - t0
        t_compute += time.perf_counter() - t1
    n = max(1, len(trace))
    return t_resolve / n, t_compute / n, store.stats.bytes_fetched


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--layers", type=int, default=2, help="layers to measure (scaled to all)")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--trace", default=None, help="a recorded .npz trace to replay instead")
    ap.add_argument("--compute", type=int, default=None,
                    help="1: also time the MXFP4 matmuls (default on Metal; on CPU they take ~2 s per layer)")
    args = ap.parse_args(argv)

    import mlx.core as mx

    from engine.checkpoint import Checkpoint
    from engine.config import load_config
    from engine.residency import ExpertStore, layer_source

    compute = bool(args.compute) if args.compute is not None else mx.metal.is_available()
    cfg = load_config(args.folder)
    ckpt = Checkpoint(args.folder, cfg)
    E, K, L = cfg.num_local_experts, cfg.num_experts_per_tok, cfg.num_hidden_layers
    recorded = np.load(args.trace) if args.trace else None
    kinds = ["recorded"] if recorded is not None else ["uniform", "zipf", "repetitive"]
    print(f"{'trace':<11} {'resident':>8} {'slots':>5} {'hit rate':>8} {'MB fetched/token':>16} "
          f"{'residency ms/token':>18} {'expert-path tok/s':>17}  (measured on {args.layers} layers, scaled to {L})")
    for kind in kinds:
        for frac in FRACTIONS:
            slots = max(K, round(E * frac))
            t_res, t_cmp, fetched, hits = 0.0, 0.0, 0, []
            for layer in range(args.layers):
                if recorded is not None:
                    trace = recorded[f"layer{layer}"]
                else:
                    trace = make_trace(kind, args.tokens, E, K, seed=layer)
                store = ExpertStore(layer_source(ckpt, layer), slots)
                r, c, f = time_layer(store, trace, cfg.hidden_size, compute)
                t_res += r
                t_cmp += c
                fetched += f / max(1, len(trace))
                hits.append(store.stats.hit_rate)
                del store
                mx.clear_cache()
            res_ms = t_res / args.layers * L * 1e3
            mb = fetched / args.layers * L / 1e6
            tps = f"{1 / ((t_res + t_cmp) / args.layers * L):>17.2f}" if compute else f"{'(not timed)':>17}"
            print(f"{kind:<11} {frac:>8.0%} {slots:>5} {np.mean(hits):>8.2f} {mb:>16.0f} {res_ms:>18.1f} {tps}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
