"""The MXFP4 expert kernels against the plain-MLX path (and mlx-lm).

    python bench/kernels.py [--json out.json] [--bandwidth GBPS] [--repeats 50]

Everywhere: MLX operations evaluated per decoded token, counted from the graph (mx.export_to_dot)
of one decode step of a 24-layer gpt-oss-shaped tiny checkpoint: ours with the fused kernels, ours
with the plain-MLX experts, and mlx-lm loading the same folder. Without Metal the custom kernels
can't run, but they can be recorded: the fused count is taken inside an mx.export_function trace.

On a Mac (Metal): microseconds per kernel at gpt-oss-20b's sizes (D = I = 2880, K = 4, E = 32,
bfloat16), ours vs experts_mlx, the expert bytes each decoded token moves and the share of the
chip's memory bandwidth that reaches; and the experts-only decode ceiling in tokens/s (24 layers).
Then a 512-token prefill: our sorted-pair GEMMs vs MLX's sorted gather_qmm (the measurement that
decides engine.metal_kernels.PREFILL_KERNELS).

# N tokens, K experts per token, E experts, D hidden, I expert intermediate
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import mlx.core as mx  # noqa: E402
import numpy as np  # noqa: E402

import engine.metal_kernels as mk  # noqa: E402
from engine.metal_kernels import build, selftest  # noqa: E402

LAYERS = 24
D = I = 2880
K, E = 4, 32
PREFILL_TOKENS = 512
MXFP4_BYTES_PER_WEIGHT = 17 / 32  # 4 bits + one scale byte per 32 weights
# Unified-memory bandwidth by chip, GB/s (Apple's published figures; binned Max/M3 Pro parts differ).
BANDWIDTH_GBPS = {
    "M1": 68, "M1 Pro": 200, "M1 Max": 400, "M1 Ultra": 800,
    "M2": 100, "M2 Pro": 200, "M2 Max": 400, "M2 Ultra": 800,
    "M3": 100, "M3 Pro": 150, "M3 Max": 400, "M3 Ultra": 800,
    "M4": 120, "M4 Pro": 273, "M4 Max": 546,
}


# ---- op counts ------------------------------------------------------------------------------

def count_ops(*outputs) -> Counter:
    """Primitive nodes in the graph that produces `outputs` (evaluated arrays end the walk)."""
    buf = io.StringIO()
    mx.export_to_dot(buf, *outputs)
    return Counter(re.findall(r'label ="([^"]+)", shape=rectangle', buf.getvalue()))


def tiny_checkpoint(folder: Path) -> Path:
    """24 layers like the 20b (32 experts, top 4, alternating sliding/full), tiny widths."""
    if (folder / "config.json").exists():
        return folder
    from models.tiny import random_tensors, tiny_config, write_checkpoint

    cfg = tiny_config(layers=LAYERS, experts=E, hidden=96, intermediate=96, heads=8, kv_heads=2,
                      head_dim=16, vocab=512, sliding_window=16)
    write_checkpoint(folder, cfg, random_tensors(cfg, seed=0))
    return folder


def ours_decode_ops(folder: Path, fused: bool) -> Counter:
    from engine import load_model

    os.environ[mk.ENV_VAR] = "metal" if fused else "mlx"
    real_available = mk.metal_available
    mk.reset_session()
    model = load_model(folder, dtype="bfloat16")
    cache = model.make_cache()
    mx.eval(model(mx.array([list(range(1, 9))]), cache=cache))
    if not fused:
        return count_ops(model(mx.array([[9]]), cache=cache))
    # Custom kernels can only be recorded (not run) without Metal: count inside an export trace.
    mk.metal_available = lambda: True
    counted = {}

    def step(tokens):
        logits = model(tokens, cache=cache)
        counted["ops"] = count_ops(logits)
        return logits

    try:
        with tempfile.TemporaryDirectory() as tmp:
            mx.export_function(str(Path(tmp) / "step.mlxfn"), step, mx.array([[9]]))
    finally:
        mk.metal_available = real_available
    return counted["ops"]


def mlx_lm_decode_ops(folder: Path) -> Counter:
    from mlx_lm.models.cache import make_prompt_cache
    from mlx_lm.utils import load_model

    model, _ = load_model(folder)
    cache = make_prompt_cache(model)
    mx.eval(model(mx.array([list(range(1, 9))]), cache=cache))
    return count_ops(model(mx.array([[9]]), cache=cache))


def experts_only_ops() -> dict:
    """Ops of one layer's experts for one token (router output given): ours fused, ours plain MLX,
    mlx-lm's SwitchGLU (3 gathers + activation) with its weighting and sum."""
    from engine.moe import experts_mlx

    dt = mx.bfloat16
    ew = selftest.random_experts(8, 96, 96, dt, mx.random.key(0))
    x = mx.random.normal((1, 96)).astype(dt)
    idx = mx.array([[0, 1, 2, 3]], dtype=mx.uint32)
    w = mx.array([[0.25] * 4]).astype(dt)
    mx.eval(vars(ew), x, idx, w)
    out = {"ours, plain-MLX experts": sum(count_ops(experts_mlx(x, idx, w, ew, 7.0)).values())}
    counted = {}

    def fused(x):
        y = build.experts_metal(x, idx, w, ew, 7.0)
        counted["n"] = sum(count_ops(y).values())
        return y

    with tempfile.TemporaryDirectory() as tmp:
        mx.export_function(str(Path(tmp) / "f.mlxfn"), fused, x)
    out["ours, fused kernels"] = counted["n"]
    try:
        import mlx.nn as nn
        from mlx_lm.models.activations import SwigluOAI
        from mlx_lm.models.switch_layers import SwitchGLU

        glu = SwitchGLU(96, 96, 8, activation=SwigluOAI(), bias=True)
        nn.quantize(glu, group_size=32, bits=4, mode="mxfp4")
        mx.eval(glu.parameters())
        y = (glu(x, idx) * mx.expand_dims(w, -1)).sum(axis=-2)
        out["mlx-lm"] = sum(count_ops(y).values())
    except Exception as e:
        print(f"mlx-lm experts op count unavailable: {e}")
    return out


