"""Many conversations' KV caches at once: a new prompt resumes from the longest cached prefix.

    cache = PromptCache(model.make_cache, budget_bytes=plan.prompt_cache_tokens * per_token)
    conv, reused = cache.resume(ids, owner="window")   # conv.cache holds ids[:reused]
    ...prefill and decode into conv...

Each Conversation is one ModelCache, the ids it holds and snapshots to rewind to (a snapshot is
the offset for the full-attention layers and a copy of each sliding window). For a new prompt,
every conversation in memory (and on disk, engine/prompt_store.py) says how much of it it can
resume; the longest wins:
- it extends everything the conversation holds (a tool result after a call): carry on in place;
- it diverges only after the conversation's newest snapshot (the next turn: harmony drops the
  last reply's analysis, so the prompt diverges inside that reply): rewind in place;
- it diverges earlier (an edit, or another conversation sharing the first part): fork, i.e. copy
  the prefix into a new cache. A full-attention cache is overwritten in place after a rewind, so
  rewinding someone else's conversation would destroy it: the window and the API clients never
  evict each other's conversations that way.
Memory is bounded by `budget_bytes` (the memory plan's share, engine/memory.py) for every
conversation but the one in use, least recently used first; the newest conversation of each owner
goes last. A conversation that leaves memory goes to the store (disk), if there is one.

Not thread-safe: used on the engine thread only (the store writes on its own thread).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

MAX_SNAPSHOTS = 8  # per conversation; each holds the sliding layers' windows (a few MB for gpt-oss-20b)
MAX_CONVERSATIONS = 16  # in memory, whatever the bytes say: each one costs a lookup per prompt


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the longest common prefix of two id lists."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


@dataclass
class Snapshot:
    position: int
    state: object = field(repr=False)  # engine.cache.CacheSnapshot


@dataclass(eq=False)
class Conversation:
    """One KV cache and the ids it holds, in order; snapshots at positions it can rewind to."""

    cache: object  # engine.cache.ModelCache
    held: list[int] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    owner: str | None = None
    used_at: int = 0
    from_disk: bool = False  # loaded from the store
    saved_key: str | None = None  # the store's file that holds exactly this state (nothing to write)

    def reach(self, ids: list[int]) -> tuple[int, Snapshot | None]:
        """(how many of ids[:-1] this can resume, the snapshot to restore or None to carry on in place)."""
        target = len(ids) - 1
        reusable = min(common_prefix(self.held, ids), target)
        if reusable == len(self.held) == self.cache.offset:
            return reusable, None
        snap = next((s for s in reversed(self.snapshots) if s.position <= reusable), None)
        return (snap.position, snap) if snap is not None else (0, None)

    def add_snapshot(self, ids: list[int], position: int) -> None:
        """The cache holds ids[:position]: remember it and keep a snapshot."""
        self.held = list(ids[:position])
        if not self.snapshots or self.snapshots[-1].position < position:
            self.snapshots.append(Snapshot(position, self.cache.snapshot()))
        self.snapshots = self.snapshots[-MAX_SNAPSHOTS:]

    def rewind(self, snap: Snapshot) -> None:
        """Back to `snap`, in place: later snapshots die (their full-attention rows get overwritten)."""
        self.cache.restore(snap.state)
        self.held = self.held[:snap.position]
        self.snapshots = [s for s in self.snapshots if s.position <= snap.position]

    def fork(self, snap: Snapshot) -> "Conversation":
        """A copy at `snap`; this conversation is left as it is."""
        return Conversation(self.cache.fork(snap.state), self.held[:snap.position],
                            [s for s in self.snapshots if s.position <= snap.position])

    def nbytes(self) -> int:
        """Bytes of its cache and of the windows its snapshots keep."""
        total = getattr(self.cache, "nbytes", lambda: 0)()
        for s in self.snapshots:
            for layer in getattr(s.state, "layers", ()):
                if isinstance(layer, tuple):
                    total += sum(a.nbytes for a in layer[1:] if a is not None)
        return total


class PromptCache:
    """The conversations in memory, and the store behind them (see the module docstring)."""

    def __init__(self, make_cache, budget_bytes: int | None = None, store=None,
                 max_conversations: int = MAX_CONVERSATIONS):
        self.make_cache = make_cache
        self.budget_bytes = budget_bytes  # for every conversation but the one in use; None: no limit
        self.store = store  # engine.prompt_store.PromptStore or None
        self.max_conversations = max_conversations
        self.conversations: list[Conversation] = []
        self.current: Conversation | None = None
        self._clock = 0

    def resume(self, ids: list[int], owner: str | None = None) -> tuple[Conversation, int]:
        """The conversation to answer `ids` with, rewound or forked so that its cache holds ids[:n]; and n."""
        best, reach, snap = None, 0, None
        for conv in self.conversations:
            n, s = conv.reach(ids)
            if n > reach or (n == reach and best is not None and conv is self.current):
                best, reach, snap = conv, n, s
        if self.store is not None:
            loaded = self.store.load_longer(ids, reach, self.make_cache)
            if loaded is not None:
                self.conversations.append(loaded)
                best = loaded
                reach, snap = loaded.reach(ids)
        if best is None or reach == 0:
            conv = Conversation(self.make_cache())
            self.conversations.append(conv)
            reach = 0
        elif snap is None:
            conv = best
        elif snap is best.snapshots[-1]:
            best.rewind(snap)  # only the last reply is lost: it is this conversation's next turn
            conv = best
        else:
            conv = best.fork(snap)
            self.conversations.append(conv)
        self._clock += 1
        conv.used_at, conv.owner = self._clock, owner if owner is not None else conv.owner
        self.current = conv
        self._evict()
        return conv, reach

    def discard(self, conv: Conversation | None) -> None:
        """Forget a conversation whose cache can't be trusted (it is not written anywhere)."""
        if conv in self.conversations:
            self.conversations.remove(conv)
        if self.current is conv:
            self.current = None

    def clear(self) -> None:
        """Forget every conversation in memory (the store keeps its files)."""
        self.conversations, self.current = [], None

    def memory_bytes(self) -> int:
        """Bytes held by the conversations not in use (what the budget bounds)."""
        return sum(c.nbytes() for c in self.conversations if c is not self.current)

    def _evict(self) -> None:
        """Least recently used first, the newest of each owner last; never the one in use."""
        while True:
            others = [c for c in self.conversations if c is not self.current]
            over_count = len(self.conversations) > self.max_conversations
            over_bytes = self.budget_bytes is not None and sum(c.nbytes() for c in others) > self.budget_bytes
            if not others or not (over_count or over_bytes):
                return
            newest = {}
            for c in others:
                if c.owner is not None and c.used_at > newest.get(c.owner, (0, None))[0]:
                    newest[c.owner] = (c.used_at, c)
            live = {id(c) for _, c in newest.values()}
            victim = min(others, key=lambda c: (id(c) in live, c.used_at))
            self.conversations.remove(victim)
            if self.store is not None:
                self.store.save(victim)

    def flush(self, wait: bool = True) -> None:
        """Write every conversation in memory to the store (the app quits); they stay in memory."""
        if self.store is None:
            return
        for conv in self.conversations:
            self.store.save(conv)
        if wait:
            self.store.wait()
