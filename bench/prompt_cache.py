"""The prompt cache (engine/prompt_cache.py, engine/prompt_store.py) side by side with the engine
as it was (another checkout, default /work/main), in one run:

    python bench/prompt_cache.py [--layers 2] [--sizes 2048 8192] [--today /work/main]

1. Reopening a chat after a restart: time to first token when its cache comes from disk (a new
   model object, a new store scanning the folder, the file loaded) vs a full prefill, on a
   checkpoint with gpt-oss-20b's layer shapes (bench/engine_speed.py's, cut to --layers layers:
   half sliding, half full attention) and on the demo model.
2. Two API clients and the window alternating, 10 turns each (demo model): tokens prefilled per
   turn with the prompt cache vs today's single cache.
3. Decode tokens/s and new sliding-window arrays per decoded token, ring buffer vs today (20b shapes).
Parts 2 and 3 run the same code in a child process per checkout (PYTHONPATH), one after the other.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()


def machine() -> str:
    import mlx.core as mx

    return (f"{platform.machine()} {platform.system()}, {os.cpu_count()} cores, "
            f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GB, "
            f"MLX {mx.__version__} {'Metal' if mx.metal.is_available() else 'CPU'} backend")


# ---------------------------------------------------------------------- 1. reopen after restart

def first_token(model, pc, ids, chunk):
    """Resume ids from the prompt cache, prefill the rest, decode one token: (seconds, reused)."""
    import mlx.core as mx

    from engine.generate import Generation, SamplingParams

    t0 = time.perf_counter()
    conv, start = pc.resume(ids)
    mx.eval(conv.cache.state())
    first_token.resume_s = time.perf_counter() - t0  # finding and loading the cache (0 when none)
    gen = Generation(model, ids[start:], conv.cache, SamplingParams(temperature=0), max_tokens=1,
                     prefill_chunk=chunk, splits=(), on_split=lambda n: conv.add_snapshot(ids, start + n))
    token = next(iter(gen))
    mx.synchronize()
    seconds = time.perf_counter() - t0
    conv.held = list(ids) + [token]
    return seconds, start


def reopen(folder: Path, sizes: list[int], chunk: int, label: str, dtype: str = "bfloat16") -> list[dict]:
    import gc

    from engine import load_model
    from engine.memory import Policy
    from engine.prompt_cache import PromptCache
    from engine.prompt_store import PromptStore

    rows = []
    policy = Policy(embed_on_cpu=True, kv_bits=8)
    for n in sizes:
        with tempfile.TemporaryDirectory() as cache_dir:
            model = load_model(folder, dtype=dtype, policy=policy)
            vocab = model.config.vocab_size
            ids = np.random.default_rng(n).integers(0, min(vocab, 199000), n).tolist()
            pc = PromptCache(model.make_cache, store=PromptStore(cache_dir, folder))
            prefill_s, _ = first_token(model, pc, ids, chunk)
            pc.flush(wait=True)  # the app quits
            pc.store.close()
            size = sum(p.stat().st_size for p in Path(cache_dir).glob("*/*.safetensors"))
            del model, pc
            gc.collect()
            model = load_model(folder, dtype=dtype, policy=policy)  # the restart
            more = ids + np.random.default_rng(n + 1).integers(0, min(vocab, 199000), 16).tolist()
            t0 = time.perf_counter()
            pc = PromptCache(model.make_cache, store=PromptStore(cache_dir, folder))
            _, reused = first_token(model, pc, more, chunk)
            disk_s = time.perf_counter() - t0  # the store's scan of the folder, the load, 17 tokens
            pc.store.close()
            rows.append({"model": label, "tokens": n, "full_prefill_s": prefill_s, "from_disk_s": disk_s,
                         "reused": reused, "file_mb": size / 1e6, "speedup": prefill_s / disk_s})
            print(f"  {label:<28} {n:>6} tokens: full prefill {prefill_s:8.2f} s, from disk {disk_s:6.2f} s "
                  f"({reused} reused, file {size / 1e6:6.1f} MB, finding and loading it {first_token.resume_s:.2f} s)"
                  f": {prefill_s / disk_s:6.1f}x", flush=True)
            del model, pc
            gc.collect()
    return rows


def restore_only(folder: Path, sizes: list[int], chunk: int, label: str, dtype: str = "bfloat16") -> None:
    """Time to first token from disk for caches filled with random keys of the real shapes (no
    model compute: for sizes whose full prefill is too slow to run here). The load does not
    depend on the values; the full prefill is not measured for these sizes."""
    import gc

    import mlx.core as mx

    from engine import load_model
    from engine.memory import Policy
    from engine.prompt_cache import Conversation, PromptCache
    from engine.prompt_store import PromptStore

    policy = Policy(embed_on_cpu=True, kv_bits=8)
    for n in sizes:
        with tempfile.TemporaryDirectory() as cache_dir:
            model = load_model(folder, dtype=dtype, policy=policy)
            cfg = model.config
            cache = model.make_cache()
            rng = np.random.default_rng(n)
            for done in range(0, n, chunk):
                t = min(chunk, n - done)
                kv = mx.array(rng.standard_normal((1, cfg.num_key_value_heads, t, cfg.head_dim)).astype(np.float32))
                for layer in cache.layers:
                    layer.update(kv.astype(mx.bfloat16), kv.astype(mx.bfloat16))
                mx.eval(cache.state())
            ids = rng.integers(0, min(cfg.vocab_size, 199000), n).tolist()
            conv = Conversation(cache, list(ids))
            conv.add_snapshot(ids, n)
            store = PromptStore(cache_dir, folder)
            store.save(conv)
            store.wait()
            store.close()
            size = sum(p.stat().st_size for p in Path(cache_dir).glob("*/*.safetensors"))
            del model, cache, conv
            gc.collect()
            model = load_model(folder, dtype=dtype, policy=policy)
            more = ids + rng.integers(0, min(cfg.vocab_size, 199000), 16).tolist()
            t0 = time.perf_counter()
            pc = PromptCache(model.make_cache, store=PromptStore(cache_dir, folder))
            _, reused = first_token(model, pc, more, chunk)
            disk_s = time.perf_counter() - t0
            pc.store.close()
            load_s = first_token.resume_s
            print(f"  {label:<28} {n:>6} tokens: from disk {disk_s:6.2f} s ({reused} reused, file {size / 1e6:6.1f} "
                  f"MB; finding and loading it {load_s:.2f} s, the model reading the 16 new tokens and writing "
                  f"the first {disk_s - load_s:.2f} s); full prefill not run", flush=True)
            del model, pc
            gc.collect()


# ---------------------------------------------------------------------- 2. and 3. (child processes)

def alternate(folder: str, turns: int) -> dict:
    """The window and two API clients alternating `turns` turns each: tokens prefilled per turn."""
    from engine import open_chat
    from engine.generate import SamplingParams

    session = open_chat(folder, context_length=8192)
    takes_owner = "owner" in inspect.signature(session.reply).parameters
    chats = {who: [{"role": "user", "content": f"{who}: let us talk about topic {i}. " * 8}]
             for i, who in enumerate(("window", "api-1", "api-2"))}
    prefilled, ttft = [], []
    for turn in range(turns):
        for who, chat in chats.items():
            extra = {"owner": "window" if who == "window" else "api"} if takes_owner else {}
            done = list(session.reply(chat, sampling=SamplingParams(temperature=0), max_tokens=4,
                                      date="2026-12-07", **extra))[-1]
            if turn:
                prefilled.append(done.prompt_tokens - done.reused_tokens)
                ttft.append(done.ttft_s)
            chat += [{"role": "assistant", "content": f"Answer {turn} to {who}.", "channel": "final"},
                     {"role": "user", "content": f"{who}: follow-up {turn}, one short sentence."}]
    return {"prefilled_per_turn": float(np.mean(prefilled)), "max_prefilled": int(max(prefilled)),
            "ttft_ms": 1000 * float(np.mean(ttft)), "turns": len(prefilled)}


def decode(folder: str, tokens: int, dtype: str = "bfloat16") -> dict:
    """Decode tok/s and new sliding-window arrays per decoded token (20b shapes, 8-bit KV)."""
    import mlx.core as mx

    from engine import load_model
    from engine.cache import SlidingCache
    from engine.generate import Generation, SamplingParams
    from engine.memory import Policy

    model = load_model(folder, dtype=dtype, policy=Policy(embed_on_cpu=True, kv_bits=8))
    prompt = np.random.default_rng(0).integers(0, min(30000, model.config.vocab_size), 64).tolist()
    speeds = []
    for _ in range(1):
        gen = Generation(model, prompt, model.make_cache(), SamplingParams(temperature=0), max_tokens=tokens)
        list(gen)
        speeds.append(gen.stats.decode_tps)
    cache = model.make_cache()
    sliding = next(i for i, c in enumerate(cache.layers) if isinstance(c, SlidingCache))
    kept = []  # every window array a decoded token leaves (kept alive: no address is handed back)
    for _ in Generation(model, prompt, cache, SamplingParams(temperature=0), max_tokens=tokens):
        kept.append(cache.layers[sliding].state[0])
    addresses = {np.asarray(a.view(mx.uint16) if a.dtype == mx.bfloat16 else a).__array_interface__["data"][0]
                 for a in kept}
    return {"decode_tps": max(speeds), "new_window_arrays_per_token": len(addresses) / tokens}


def child(root: str, task: str, *args) -> dict:
    env = dict(os.environ, PYTHONPATH=root)
    out = subprocess.run([sys.executable, str(HERE), "--child", task, *args], env=env, cwd=root,
                         capture_output=True, text=True, timeout=3600)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=32768)
    ap.add_argument("--sizes", type=int, nargs="*", default=[2048, 8192])
    ap.add_argument("--demo-sizes", type=int, nargs="*", default=[2048, 8192])
    ap.add_argument("--restore-sizes", type=int, nargs="*", default=[],
                    help="20b-shape sizes timed from disk only (random keys; no full prefill)")
    ap.add_argument("--chunk", type=int, default=512)
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"],
                    help="parts 1 and 3's compute dtype; MLX's CPU backend is ~7x faster in float32, which makes "
                         "the 20b-shape prefill at 8k and 32k runnable here (a Mac computes in bf16)")
    ap.add_argument("--turns", type=int, default=10)
    ap.add_argument("--decode", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=1, help="part 3: times each checkout is run, alternated")
    ap.add_argument("--folder", type=Path, default=Path("/tmp/pcache_bench/speed-2l"))
    ap.add_argument("--today", default="/work/main")
    ap.add_argument("--parts", default="123")
    ap.add_argument("--child", nargs="+")
    a = ap.parse_args(argv)
    if a.child:
        task, *rest = a.child
        result = alternate(rest[0], int(rest[1])) if task == "alternate" else decode(rest[0], int(rest[1]), *rest[2:])
        print(json.dumps(result))
        return 0
    sys.path.insert(0, str(HERE.parents[1]))
    from bench.engine_speed import make_checkpoint
    from models.registry import demo_folder

    print(f"machine: {machine()}", flush=True)
    folder = make_checkpoint(a.folder, a.layers, a.vocab)
    ours = str(HERE.parents[1])
    if "1" in a.parts:
        print(f"1. reopening a chat after a restart (8-bit KV, {a.dtype}, prefill chunk {a.chunk})", flush=True)
        reopen(folder, a.sizes, a.chunk, f"20b shapes, {a.layers} layers", a.dtype)
        reopen(demo_folder(), a.demo_sizes, a.chunk, "demo model", a.dtype)
        restore_only(folder, a.restore_sizes, a.chunk, f"20b shapes, {a.layers} layers", a.dtype)
    if "2" in a.parts:
        print(f"2. window + two API clients alternating, {a.turns} turns each (demo model)", flush=True)
        for name, root in (("today", a.today), ("prompt cache", ours)):
            r = child(root, "alternate", str(demo_folder()), str(a.turns))
            print(f"  {name:<13} after the first turn: {r['prefilled_per_turn']:7.1f} tokens prefilled per turn "
                  f"(max {r['max_prefilled']}), time to first token {r['ttft_ms']:6.1f} ms", flush=True)
    if "3" in a.parts:
        print(f"3. decode, {a.decode} tokens after 64 (20b shapes, {a.layers} layers, 8-bit KV, {a.dtype})", flush=True)
        for name, root in (("today", a.today), ("ring buffer", ours)) * a.rounds:  # alternated: drift hits both
            r = child(root, "decode", str(folder), str(a.decode), a.dtype)
            print(f"  {name:<12} {r['decode_tps']:6.2f} tok/s, {r['new_window_arrays_per_token']:.2f} new window "
                  "arrays per decoded token (one sliding layer's keys)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
