"""Record the router's real choices while the model answers, and the LRU hit rates they give.

For a Mac with the real gpt-oss-20b (works anywhere, slowly). Every MoE layer is wrapped so that
each call's expert ids are saved; decode steps are kept apart from the prefill. Writes an .npz
with one [tokens, K] array per layer (decode steps only, `layerN`) that
`bench/residency_traces.py --trace FILE` replays, and prints the hit rate an LRU with 100/75/50/25%
of the experts resident would have had on that trace.

  python -m bench.residency_record ~/models/gpt-oss-20b --tokens 256 --out trace.npz \
      --prompt "Explain how a refrigerator works."
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from bench.residency_traces import FRACTIONS, simulate_hit_rate


class RecordingExperts:
    """Wraps a layer's experts; resolve() records the router's choice, then delegates."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[np.ndarray] = []

    def resolve(self, idx):
        self.calls.append(np.array(idx))
        if hasattr(self.inner, "resolve"):
            return self.inner.resolve(idx)
        return self.inner, idx


def attach(model) -> list[RecordingExperts]:
    """Wrap every MoE layer of a loaded model; returns the recorders, layer by layer."""
    recorders = []
    for block in model.blocks:
        rec = RecordingExperts(block.moe.experts)
        block.moe.experts, block.moe.resolve = rec, rec.resolve  # the MoE binds resolve when built
        recorders.append(rec)
    return recorders


def decode_trace(rec: RecordingExperts) -> np.ndarray:
    """[tokens, K]: the calls that carried a single token (decode steps)."""
    rows = [c for c in rec.calls if c.shape[0] == 1]
    return np.concatenate(rows) if rows else np.zeros((0, 0), dtype=np.uint32)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--prompt", default="Explain, step by step, how a refrigerator keeps food cold.")
    ap.add_argument("--effort", default="medium")
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--out", default="routing_trace.npz")
    args = ap.parse_args(argv)

    from engine.generate import Generation, SamplingParams
    from engine.harmony import render_prompt
    from engine.loader import load_model
    from engine.memory import plan
    from engine.tokenizer import load_tokenizer

    p = plan(args.folder)
    if not p.fits:
        print(p.reason)
        return 1
    model = load_model(args.folder, policy=p.policy)
    recorders = attach(model)
    enc = load_tokenizer(args.folder)
    ids = render_prompt([{"role": "user", "content": args.prompt}], enc, effort=args.effort)
    gen = Generation(model, ids, model.make_cache(), SamplingParams(temperature=1.0, seed=0),
                     max_tokens=args.tokens, prefill_chunk=p.prefill_chunk)
    out = list(gen)
    traces = {f"layer{i}": decode_trace(r) for i, r in enumerate(recorders)}
    np.savez_compressed(args.out, **traces)
    E = model.config.num_local_experts
    print(f"{len(out)} tokens decoded ({gen.stats.decode_tps:.1f} tok/s); trace written to {args.out}")
    print("LRU hit rate on this trace (mean over layers):")
    for frac in FRACTIONS:
        slots = max(model.config.num_experts_per_tok, round(E * frac))
        rates = [simulate_hit_rate(t, slots, E) for t in traces.values() if len(t)]
        print(f"  {frac:>4.0%} resident ({slots:>3} slots): {np.mean(rates):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
