"""Time one decode step's worth of pipeline traffic: a [1, T, 2880] bf16 activation sent around the
ring (rank 0 -> 1 -> ... -> last -> 0) with mx.distributed, as engine/distributed.py does per step.

    mlx.launch -n 2 --backend ring --env PYTHONPATH=$PWD -- bench/pipeline_hops.py --tokens 1 --steps 200
    mlx.launch --hostfile hosts.json --backend ring -- bench/pipeline_hops.py

Rank 0 prints the median time per round trip and per hop (transport + MLX eval overhead, no
compute): the figure docs/distributed.md's throughput table estimates per link.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import mlx.core as mx


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", type=int, default=1, help="rows per step (1: decode; 512: a prefill chunk)")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=2880)
    args = ap.parse_args(argv)
    g = mx.distributed.init(strict=True, backend="any")
    r, n = g.rank(), g.size()
    shape = (1, args.tokens, args.hidden)
    x = mx.ones(shape, dtype=mx.bfloat16)
    times = []
    for step in range(args.steps + 10):
        t0 = time.perf_counter()
        if r == 0:
            mx.eval(mx.distributed.send(x, 1, group=g))
            y = mx.distributed.recv(shape, mx.bfloat16, n - 1, group=g)
            mx.eval(y)
        else:
            y = mx.distributed.recv(shape, mx.bfloat16, r - 1, group=g)
            mx.eval(mx.distributed.send(y, (r + 1) % n, group=g))
        if step >= 10:  # warm-up excluded
            times.append(time.perf_counter() - t0)
    if r == 0:
        med = statistics.median(times)
        kb = args.tokens * args.hidden * 2 / 1e3
        print(f"{n} ranks, {kb:.1f} KB per hop: round trip {med * 1e3:.3f} ms median "
              f"({med / n * 1e6:.0f} us per hop) over {args.steps} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
