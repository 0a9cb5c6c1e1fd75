"""Pipeline parallelism across Macs with mx.distributed: each rank holds a contiguous range of layers.

    mlx.launch --hostfile hosts.json --backend ring -- -m engine.chat --model ~/gpt-oss-120b --distributed

Every rank loads only its own layers (the loader's layers=/head= options) with the policy its own
memory plan picks (engine/pipeline_plan.py); their KV caches live with them. Rank 0 also holds
the embedding (memory-mapped) and lm_head, talks to the user and samples: it sees a model that
looks like engine.model.GptOss (PipelineModel), so engine.generate, engine.session, the terminal
chat and the server run on it unchanged. The other ranks run serve(): a loop that waits for the
next request from rank 0 and does its share.

One forward pass of T tokens (ring neighbours only: r -> r+1, and the last rank -> rank 0):
  rank 0    header [op, cache, T, rows] -> rank 1, embed, its layers, x [1, T, D] -> rank 1
  rank r    header from r-1 (forwarded to r+1), x from r-1, its layers, x -> r+1
  last      sends the last `rows` positions of x back to rank 0
  rank 0    final norm, lm_head, sampling. The next token travels in the next request's x.
The other requests (new cache, snapshot, restore, drop) are a header only, forwarded down the
chain; the caches and snapshots each rank keeps are named by ids rank 0 hands out.

Failures: the ring backend raises when a peer's socket closes (a crashed Mac, a killed process):
rank 0 turns that into DistributedError, one sentence. A peer that stays connected but stops
answering would block rank 0 inside MLX for ever, where Python can't interrupt it: a watchdog
prints the error and ends the process after `timeout` seconds instead.

# T tokens, D hidden, V vocab, N ranks
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from dataclasses import dataclass

import mlx.core as mx

from engine.cache import FullCache, ModelCache, SlidingCache
from engine.errors import ModelError

OP_FORWARD, OP_NEW_CACHE, OP_DROP_CACHE, OP_SNAPSHOT, OP_RESTORE, OP_DROP_SNAPSHOT, OP_STOP = range(1, 8)
HEADER_LEN = 4  # [op, cache id, tokens or snapshot id, rows sent back]
DEFAULT_TIMEOUT_S = 120.0  # one pipeline step; a cold 512-token prefill chunk of the 120b takes seconds
EXIT_PEER_TIMEOUT = 75  # the process exit status when the watchdog fires
_LOST = "connection to a peer was lost"


class DistributedError(ModelError):
    """Another rank of the pipeline is gone or does not answer."""


def peer_lost(detail: str = "") -> DistributedError:
    return DistributedError("Lost the connection to another Mac of the pipeline"
                            f"{f' ({detail})' if detail else ''}; check that every Mac is still on and "
                            "connected, then start again with mlx.launch.")


class _Watchdog:
    """Ends the process with a clear message if a blocking step takes longer than `timeout`.

    MLX's ring recv blocks in C++ without a timeout, so raising is impossible: printing one
    sentence and exiting is what keeps rank 0 (and mlx.launch, which then stops the others)
    from hanging.
    """

    def __init__(self, timeout: float, what: str):
        self.timeout, self.what = timeout, what
        self.timer: threading.Timer | None = None

    def _fire(self) -> None:
        print(f"No answer from the other Macs of the pipeline within {self.timeout:.0f} s while {self.what}; "
              "one of them has stopped or the link is down. Check them, then start again with mlx.launch.",
              file=sys.stderr, flush=True)
        os._exit(EXIT_PEER_TIMEOUT)

    def __enter__(self):
        if self.timeout and self.timeout > 0:
            self.timer = threading.Timer(self.timeout, self._fire)
            self.timer.daemon = True
            self.timer.start()
        return self

    def __exit__(self, *exc):
        if self.timer is not None:
            self.timer.cancel()
        return False


class PipelineStage:
    """The blocks [first, last) of the model, called in order on the residual stream."""

    def __init__(self, config, blocks: list, first: int, last: int):
        if len(blocks) != last - first:
            raise ValueError(f"a stage of layers {first}-{last - 1} needs {last - first} blocks, got {len(blocks)}")
        self.config, self.blocks, self.first, self.last = config, blocks, first, last

    def make_cache(self) -> ModelCache:
        cfg = self.config
        return ModelCache([SlidingCache(cfg.sliding_window) if cfg.is_sliding(i) else FullCache()
                           for i in range(self.first, self.last)])

    def __call__(self, x: mx.array, cache: ModelCache) -> mx.array:
        for block, layer_cache in zip(self.blocks, cache.layers):
            x = block(x, layer_cache)
        return x


@dataclass
class Link:
    """This rank's place in the pipeline and the group it talks through."""

    group: object  # mx.distributed.Group
    timeout: float = DEFAULT_TIMEOUT_S

    @property
    def rank(self) -> int:
        return self.group.rank()

    @property
    def size(self) -> int:
        return self.group.size()

    def send(self, x: mx.array, dst: int, what: str) -> None:
        self.run(mx.distributed.send(x, dst, group=self.group), what)

    def recv(self, shape, dtype, src: int, what: str, watch: bool = True) -> mx.array:
        x = mx.distributed.recv(shape, dtype, src, group=self.group)
        self.run(x, what, watch)
        return x

    def run(self, x: mx.array, what: str, watch: bool = True) -> None:
        """Evaluate a communication op; a lost peer becomes DistributedError, a silent one a watchdog exit."""
        try:
            if watch:
                with _Watchdog(self.timeout, what):
                    mx.eval(x)
            else:
                mx.eval(x)
        except RuntimeError as exc:
            if _LOST in str(exc) or "[ring]" in str(exc) or "[jaccl]" in str(exc):
                raise peer_lost(str(exc).strip()) from None
            raise


