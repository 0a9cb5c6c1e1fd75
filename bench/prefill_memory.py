"""Peak memory of a long chunked prefill with and without mx.clear_cache() between chunks.

    python -m bench.prefill_memory [--folder /work/bench_data/speed-3l] [--prompt 4096] [--chunk 512]

MLX keeps freed buffers in its cache for reuse. A chunk's attention scores grow with the context,
so later chunks can't reuse earlier chunks' buffers and the cache only grows. Each variant runs in
a fresh process; the figures are that process's peak resident memory above what it held once the
model was loaded (on MLX's CPU backend every MLX buffer is process memory), plus MLX's own
active+cached bytes between chunks.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path


def one_prefill(folder: str, prompt: int, chunk: int, clear: bool, dtype: str) -> dict:
    import mlx.core as mx
    import numpy as np

    from engine import load_model
    from engine.generate import prefill

    model = load_model(folder, dtype=dtype)
    ids = np.random.default_rng(0).integers(0, model.config.vocab_size, prompt).tolist()
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cache, between = model.make_cache(), 0
    for _ in prefill(model, ids, cache, chunk, clear_cache=clear):
        between = max(between, mx.get_active_memory() + mx.get_cache_memory())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"rss_growth_kib": peak - loaded, "between_chunks": between, "mlx_peak_active": mx.get_peak_memory()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folder", default="/work/bench_data/speed-3l")
    ap.add_argument("--prompt", type=int, default=4096)
    ap.add_argument("--chunk", type=int, default=512)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--clear", choices=["yes", "no"], help=argparse.SUPPRESS)  # one variant, in a child
    a = ap.parse_args(argv)
    if a.clear:
        print(json.dumps(one_prefill(a.folder, a.prompt, a.chunk, a.clear == "yes", a.dtype)))
        return
    for clear in ("no", "yes", "no", "yes"):
        out = subprocess.run([sys.executable, "-m", "bench.prefill_memory", "--folder", a.folder, "--prompt",
                              str(a.prompt), "--chunk", str(a.chunk), "--dtype", a.dtype, "--clear", clear],
                             capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1])
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"clear_cache between chunks {clear:3s}: process peak +{r['rss_growth_kib'] / 1024:7.1f} MiB over the "
              f"loaded model; MLX active+cached between chunks {r['between_chunks'] / 2**20:7.1f} MiB, "
              f"MLX peak active {r['mlx_peak_active'] / 2**20:7.1f} MiB ({a.prompt} tokens, chunks of {a.chunk})",
              flush=True)


if __name__ == "__main__":
    main()
