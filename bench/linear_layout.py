"""How fast MLX multiplies by gpt-oss-20b's dense weights held as rows ([out, in], the checkpoint's
layout, y = x W^T) or as columns ([in, out], y = x W), in float32 and 8-bit affine (group 64),
at one token (decode) and a prefill chunk. engine.model.weights_by_column picks the layout per
backend from what this measures.

    python -m bench.linear_layout [--tokens 1 128] [--rounds 5]

Each shape's four variants run in alternating rounds; medians in ms.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import mlx.core as mx

SHAPES = {  # name: (out, in) as the checkpoint stores the weight
    "q_proj": (4096, 2880),
    "k_proj / v_proj": (512, 2880),
    "o_proj": (2880, 4096),
    "lm_head (201,088 vocab)": (201088, 2880),
}


def variants(w: mx.array):
    columns = mx.contiguous(w.T)
    q_rows = mx.quantize(w, group_size=64, bits=8)
    q_cols = mx.quantize(columns, group_size=64, bits=8)
    mx.eval(columns, q_rows, q_cols)
    return {
        "rows f32": lambda x: x @ w.T,
        "columns f32": lambda x: x @ columns,
        "rows 8-bit": lambda x: mx.quantized_matmul(x, *q_rows, transpose=True, group_size=64, bits=8),
        "columns 8-bit": lambda x: mx.quantized_matmul(x, *q_cols, transpose=False, group_size=64, bits=8),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, nargs="+", default=[1, 128])
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args(argv)
    print(f"machine: {platform.machine()} {platform.system()}, MLX {mx.__version__}, device {mx.default_device()}")
    for name, (out, inn) in SHAPES.items():
        w = mx.random.normal((out, inn), key=mx.random.key(0)) * inn ** -0.5
        fns = variants(w)
        for tokens in a.tokens:
            x = mx.random.normal((tokens, inn), key=mx.random.key(1))
            times = {k: [] for k in fns}
            for _ in range(a.rounds):
                for k, f in fns.items():
                    start = time.perf_counter()
                    mx.eval(f(x))
                    times[k].append(time.perf_counter() - start)
            med = {k: 1e3 * statistics.median(v) for k, v in times.items()}
            print(f"{name:24s} {tokens:4d} tokens  " + "  ".join(f"{k} {v:8.1f}" for k, v in med.items())
                  + f"   columns/rows: f32 {med['rows f32'] / med['columns f32']:.2f}x faster,"
                  f" 8-bit {med['rows 8-bit'] / med['columns 8-bit']:.2f}x faster", flush=True)
        del w, fns


if __name__ == "__main__":
    main()
