"""KV caches: a growing one for full-attention layers, a 128-token window for sliding layers.

A ModelCache can snapshot and restore its state cheaply, so a chat can rewind to the point where
its history diverges from what was generated (harmony drops earlier analysis) and prefill only
the new tokens:
- full layers only need the offset (positions before it are never overwritten);
- sliding layers keep their last window as immutable MLX arrays, so a snapshot is a reference.

# B batch, KV kv heads, S cached tokens, T new tokens, hd head dim
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx

GROW_STEP = 256  # full caches grow in steps to avoid a reallocation per token


class FullCache:
    """Keys/values of every position so far."""

    def __init__(self):
        self.keys = self.values = None
        self.offset = 0

    def update(self, k: mx.array, v: mx.array) -> tuple[mx.array, mx.array, int]:
        """Append k, v [B, KV, T, hd]; return all keys, values and the first key's position."""
        T = k.shape[2]
        end = self.offset + T
        if self.keys is None or end > self.keys.shape[2]:
            grow = ((end + GROW_STEP - 1) // GROW_STEP) * GROW_STEP
            shape = (*k.shape[:2], grow, k.shape[3])
            new_k, new_v = mx.zeros(shape, k.dtype), mx.zeros(shape, v.dtype)
            if self.keys is not None and self.offset:
                new_k[:, :, : self.offset] = self.keys[:, :, : self.offset]
                new_v[:, :, : self.offset] = self.values[:, :, : self.offset]
            self.keys, self.values = new_k, new_v
        self.keys[:, :, self.offset:end] = k
        self.values[:, :, self.offset:end] = v
        self.offset = end
        return self.keys[:, :, :end], self.values[:, :, :end], 0

    def snapshot(self):
        return self.offset

    def restore(self, snap) -> None:
        self.offset = snap

    @property
    def state(self):
        return [] if self.keys is None else [self.keys, self.values]


class SlidingCache:
    """Only the last `window - 1` positions are kept: a query sees itself and the 127 before it."""

    def __init__(self, window: int):
        self.window = window
        self.keys = self.values = None
        self.offset = 0

    def update(self, k: mx.array, v: mx.array) -> tuple[mx.array, mx.array, int]:
        T = k.shape[2]
        if self.keys is not None:
            k = mx.concatenate([self.keys, k], axis=2)
            v = mx.concatenate([self.values, v], axis=2)
        start = self.offset + T - k.shape[2]  # position of k's first row
        self.offset += T
        keep = self.window - 1
        # New arrays, never written in place: old snapshots stay valid.
        self.keys, self.values = k[:, :, -keep:], v[:, :, -keep:]
        return k, v, start

    def snapshot(self):
        return (self.offset, self.keys, self.values)

    def restore(self, snap) -> None:
        self.offset, self.keys, self.values = snap

    @property
    def state(self):
        return [] if self.keys is None else [self.keys, self.values]


@dataclass(frozen=True)
class CacheSnapshot:
    offset: int
    layers: tuple


class ModelCache:
    """One cache per layer, all at the same offset."""

    def __init__(self, layers: list):
        self.layers = layers

    def __getitem__(self, i):
        return self.layers[i]

    @property
    def offset(self) -> int:
        return self.layers[0].offset if self.layers else 0

    def snapshot(self) -> CacheSnapshot:
        """The current state, to come back to later (cheap: no copy of the keys)."""
        return CacheSnapshot(self.offset, tuple(c.snapshot() for c in self.layers))

    def restore(self, snap: CacheSnapshot) -> None:
        for cache, s in zip(self.layers, snap.layers):
            cache.restore(s)

    def state(self) -> list[mx.array]:
        return [a for c in self.layers for a in c.state]

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.state())