def op_counts() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = tiny_checkpoint(Path(tmp) / "tiny24")
        saved = os.environ.get(mk.ENV_VAR)
        try:
            counts = {"ours, fused kernels": ours_decode_ops(folder, True),
                      "ours, plain-MLX experts": ours_decode_ops(folder, False)}
        finally:
            os.environ.pop(mk.ENV_VAR, None) if saved is None else os.environ.__setitem__(mk.ENV_VAR, saved)
            mk.reset_session()
        try:
            counts["mlx-lm"] = mlx_lm_decode_ops(folder)
        except Exception as e:  # an mlx-lm that can't read this layout: report, don't hide ours
            print(f"mlx-lm op count unavailable: {e}")
    return {name: {"total": sum(c.values()), "per_layer": sum(c.values()) / LAYERS,
                   "top": dict(c.most_common(8))} for name, c in counts.items()}


# ---- timing on Metal ------------------------------------------------------------------------

def chip_name() -> str:
    try:
        return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                              text=True).stdout.strip().removeprefix("Apple ").strip()
    except OSError:
        return ""


def time_per_layer(fn, repeats: int) -> float:
    """Seconds per call of fn(step) over chains of LAYERS dependent calls (one token's worth)."""
    def chain():
        y = fn(0)
        for i in range(1, LAYERS):
            y = fn(i, y)
        return y

    for _ in range(3):
        mx.eval(chain())
    start = time.perf_counter()
    for _ in range(repeats):
        mx.eval(chain())
    return (time.perf_counter() - start) / (repeats * LAYERS)


