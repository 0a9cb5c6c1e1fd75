"""Run by tests/distributed/test_pipeline.py under mlx.launch: one scenario on a tiny checkpoint.

    mlx.launch -n 2 --backend ring -- tests/distributed/pipeline_script.py FOLDER OUT.npz [--cuts 2]
        [--die-at K | --hang-at K] [--timeout S]

Rank 0 writes the logits of every step to OUT.npz (see scenario()); the same scenario run in one
process gives the reference. --die-at/--hang-at make the last rank crash or stop answering on its
K-th forward pass, to check that rank 0 reports it instead of hanging.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from pathlib import Path

import mlx.core as mx
import numpy as np

from engine.errors import ModelError


def scenario(model, vocab: int) -> dict[str, np.ndarray]:
    """Prefill, cached decode, a rewind to a snapshot and a different continuation, hidden(), greedy."""
    from engine.generate import generate_greedy

    rng = np.random.default_rng(7)
    prompt = rng.integers(0, vocab, (1, 21))  # longer than the tiny window (16): sliding layers roll
    out = {}
    cache = model.make_cache()
    out["prefill"] = model(mx.array(prompt[:, :-1]), cache)
    snap = cache.snapshot()
    steps, tok = [], prompt[:, -1:]
    for _ in range(6):
        logits = model(mx.array(tok), cache, last_only=True)
        steps.append(logits)
        tok = np.array(mx.argmax(logits[:, -1, :], axis=-1)).reshape(1, 1)
    out["decode"] = mx.concatenate(steps, axis=1)
    cache.restore(snap)  # the session's rewind: back to the prompt, then another continuation
    out["after_rewind"] = model(mx.array(rng.integers(0, vocab, (1, 5))), cache)
    out["hidden"] = model.hidden(mx.array(rng.integers(0, vocab, (1, 3))), cache)
    out["offset"] = mx.array([cache.offset])
    out["greedy"] = mx.array(generate_greedy(model, prompt[0].tolist(), max_tokens=8))
    return {k: np.array(v.astype(mx.float32) if v.dtype != mx.int32 else v) for k, v in out.items()}


def _drop_connections(reported: Path, deadline_s: float = 60.0) -> None:
    """Shut down every socket of this process, then wait until rank 0 has reported, before the crash.

    A crashed rank's sockets close at once, but mlx.launch also stops the surviving ranks within
    a second of seeing the exit, so whether rank 0 got to report first was a race (lost under load
    in a full test run, and still possible with a fixed grace period). Dropping the connections
    first and exiting once rank 0 has said so (the file `reported`) checks what the test is about:
    rank 0 reading a lost connection as one sentence. The deadline only bounds a rank 0 that never
    reports, which the test then fails on."""
    for fd in map(int, os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else ()):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                sock = socket.socket(fileno=fd)
                sock.shutdown(socket.SHUT_RDWR)
                sock.detach()  # the fd stays MLX's
        except OSError:
            pass
    until = time.monotonic() + deadline_s
    while not reported.exists() and time.monotonic() < until:
        time.sleep(0.05)  # polling a condition with a deadline


def _sabotage(stage_class, at: int, how: str, reported: Path) -> None:
    """Make this rank crash (die) or stop answering (hang) on its at-th forward pass."""
    calls = {"n": 0}
    inner = stage_class.__call__

    def call(self, x, cache):
        calls["n"] += 1
        if calls["n"] == at:
            if how == "die":
                _drop_connections(reported)
                os._exit(9)
            time.sleep(3600)  # the fault under test: a rank that stops answering
        return inner(self, x, cache)

    stage_class.__call__ = call


def _reported(out: str) -> Path:
    return Path(out + ".rank0-reported")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("out")
    ap.add_argument("--cuts", default="")
    ap.add_argument("--die-at", type=int, default=0)
    ap.add_argument("--hang-at", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args(argv)
    mx.set_default_device(mx.cpu)
    from engine import distributed

    group = distributed.init_group()
    if (args.die_at or args.hang_at) and group.rank() == group.size() - 1:
        _sabotage(distributed.PipelineStage, args.die_at or args.hang_at, "die" if args.die_at else "hang",
                  _reported(args.out))
    cuts = [int(c) for c in args.cuts.split(",")] if args.cuts else None
    try:
        model, split = distributed.open_pipeline(args.folder, 1024, "float32", cuts=cuts, group=group,
                                                 timeout=args.timeout)
        if model is None:
            return 0
        print("split:", "; ".join(f"{s.first}-{s.last - 1}" for s in split.stages), flush=True)
        result = scenario(model, model.config.vocab_size)
        model.close()
    except ModelError as exc:
        print(f"rank {group.rank()}: {exc}", file=sys.stderr, flush=True)
        if group.rank() == 0:
            _reported(args.out).touch()  # the crashing rank may exit now (see _drop_connections)
        return 2
    np.savez(args.out, **result)
    print("wrote", args.out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
