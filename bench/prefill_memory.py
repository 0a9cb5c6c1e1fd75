"""Peak memory of a long chunked prefill with and without mx.clear_cache() between chunks.

    python -m bench.prefill_memory [--folder /work/bench_data/speed-3l] [--prompt 4096] [--chunk 512]

MLX keeps freed buffers in its cache for reuse. A chunk's attention scores grow with the context,
so later chunks can't reuse earlier chunks' buffers and the cache only grows. The figure that
matters to the OS is MLX's active plus cached memory, sampled after every chunk.
"""

from __future__ import annotations

import argparse
import gc
from pathlib import Path

import mlx.core as mx
import numpy as np


def peak_footprint(model, ids: list[int], chunk: int, clear: bool) -> tuple[int, int]:
    """(max of active + cached bytes after each chunk, MLX's peak active bytes) for one prefill."""
    from engine.generate import prefill

    gc.collect()
    mx.clear_cache()
    mx.reset_peak_memory()
    cache, worst = model.make_cache(), 0
    for _ in prefill(model, ids, cache, chunk, clear_cache=clear):
        worst = max(worst, mx.get_active_memory() + mx.get_cache_memory())
    return worst, mx.get_peak_memory()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folder", type=Path, default=Path("/work/bench_data/speed-3l"))
    ap.add_argument("--prompt", type=int, default=4096)
    ap.add_argument("--chunk", type=int, default=512)
    ap.add_argument("--dtype", default="bfloat16")
    a = ap.parse_args(argv)
    from engine import load_model

    model = load_model(a.folder, dtype=a.dtype)
    ids = np.random.default_rng(0).integers(0, model.config.vocab_size, a.prompt).tolist()
    for clear in (False, True, False, True):
        worst, peak = peak_footprint(model, ids, a.chunk, clear)
        print(f"clear_cache between chunks {str(clear):5s}: active+cached max {worst / 2**20:8.1f} MiB, "
              f"MLX peak active {peak / 2**20:8.1f} MiB  ({a.prompt} tokens, chunks of {a.chunk})", flush=True)


if __name__ == "__main__":
    main()
