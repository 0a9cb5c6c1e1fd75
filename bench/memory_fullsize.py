"""Load a full-size checkpoint, prefill a prompt, decode a few tokens; report time and memory.

Each configuration runs in its own process (peak RSS is per process):
  ours-plan      our engine with the policy engine.memory.plan() picks for --budget-gb
  ours-resident  our engine, every expert resident, bf16 attention/lm_head, embedding on CPU
  mlx-lm         mlx_lm.utils.load_model on the same folder, mlx_lm's generate_step

  python -m bench.memory_fullsize /work/bench_data/gpt-oss-20b-random --budget-gb 10.7
  python -m bench.memory_fullsize FOLDER --runs ours-plan --prompt 128 --decode 16

Reported per run: load seconds, MLX peak (mx.get_peak_memory over load + generation), the
process's peak RSS, prefill and decode tokens/s, and for ours the planner's predicted peak.

--stub-experts (the default where Metal is absent): MLX's CPU backend multiplies MXFP4 at about
0.1 G weights/s (50 s per decoded token of the 20b, over an hour for a 128-token prompt), so for
memory runs on a CPU mx.gather_qmm and mx.quantized_matmul (the 8-bit affine path is as slow) are
replaced, in both engines alike, by stand-ins that return an output of the same shape and dtype
without the arithmetic. Every weight, cache and temporary
the real path holds is still allocated; only the speed figures are then meaningless.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

GB = 10**9


def _prompt(vocab: int, n: int, seed: int = 0) -> list[int]:
    return np.random.default_rng(seed).integers(0, min(vocab, 199998), size=n).tolist()


def _rss_anon() -> int:
    """Anonymous resident bytes now (the part of RSS that is not pages of mapped files)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _rss_peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def run_ours(folder: str, mode: str, budget: float | None, n_prompt: int, n_decode: int, chunk: int) -> dict:
    import mlx.core as mx

    from engine.generate import Generation, SamplingParams
    from engine.loader import load_model
    from dataclasses import replace

    from engine.memory import Policy, apply_wired_limit, breakdown, plan, read_footprint
    from engine.residency import total_stats

    p = plan(folder, context_length=4096, budget_bytes=budget, prefill_chunk=chunk)
    policy = p.policy if mode == "ours-plan" else Policy(context_length=4096)
    # The prediction for this run: the same policy at the context the run really fills.
    run_policy = replace(policy, context_length=n_prompt + n_decode)
    predicted = sum(breakdown(read_footprint(folder), run_policy, min(chunk, n_prompt)).values())
    if mode == "ours-plan" and not p.fits:
        return {"run": mode, "refused": p.reason}
    apply_wired_limit()
    mx.reset_peak_memory()
    t0 = time.perf_counter()
    # the Mac's dtype and weight layout (rows), as planned: the memory figures stand for a Mac
    model = load_model(folder, dtype="bfloat16", policy=policy, by_column=False)
    load_s = time.perf_counter() - t0
    load_peak = mx.get_peak_memory()
    weights = mx.get_active_memory()
    cache = model.make_cache()
    gen = Generation(model, _prompt(model.config.vocab_size, n_prompt), cache,
                     SamplingParams(temperature=0), max_tokens=n_decode, prefill_chunk=p.prefill_chunk)
    mx.reset_peak_memory()
    tokens = list(gen)
    run_peak = mx.get_peak_memory()
    s, r = gen.stats, total_stats(model)
    return {"run": mode, "policy": policy.describe(), "predicted_peak": predicted,
            "plan_4k_peak": p.peak_bytes if mode == "ours-plan" else None,
            "load_s": load_s, "mlx_active_after_load": weights, "mlx_peak_load": load_peak,
            "mlx_peak_generate": run_peak, "mlx_peak": max(load_peak, run_peak),
            "rss_peak": _rss_peak(), "rss_anon_end": _rss_anon(), "prefill_tps": s.prefill_tps, "decode_tps": s.decode_tps,
            "ttft_s": s.ttft_s, "tokens": len(tokens), "expert_hits": r.hits, "expert_misses": r.misses,
            "expert_bytes_fetched": r.bytes_fetched, "kv_bytes": cache.nbytes()}


def run_mlx_lm(folder: str, n_prompt: int, n_decode: int) -> dict:
    from pathlib import Path

    import mlx.core as mx
    from mlx_lm.generate import generate_step
    from mlx_lm.utils import load_model

    mx.reset_peak_memory()
    t0 = time.perf_counter()
    model, config = load_model(Path(folder))
    mx.eval(model.parameters())
    load_s = time.perf_counter() - t0
    load_peak = mx.get_peak_memory()
    prompt = mx.array(_prompt(config["vocab_size"], n_prompt))
    mx.reset_peak_memory()
    t1 = time.perf_counter()
    times = []
    for _token, _ in generate_step(prompt, model, max_tokens=n_decode):
        times.append(time.perf_counter())
    ttft = times[0] - t1
    decode_tps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    return {"run": "mlx-lm", "load_s": load_s, "mlx_peak_load": load_peak,
            "mlx_peak_generate": mx.get_peak_memory(), "mlx_peak": max(load_peak, mx.get_peak_memory()),
            "rss_peak": _rss_peak(), "rss_anon_end": _rss_anon(), "ttft_s": ttft, "prefill_tps": n_prompt / ttft,
            "decode_tps": decode_tps, "tokens": len(times)}