class PipelineSnapshot:
    """A cache snapshot on every rank: rank 0's own, plus the id the others know theirs by."""

    def __init__(self, sid: int, local):
        self.sid, self.local = sid, local


class PipelineCache:
    """Rank 0's view of one KV cache spread over the ranks (same interface as ModelCache)."""

    def __init__(self, model: "PipelineModel", cid: int, local: ModelCache):
        self.model, self.cid, self.local = model, cid, local

    @property
    def layers(self):
        return self.local.layers

    @property
    def offset(self) -> int:
        return self.local.offset

    def snapshot(self) -> PipelineSnapshot:
        """Every rank snapshots its own layers' caches (cheap: no copy of the keys)."""
        sid = self.model._new_id()
        self.model._request(OP_SNAPSHOT, self.cid, sid)
        snap = PipelineSnapshot(sid, self.local.snapshot())
        weakref.finalize(snap, self.model._dropped.append, (OP_DROP_SNAPSHOT, sid))
        return snap

    def restore(self, snap: PipelineSnapshot) -> None:
        self.model._request(OP_RESTORE, self.cid, snap.sid)
        self.local.restore(snap.local)

    def state(self) -> list[mx.array]:
        return self.local.state()  # the other ranks' caches are evaluated as each request runs

    def nbytes(self) -> int:
        return self.local.nbytes()


class PipelineModel:
    """Rank 0's model: embedding, its own layers, then the other ranks' layers, norm and lm_head.

    Called like GptOss: model(ids [1, T], cache, last_only) -> logits, model.hidden(ids, cache).
    """

    def __init__(self, local, stage: PipelineStage, link: Link):
        self.local, self.stage, self.link = local, stage, link
        self.config, self.dtype = local.config, local.dtype
        self.embed, self.norm, self.lm_head = local.embed, local.norm, local.lm_head
        self.blocks = local.blocks  # this rank's blocks (residency counters see them)
        self._next_id = 0
        self._dropped: list[tuple[int, int]] = []  # requests queued by finalizers, sent with the next one
        self.D = local.config.hidden_size

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _request(self, op: int, a: int = 0, b: int = 0, rows: int = 0) -> None:
        """Send a header down the chain (with any drops the garbage collector queued first)."""
        if self.link.size == 1:
            return
        pending, self._dropped[:] = list(self._dropped), []
        for drop_op, ident in pending:
            self.link.send(mx.array([drop_op, ident, 0, 0], dtype=mx.int32), 1, "sending a request")
        self.link.send(mx.array([op, a, b, rows], dtype=mx.int32), 1, "sending a request")

    def make_cache(self) -> PipelineCache:
        cid = self._new_id()
        self._request(OP_NEW_CACHE, cid)
        cache = PipelineCache(self, cid, self.stage.make_cache())
        weakref.finalize(cache, self._dropped.append, (OP_DROP_CACHE, cid))
        return cache

    def _forward(self, ids: mx.array, cache: PipelineCache, rows: int) -> mx.array:
        """The last `rows` positions of the final residual stream [B, rows, D] (before the norm)."""
        if ids.ndim == 1:
            ids = ids.reshape(1, -1)
        T = ids.shape[1]
        self._request(OP_FORWARD, cache.cid, T, rows)
        x = self.stage(self.embed(ids), cache.local)
        if self.link.size == 1:
            return x[:, -rows:, :]
        self.link.send(x, 1, "sending activations")
        mx.eval(cache.local.state())
        return self.link.recv((1, rows, self.D), x.dtype, self.link.size - 1, "waiting for the last Mac's output")

    def hidden(self, ids: mx.array, cache: PipelineCache | None = None) -> mx.array:
        """Final normalized hidden states [B, T, D] (all positions come back to rank 0)."""
        cache = cache if cache is not None else self.make_cache()
        T = ids.shape[-1]
        return mx.fast.rms_norm(self._forward(ids, cache, T), self.norm, self.config.rms_norm_eps)

    def __call__(self, ids: mx.array, cache: PipelineCache | None = None, last_only: bool = False) -> mx.array:
        """Logits [B, T, V], or [B, 1, V] with last_only (then only one row comes back)."""
        cache = cache if cache is not None else self.make_cache()
        T = ids.shape[-1]
        h = self._forward(ids, cache, 1 if last_only else T)
        return self.lm_head(mx.fast.rms_norm(h, self.norm, self.config.rms_norm_eps))

    def close(self) -> None:
        """Tell the other ranks to stop serving (they exit their loop)."""
        self._request(OP_STOP)