def metal_timings(repeats: int, bandwidth: float | None) -> dict:
    from engine.metal_kernels import launch as L
    from engine.moe import experts_mlx

    dt = mx.bfloat16
    ew = selftest.random_experts(E, D, I, dt, mx.random.key(0))
    x0 = mx.random.normal((1, D)).astype(dt)
    w = mx.softmax(mx.random.normal((1, K)), axis=-1).astype(dt)
    # A different set of 4 experts per layer, as decode sees: no cache reuse between calls.
    ids = [mx.array([[(4 * i + j) % E for j in range(K)]], dtype=mx.uint32) for i in range(LAYERS)]
    mx.eval(vars(ew), x0, w, ids)

    def layer(path):
        def fn(i, x=x0):
            return x + path(x, ids[i], w, ew, 7.0) * 1e-3  # dependent chain; stays O(1)
        return fn

    def gate_up_only(i, x=x0):
        (h,) = build.run(L.gate_up_launch(1, K, D, I, "bfloat16"),
                         [x, ids[i], ew.gate_up_blocks, ew.gate_up_scales, ew.gate_up_bias,
                          mx.array(7.0, dtype=mx.float32)])
        return x + h[0, 0, :D].astype(dt) * 0

    h0 = mx.zeros((1, K, I), dtype=mx.float32)

    def down_only(i, x=x0):
        (y,) = build.run(L.down_launch(1, K, D, I, "bfloat16"),
                         [h0 + x[:, None, :1].astype(mx.float32) * 0, ids[i], w, ew.down_blocks,
                          ew.down_scales, ew.down_bias])
        return y

    t = {"fused (both kernels)": time_per_layer(layer(build.experts_metal_gemv), repeats),
         "gate_up kernel": time_per_layer(gate_up_only, repeats),
         "down kernel": time_per_layer(down_only, repeats),
         "plain MLX (experts_mlx)": time_per_layer(layer(experts_mlx), repeats)}
    # Prefill: the sorted-pair GEMMs vs MLX's sorted gather_qmm (decides engine.metal_kernels.PREFILL_KERNELS).
    xp = mx.random.normal((PREFILL_TOKENS, D)).astype(dt)
    wp = mx.softmax(mx.random.normal((PREFILL_TOKENS, K)), axis=-1).astype(dt)
    idp = [mx.argsort(mx.random.uniform(shape=(PREFILL_TOKENS, E), key=mx.random.key(i)), axis=-1)[:, :K]
           .astype(mx.uint32) for i in range(LAYERS)]
    mx.eval(xp, wp, idp)

    def prefill(path):
        def fn(i, x=xp):
            return x + path(x, idp[i], wp, ew, 7.0) * 1e-3
        return fn

    prefill_t = {"prefill GEMM kernels": time_per_layer(prefill(build.experts_metal_gemm), max(3, repeats // 10)),
                 "prefill plain MLX (sorted gather_qmm)": time_per_layer(prefill(experts_mlx), max(3, repeats // 10))}
    bytes_per_layer = K * (2 * I * D + D * I) * MXFP4_BYTES_PER_WEIGHT
    chip = chip_name()
    bw = bandwidth or BANDWIDTH_GBPS.get(chip)
    out = {"chip": chip, "bandwidth_GBps": bw, "expert_bytes_per_token": bytes_per_layer * LAYERS, "kernels": {}}
    for name, sec in t.items():
        gbps = bytes_per_layer / sec / 1e9 if "kernel" not in name else None
        row = {"us_per_layer": sec * 1e6}
        if gbps:
            row.update(GBps=gbps, experts_only_decode_tok_s=1 / (sec * LAYERS))
            if bw:
                row["share_of_bandwidth"] = gbps / bw
        out["kernels"][name] = row
    out["prefill"] = {name: {"us_per_layer": sec * 1e6, "tokens_per_s_experts_only": PREFILL_TOKENS / (sec * LAYERS)}
                      for name, sec in prefill_t.items()}
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--bandwidth", type=float, help="the chip's memory bandwidth in GB/s (else looked up)")
    ap.add_argument("--repeats", type=int, default=50)
    a = ap.parse_args(argv)
    result = {"machine": f"{platform.machine()} {platform.system()}", "mlx": mx.__version__,
              "metal": mk.metal_available()}
    result["ops_per_decoded_token"] = op_counts()
    result["expert_ops_per_layer"] = experts_only_ops()
    print(f"MLX operations per decoded token ({LAYERS} layers, counted from the graph):")
    for name, r in result["ops_per_decoded_token"].items():
        print(f"  {name:26s} {r['total']:6d}  ({r['per_layer']:.1f} per layer)")
    print("MLX operations of one layer's experts (after the router), one token:")
    for name, n in result["expert_ops_per_layer"].items():
        print(f"  {name:26s} {n:6d}")
    if result["metal"]:
        m = result["metal_timings"] = metal_timings(a.repeats, a.bandwidth)
        print(f"\n{m['chip'] or 'unknown chip'}: bf16, D=I={D}, K={K}, E={E}; "
              f"expert bytes per token {m['expert_bytes_per_token'] / 1e9:.2f} GB")
        for name, r in m["kernels"].items():
            extra = ""
            if "GBps" in r:
                extra = f"  {r['GBps']:6.1f} GB/s  experts-only ceiling {r['experts_only_decode_tok_s']:6.1f} tok/s"
                if "share_of_bandwidth" in r:
                    extra += f"  ({100 * r['share_of_bandwidth']:.0f}% of {m['bandwidth_GBps']} GB/s)"
            print(f"  {name:26s} {r['us_per_layer']:8.1f} us/layer{extra}")
        print(f"prefill of {PREFILL_TOKENS} tokens (experts only):")
        for name, r in m["prefill"].items():
            print(f"  {name:38s} {r['us_per_layer']:9.1f} us/layer  {r['tokens_per_s_experts_only']:8.1f} tok/s")
    else:
        print("\nNo Metal here: kernel timings need an Apple-silicon Mac (see .github/workflows/metal.yml).")
    if a.json:
        a.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