def stub_quantized_matmuls() -> None:
    """Replace mx.gather_qmm and mx.quantized_matmul by shape-exact stand-ins (module docstring)."""
    import mlx.core as mx

    def quantized_matmul(x, w, scales, biases=None, transpose=True, group_size=64, bits=4, mode="affine", **_):
        n_out = w.shape[-2] if transpose else w.shape[-1] * 32 // bits
        return x[..., :1] * mx.ones((n_out,), dtype=x.dtype)

    def gather_qmm(x, w, scales, biases=None, lhs_indices=None, rhs_indices=None, transpose=True,
                   group_size=None, bits=None, mode=None, sorted_indices=False, **_):
        n_out = w.shape[-2] if transpose else w.shape[-1] * 32 // (bits or 4)
        lhs = x[..., :1]  # [..., M, 1]
        if rhs_indices is not None:
            lhs = lhs + rhs_indices[..., None, None].astype(x.dtype) * 0  # broadcast batch dims
        return lhs * mx.ones((n_out,), dtype=x.dtype)

    mx.gather_qmm = gather_qmm
    mx.quantized_matmul = quantized_matmul


def uniform_routing() -> None:
    """Route every token to K experts drawn uniformly (the worst case for expert residency)."""
    import mlx.core as mx

    import engine.moe as moe

    def route(x, router_w, router_b, k):
        logits = mx.random.uniform(shape=(x.shape[0], router_w.shape[0]))
        idx = mx.argpartition(-logits, kth=k - 1, axis=-1)[..., :k]
        return idx.astype(mx.uint32), mx.full(idx.shape, 1.0 / k, dtype=x.dtype)

    moe.route = route


def _child(args) -> None:
    if args.stub_experts:
        stub_quantized_matmuls()
    if args.uniform_routing:
        uniform_routing()
    budget = args.budget_gb * GB if args.budget_gb else None
    if args.child == "mlx-lm":
        out = run_mlx_lm(args.folder, args.prompt, args.decode)
    else:
        out = run_ours(args.folder, args.child, budget, args.prompt, args.decode, args.chunk)
    print("RESULT " + json.dumps(out))


def _fmt(r: dict) -> str:
    if "refused" in r:
        return f"{r['run']:<14} refused: {r['refused']}"
    pred = r.get("predicted_peak")
    err = (f" [generate {r['mlx_peak_generate'] / GB:.2f} GB vs predicted {pred / GB:.2f} GB: "
           f"{100 * (r['mlx_peak_generate'] - pred) / pred:+.1f}%]") if pred else ""
    line = (f"{r['run']:<14} load {r['load_s']:6.1f} s  MLX peak {r['mlx_peak'] / GB:6.2f} GB{err}  "
            f"RSS peak {r['rss_peak'] / GB:6.2f} GB (anon at end {r['rss_anon_end'] / GB:5.2f})  prefill {r['prefill_tps']:6.1f} tok/s  "
            f"decode {r['decode_tps']:5.2f} tok/s")
    if r.get("policy"):
        line += f"\n{'':<15}{r['policy']}"
    if r.get("expert_misses") is not None and (r.get("expert_hits") or r.get("expert_misses")):
        per_tok = r["expert_bytes_fetched"] / max(1, r["tokens"] + 1)
        line += (f"; experts hit {r['expert_hits']} miss {r['expert_misses']}, "
                 f"{per_tok / 1e6:.0f} MB fetched per generated token (prefill included)")
    return line


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--runs", default="ours-plan,ours-resident,mlx-lm")
    ap.add_argument("--budget-gb", type=float, default=10.7)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--decode", type=int, default=16)
    ap.add_argument("--chunk", type=int, default=512)
    ap.add_argument("--stub-experts", type=int, default=None,
                    help="1: stand-in for the MXFP4 expert matmul (default where Metal is absent)")
    ap.add_argument("--uniform-routing", type=int, default=0,
                    help="1: route uniformly at random (worst case for residency: every chunk overflows)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.stub_experts is None:
        import mlx.core as mx

        args.stub_experts = 0 if mx.metal.is_available() else 1
    if args.child:
        _child(args)
        return 0
    results = []
    for run in args.runs.split(","):
        cmd = [sys.executable, "-m", "bench.memory_fullsize", args.folder, "--child", run,
               "--budget-gb", str(args.budget_gb), "--prompt", str(args.prompt),
               "--decode", str(args.decode), "--chunk", str(args.chunk),
               "--stub-experts", str(args.stub_experts), "--uniform-routing", str(args.uniform_routing)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if not lines:
            print(f"{run}: failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
            continue
        r = json.loads(lines[-1][len("RESULT "):])
        results.append(r)
        print(_fmt(r), flush=True)
    if args.stub_experts:
        print("(expert matmuls stubbed: memory figures are real, tokens/s are not)")
    print("JSON " + json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