def serve(stage: PipelineStage, link: Link, dtype) -> None:
    """The loop of ranks 1..N-1: do this rank's share of each request until rank 0 says stop."""
    rank, size = link.rank, link.size
    D = stage.config.hidden_size
    caches: dict[int, ModelCache] = {}
    snapshots: dict[int, object] = {}
    while True:
        # Idle ranks wait for the user as long as it takes: no watchdog on the header.
        header = link.recv((HEADER_LEN,), mx.int32, rank - 1, "waiting for a request", watch=False)
        if rank + 1 < size:
            link.send(header, rank + 1, "forwarding a request")
        op, a, b, rows = (int(v) for v in header.tolist())
        if op == OP_STOP:
            return
        if op == OP_NEW_CACHE:
            caches[a] = stage.make_cache()
        elif op == OP_DROP_CACHE:
            caches.pop(a, None)
        elif op == OP_SNAPSHOT:
            snapshots[b] = caches[a].snapshot()
        elif op == OP_RESTORE:
            caches[a].restore(snapshots[b])
        elif op == OP_DROP_SNAPSHOT:
            snapshots.pop(a, None)
        elif op == OP_FORWARD:
            x = link.recv((1, b, D), dtype, rank - 1, "waiting for activations")
            x = stage(x, caches[a])
            if rank + 1 < size:
                link.send(x, rank + 1, "sending activations")
            else:
                link.send(x[:, -rows:, :], 0, "sending the output back")
            mx.eval(caches[a].state())
        else:
            raise DistributedError(f"Rank {rank} got an unknown request {op}; run the same version on every Mac.")


# ----------------------------------------------------------------------------- opening a pipeline

def init_group(backend: str = "any"):
    """The process group mlx.launch set up (ring over Ethernet/Thunderbolt, or JACCL over RDMA)."""
    return mx.distributed.init(strict=False, backend=backend)


def _gather_ints(group, value: int) -> list[int]:
    """Every rank's `value` (an int below 2**31), in rank order."""
    vec = mx.zeros((group.size(),), dtype=mx.int32)
    vec[group.rank()] = value
    out = mx.distributed.all_sum(vec, group=group)
    # No watchdog: Macs load at their own pace; a rank that crashes closes its sockets instead.
    Link(group).run(out, "exchanging budgets", watch=False)
    return [int(v) for v in out.tolist()]


