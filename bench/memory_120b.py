"""gpt-oss-120b's memory, measured against the plan: on one Mac, and per rank of a pipeline.

    python -m bench.fullsize_checkpoint /work/bench_data/gpt-oss-120b-sparse --size 120b --variant sparse
    python -m bench.memory_120b /work/bench_data/gpt-oss-120b-sparse --mac 32
    python -m bench.memory_120b /work/bench_data/gpt-oss-120b-sparse --split 32,32 --rank 1

--layers FIRST,LAST: the chosen policy on layers [FIRST, LAST) only (with the head when FIRST is 0),
when the whole plan needs more memory than the machine running the bench has.
--mac N: the whole model with the policy engine.memory.plan() picks for an N GB Mac's budget;
prefill a prompt and decode a few tokens (engine.generate), as the app does.
--split A,B,.. --rank r: the layers engine/pipeline_plan.py gives rank r of Macs of A, B, .. GB,
loaded with the loader's layers=/head= options and that rank's own policy; the same prefill and
decode run through that stage alone (activations of the right shape stand in for the other
ranks': memory is per process, and a stage allocates the same whatever arrives).

Measured per run, in this process: MLX's peak (mx.get_peak_memory) over loading and over
generation, the process's peak RSS (getrusage) and its anonymous resident bytes (RssAnon, i.e.
without pages of the memory-mapped checkpoint, which the OS drops under pressure), sampled every
0.2 s for its peak: it also sees NumPy's transient copies, which MLX's counter does not. Predicted:
the planner's sum for the same policy at the context the run really fills. On MLX's CPU backend
the expert and 8-bit matmuls are shape-exact stand-ins (bench/memory_fullsize.py explains why),
and routing is uniform so every prefill chunk needs the temporary expert buffer the plan counts.

On a shared machine: the process makes itself the OOM killer's first choice and stops (exit 3)
if the machine's available memory falls under --floor-gb, rather than squeezing others.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import replace

from bench.memory_fullsize import _prompt, _rss_anon, _rss_peak, stub_quantized_matmuls, uniform_routing

GB = 10**9
ANON_PEAK = [0]  # the largest anonymous RSS the guard thread saw (sampled every 0.2 s)


def _guard(floor_gb: float) -> None:
    try:
        with open("/proc/self/oom_score_adj", "w") as fh:
            fh.write("1000")
    except OSError:
        pass

    def watch():
        from engine.memory import _available_ram

        while True:
            ANON_PEAK[0] = max(ANON_PEAK[0], _rss_anon())
            if _available_ram() < floor_gb * GB:
                print(f"stopped: the machine has under {floor_gb} GB available", file=sys.stderr, flush=True)
                os._exit(3)
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True).start()


def run(folder: str, mac: float | None, split: list[float] | None, rank: int, n_prompt: int, n_decode: int,
        context: int, subset: tuple[int, int] | None = None) -> dict:
    import mlx.core as mx

    from engine.config import load_config
    from engine.generate import Generation, SamplingParams
    from engine.loader import load_model
    from engine.memory import breakdown, footprint_from_config, mac_budget, plan
    from engine.pipeline_plan import plan_split

    cfg = load_config(folder)
    if split:
        stage = plan_split(cfg, [mac_budget(r) for r in split], context, "gpt-oss-120b").stages[rank]
        p, layers, head = stage.plan, (stage.first, stage.last), stage.head
    else:
        p, layers, head = plan(folder, context, mac_budget(mac)), None, True
    if not p.fits:
        return {"refused": p.reason}
    if subset:  # the same policy on fewer layers: when the whole plan is more than this machine has
        layers, head = subset, subset[0] == 0
    fp = footprint_from_config(cfg, "gpt-oss-120b", layers, head)
    chunk = min(p.prefill_chunk, n_prompt)
    predicted = breakdown(fp, replace(p.policy, context_length=n_prompt + n_decode), chunk)
    mx.reset_peak_memory()
    t0 = time.perf_counter()
    model = load_model(folder, "bfloat16", policy=p.policy, layers=layers, head=head,
                       by_column=False)  # the Mac's layout: the memory figures stand for a Mac
    load_s, load_peak, resident = time.perf_counter() - t0, mx.get_peak_memory(), mx.get_active_memory()
    mx.reset_peak_memory()
    ids = _prompt(cfg.vocab_size, n_prompt)
    if head and layers is None:
        gen = Generation(model, ids, model.make_cache(), SamplingParams(temperature=0), max_tokens=n_decode,
                         prefill_chunk=chunk)
        tokens = len(list(gen))
    else:  # one stage: the residual stream from the previous rank is stood in by random activations
        from engine.distributed import PipelineStage

        st = PipelineStage(cfg, model.blocks, *layers)
        cache = st.make_cache()
        x = mx.random.normal((1, n_prompt + n_decode, cfg.hidden_size)).astype(mx.bfloat16)
        for i in range(0, n_prompt, chunk):
            mx.eval(st(x[:, i:min(i + chunk, n_prompt)], cache), cache.state())
        for t in range(n_decode):
            h = st(x[:, n_prompt + t:n_prompt + t + 1], cache)
            if head:
                h = model.lm_head(mx.fast.rms_norm(h, model.norm, cfg.rms_norm_eps))
            mx.eval(h, cache.state())
        tokens = n_decode
    return {"policy": p.policy.describe(), "layers": list(layers or (0, cfg.num_hidden_layers)), "head": head,
            "plan_peak": p.peak_bytes, "budget": p.budget_bytes, "predicted_run": sum(predicted.values()),
            "predicted_weights": sum(v for k, v in predicted.items() if k not in ("kv_cache", "workspace")),
            "load_s": load_s, "mlx_peak_load": load_peak, "mlx_resident": resident,
            "mlx_peak_generate": mx.get_peak_memory(), "rss_peak": _rss_peak(), "rss_anon_end": _rss_anon(), "rss_anon_peak": ANON_PEAK[0],
            "tokens": tokens}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--mac", type=float, default=None, help="one Mac of this many GB")
    ap.add_argument("--split", default="", help="Macs of these GB, comma-separated (with --rank)")
    ap.add_argument("--rank", type=int, default=0)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--decode", type=int, default=4)
    ap.add_argument("--context", type=int, default=4096)
    ap.add_argument("--floor-gb", type=float, default=1.0)
    ap.add_argument("--layers", default="", help="FIRST,LAST: measure the chosen policy on these layers only")
    ap.add_argument("--stub-experts", type=int, default=None)
    args = ap.parse_args(argv)
    import mlx.core as mx

    if args.stub_experts if args.stub_experts is not None else not mx.metal.is_available():
        stub_quantized_matmuls()
    uniform_routing()
    _guard(args.floor_gb)
    split = [float(v) for v in args.split.split(",")] if args.split else None
    if not split and args.mac is None:
        ap.error("give --mac N or --split A,B,..")
    subset = tuple(int(v) for v in args.layers.split(",")) if args.layers else None
    r = run(args.folder, args.mac, split, args.rank, args.prompt, args.decode, args.context, subset)
    if "refused" in r:
        print("refused:", r["refused"])
        return 0
    err = 100 * (r["mlx_peak_generate"] - r["predicted_run"]) / r["predicted_run"]
    werr = 100 * (r["mlx_resident"] - r["predicted_weights"]) / r["predicted_weights"]
    print(f"layers {r['layers'][0]}-{r['layers'][1] - 1}{' + head' if r['head'] else ''}: {r['policy']}\n"
          f"  plan at {args.context} tokens: {r['plan_peak'] / GB:.2f} GB of {r['budget'] / GB:.2f} GB\n"
          f"  resident after load {r['mlx_resident'] / GB:.2f} GB vs predicted {r['predicted_weights'] / GB:.2f} GB "
          f"({werr:+.1f}%); load {r['load_s']:.0f} s, MLX peak while loading {r['mlx_peak_load'] / GB:.2f} GB\n"
          f"  MLX peak generating {r['mlx_peak_generate'] / GB:.2f} GB vs predicted for this run "
          f"{r['predicted_run'] / GB:.2f} GB ({err:+.1f}%)\n"
          f"  process peak RSS {r['rss_peak'] / GB:.2f} GB (with pages of the mapped checkpoint); anonymous RSS "
          f"peak {r['rss_anon_peak'] / GB:.2f} GB (sampled every 0.2 s), at end {r['rss_anon_end'] / GB:.2f} GB")
    print("JSON " + json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
