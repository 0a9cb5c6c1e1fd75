"""The quality cost of 8-bit and 4-bit attention/lm_head weights against the bf16 path.

On small random checkpoints in the official layout (experts stay MXFP4 in every run): the same
prompt through the bf16 model and through the quantized ones, compared position by position:
  logit error   mean |logit - bf16 logit| divided by the bf16 logits' standard deviation
  max error     the largest |difference| in units of that standard deviation
  agreement     how often the arg-max token (the greedy choice) is the same as bf16's
  kl            mean KL(bf16 || quantized) of the next-token distributions, in nats

  python -m bench.memory_quality --seeds 3 --tokens 128

--kv compares the 8-bit KV cache with the bf16 cache instead (both with bf16 weights): a prompt of
--kv-tokens tokens placed so that it ends at each of --kv-positions (the cache starts at that
offset: long positions without a long prefill, which MLX's CPU MXFP4 path makes too slow here).

  python -m bench.memory_quality --kv --seeds 3 --kv-tokens 512 --kv-positions 512 4096 32768
"""

from __future__ import annotations

import argparse
import sys
import tempfile

import numpy as np


def compare(ref: np.ndarray, got: np.ndarray) -> dict:
    """ref, got: logits [T, V] float32."""
    std = ref.std()
    diff = np.abs(got - ref)
    lp_ref = ref - np.logaddexp.reduce(ref, axis=-1, keepdims=True)
    lp_got = got - np.logaddexp.reduce(got, axis=-1, keepdims=True)
    kl = (np.exp(lp_ref) * (lp_ref - lp_got)).sum(-1).mean()
    return {"logit_err": diff.mean() / std, "max_err": diff.max() / std,
            "agreement": float((ref.argmax(-1) == got.argmax(-1)).mean()), "kl": float(kl)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--kv", action="store_true", help="8-bit KV cache vs bf16 KV cache")
    ap.add_argument("--kv-tokens", type=int, default=512)
    ap.add_argument("--kv-positions", type=int, nargs="+", default=[512, 4096, 32768])
    args = ap.parse_args(argv)
    if args.kv:
        return kv_main(args)

    import mlx.core as mx

    from engine.loader import load_model
    from engine.memory import Policy
    from models.tiny import write_tiny_checkpoint

    rows = {"bf16 vs f32": [], 8: [], 4: []}
    for seed in range(args.seeds):
        with tempfile.TemporaryDirectory() as tmp:
            write_tiny_checkpoint(tmp, layers=args.layers, experts=8, hidden=args.hidden, heads=8,
                                  kv_heads=2, head_dim=32, vocab=4096, seed=seed)
            ids = mx.array(np.random.default_rng(seed).integers(0, 4096, size=(1, args.tokens)))
            ref = np.array(load_model(tmp, dtype="bfloat16", policy=Policy())(ids).astype(mx.float32))[0]
            f32 = np.array(load_model(tmp, dtype="float32", policy=Policy())(ids))[0]
            rows["bf16 vs f32"].append(compare(f32, ref))  # the noise floor of bf16 itself
            for bits in (8, 4):
                # the Mac's layout: groups along the inputs (tests/engine/test_weight_layout.py
                # holds the CPU's column groups to the same closeness)
                model = load_model(tmp, dtype="bfloat16", policy=Policy(non_expert_bits=bits), by_column=False)
                got = np.array(model(ids).astype(mx.float32))[0]
                rows[bits].append(compare(ref, got))
    print(f"{args.seeds} random checkpoints (hidden {args.hidden}, {args.layers} layers), "
          f"{args.tokens} positions each; bf16 is the reference")
    print(f"{'weights':<12} {'logit err (σ)':>13} {'max err (σ)':>11} {'greedy agree':>12} {'KL (nats)':>10}")
    for bits, rs in rows.items():
        m = {k: np.mean([r[k] for r in rs]) for k in rs[0]}
        name = f"{bits}-bit" if isinstance(bits, int) else bits
        print(f"{name:<12} {m['logit_err']:>13.4f} {m['max_err']:>11.3f} {m['agreement']:>12.1%} {m['kl']:>10.5f}")
    return 0


def kv_main(args) -> int:
    """8-bit KV cache (full-attention layers) against the bf16 cache, at several positions."""
    import mlx.core as mx

    from engine.loader import load_model
    from engine.memory import Policy
    from models.tiny import write_tiny_checkpoint

    T = args.kv_tokens
    rows: dict[tuple, list] = {}
    for seed in range(args.seeds):
        with tempfile.TemporaryDirectory() as tmp:
            # head_dim 64 and 8 query heads per kv head pair as in gpt-oss; small MoE (speed)
            write_tiny_checkpoint(tmp, layers=args.layers, experts=4, hidden=128, heads=8, kv_heads=2,
                                  head_dim=64, vocab=4096, seed=seed, top_k=2, intermediate=128)
            ids = mx.array(np.random.default_rng(seed).integers(0, 4096, size=(1, T)))
            models = {"bf16": load_model(tmp, dtype="bfloat16", policy=Policy()),
                      "8-bit": load_model(tmp, dtype="bfloat16", policy=Policy(kv_bits=8)),
                      "float32": load_model(tmp, dtype="float32", policy=Policy())}
            for end in args.kv_positions:
                start = max(0, end - T)
                logits = {name: np.array(m(ids, cache=m.make_cache(start=start)).astype(mx.float32))[0]
                          for name, m in models.items()}
                span = f"{start}-{start + T - 1}"
                rows.setdefault(("bf16 vs float32 (floor)", span), []).append(
                    compare(logits["float32"], logits["bf16"]))
                rows.setdefault(("8-bit KV vs bf16 KV", span), []).append(compare(logits["bf16"], logits["8-bit"]))
    print(f"{args.seeds} random checkpoints (hidden 128, {args.layers} layers, head_dim 64, 8 heads / 2 kv heads), "
          f"{T} tokens ending at each position; bf16 weights")
    print(f"{'cache':<28} {'positions':>12} {'logit err (σ)':>13} {'max err (σ)':>11} {'greedy agree':>12} {'KL (nats)':>10}")
    for (name, span), rs in sorted(rows.items(), key=lambda kv: (int(kv[0][1].split("-")[0]), kv[0][0])):
        m = {k: np.mean([r[k] for r in rs]) for k in rs[0]}
        print(f"{name:<28} {span:>12} {m['logit_err']:>13.4f} {m['max_err']:>11.3f} {m['agreement']:>12.1%} {m['kl']:>10.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