def open_pipeline(folder, context_length: int = 4096, dtype: str | None = None, budget_bytes: int | None = None,
                  cuts: list[int] | None = None, group=None, timeout: float = DEFAULT_TIMEOUT_S):
    """Plan the split, load this rank's layers, and return (model, split plan) on rank 0.

    On ranks 1..N-1 this serves rank 0's requests and returns (None, split plan) once rank 0 has
    closed the pipeline (PipelineModel.close) or is gone. Every rank must call it with the same
    folder (its own copy of the model), context and cuts.
    budget_bytes: this rank's budget (default: this Mac's; engine.memory.device_budget).
    cuts: the first layer of ranks 1..N-1, to override the planner (tests).
    Raises ModelError (one sentence) when the split does not fit or a rank cannot load.
    """
    from pathlib import Path

    from engine.config import load_config
    from engine.loader import default_dtype, load_model
    from engine.memory import device_budget, footprint_from_config, plan_footprint
    from engine.pipeline_plan import Stage, SplitPlan, plan_split

    group = group or init_group()
    link = Link(group, timeout)
    rank, size = link.rank, link.size
    cfg = load_config(folder)
    dtype = dtype or default_dtype()
    own = int(budget_bytes if budget_bytes is not None else device_budget())
    budgets = [mb * 10**6 for mb in _gather_ints(group, own // 10**6)] if size > 1 else [own]
    name = Path(folder).name or "the model"
    if cuts is None:
        split = plan_split(cfg, budgets, context_length, name, dtype)
    else:
        bounds = (0, *cuts, cfg.num_hidden_layers)
        if len(cuts) != size - 1 or any(a >= b for a, b in zip(bounds, bounds[1:])):
            raise ModelError(f"Give {size - 1} increasing layer numbers to cut {cfg.num_hidden_layers} layers "
                             f"into {size} ranges, not {list(cuts)}.")
        stages = tuple(Stage(r, bounds[r], bounds[r + 1], r == 0, plan_footprint(
            footprint_from_config(cfg, name, (bounds[r], bounds[r + 1]), r == 0),
            context_length, budgets[r], dtype=dtype)) for r in range(size))
        short = [s.rank for s in stages if not s.plan.fits]
        split = SplitPlan(stages, not short, f"Rank {short[0]}'s layers do not fit its memory: "
                          f"{stages[short[0]].plan.reason}" if short else "")
    if not split.fits:
        raise ModelError(split.reason)
    mine = split.stages[rank]
    error = ""
    try:
        local = load_model(folder, dtype, policy=mine.plan.policy, layers=(mine.first, mine.last), head=mine.head)
    except ModelError as exc:
        error, local = str(exc), None
    # Everyone learns whether everyone loaded before the first request (no rank waits for ever).
    loaded = _gather_ints(group, 0 if error else 1) if size > 1 else [0 if error else 1]
    if error:
        raise ModelError(f"Rank {rank} could not load layers {mine.first}-{mine.last - 1}: {error}")
    if not all(loaded):
        missing = ", ".join(str(r) for r, ok in enumerate(loaded) if not ok)
        raise ModelError(f"Rank {missing} could not load its layers (its own output says why); "
                         "fix that Mac's model folder and start again.")
    stage = PipelineStage(cfg, local.blocks, mine.first, mine.last)
    if rank == 0:
        return PipelineModel(local, stage, link), split
    try:
        serve(stage, link, local.dtype)
    except DistributedError:
        pass  # rank 0 is gone: nothing left to serve
    return None, split


def open_pipeline_chat(folder, context_length: int = 4096, dtype: str | None = None, group=None, say=None):
    """The front door for a pipeline: on rank 0 the ChatSession over the whole pipeline (the same
    handle engine.open_chat returns, with the folder's sampling defaults; close it with
    `session.model.close()`); on the other ranks this serves rank 0 until it closes, then returns None.
    say: prints on rank 0 only (the split). Raises ModelError (one sentence)."""
    from engine.front_door import chat_session
    from engine.tokenizer import load_tokenizer

    group = group or init_group()
    enc = load_tokenizer(folder) if group.rank() == 0 else None  # a broken tokenizer is found before the load
    model, split = open_pipeline(folder, context_length, dtype, group=group)
    if model is None:
        return None
    if say is not None:
        say(split.summary())
    return chat_session(model, enc, folder, context_length, split.stages[0].plan.prefill_chunk)


def chat_main(args, chat_class) -> int:
    """engine.chat --distributed: every rank opens the pipeline; rank 0 runs the terminal chat
    (chat_class, engine.chat.Chat) on it, the other ranks serve until it ends."""
    group = init_group()
    say = (lambda text: print(text, file=sys.stderr, flush=True)) if group.rank() == 0 else (lambda text: None)
    try:
        say(f"Loading {args.model} across {group.size()} processes…")
        session = open_pipeline_chat(args.model, args.context, args.dtype, group=group, say=say)
    except ModelError as exc:
        say(str(exc))
        return 1
    if session is None:
        return 0
    model = session.model
    try:
        chat_class(session, args).run()
    except DistributedError as exc:
        say(str(exc))
        return 1
    model.close()
    return 0
