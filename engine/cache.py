"""KV caches: a growing one for full-attention layers (in the model dtype, or 8-bit), a 128-token
window for sliding layers.

A ModelCache can snapshot and restore its state cheaply, so a chat can rewind to the point where
its history diverges from what was generated (harmony drops earlier analysis) and prefill only
the new tokens:
- full layers only need the offset (positions before it are never overwritten);
- sliding layers keep their window in a buffer written in place, so a snapshot copies the window
  (127 rows per layer), and a decoded token allocates nothing.

# B batch, KV kv heads, S cached tokens, T new tokens, hd head dim
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import mlx.core as mx

from engine.memory import SLIDING_LAP

GROW_STEP = 256  # full caches grow in steps to avoid a reallocation per token


def _append(stored: tuple, new: tuple, used: int) -> tuple:
    """Write the arrays `new` [B, KV, T, ...] at row `used` of `stored` (same count, same
    trailing shapes), growing them in GROW_STEP rows first if needed. Rows past `used` are free:
    a rewind only moves the offset back, and what it left behind gets overwritten here."""
    T = new[0].shape[2]
    end = used + T
    if stored[0] is None or end > stored[0].shape[2]:
        rows = ((end + GROW_STEP - 1) // GROW_STEP) * GROW_STEP
        grown = []
        for old, a in zip(stored, new):
            g = mx.zeros((*a.shape[:2], rows, *a.shape[3:]), a.dtype)
            if old is not None and used:
                g[:, :, :used] = old[:, :, :used]
            grown.append(g)
        stored = tuple(grown)
    for s, a in zip(stored, new):
        s[:, :, used:end] = a
    return stored


class _PositionCache:
    """What the full-attention caches share: positions start..offset held, a snapshot is the offset
    (rows past it are overwritten in place after a rewind)."""

    def __init__(self, start: int = 0):
        self.start = self.offset = start

    def held(self) -> int:
        """Keys held now (positions start..offset)."""
        return self.offset - self.start

    def snapshot(self):
        return self.offset

    def restore(self, snap) -> None:
        self.offset = snap

    def _stored(self) -> tuple:
        raise NotImplementedError

    def fork(self, snap):
        """A new cache of the same kind holding a copy of positions start..snap (this one is untouched)."""
        new = copy.copy(self)
        n = snap - self.start
        stored = self._stored()
        new._set_stored(_append((None,) * len(stored), tuple(a[:, :, :n] for a in stored), 0)
                        if n and stored[0] is not None else (None,) * len(stored))
        new.offset = snap
        return new


class FullCache(_PositionCache):
    """Keys/values of every position so far.

    start: the position of the first token it will hold (0 normally). A cache that starts later
    holds no keys before `start`: used to test positions up to 131k without a 131k-token prefix.
    """

    def __init__(self, start: int = 0):
        super().__init__(start)
        self.keys = self.values = None

    def update(self, k: mx.array, v: mx.array) -> tuple[mx.array, mx.array, int]:
        """Append k, v [B, KV, T, hd]; return all keys, values and the first key's position."""
        self.keys, self.values = _append((self.keys, self.values), (k, v), self.offset - self.start)
        self.offset += k.shape[2]
        end = self.offset - self.start
        return self.keys[:, :, :end], self.values[:, :, :end], self.start

    @property
    def state(self):
        return [] if self.keys is None else [self.keys, self.values]

    def _stored(self) -> tuple:
        return (self.keys, self.values)

    def _set_stored(self, stored: tuple) -> None:
        self.keys, self.values = stored


class QuantizedFullCache(_PositionCache):
    """A FullCache whose keys and values are stored as MLX affine-quantized codes (8-bit, a scale
    and a bias per group of `group_size` along the head dim): half the bytes of bf16.

    update() returns (codes, scales, biases) triples instead of arrays; the model attends to them
    with quantized matmuls (engine.model.quantized_attention), never a dequantized copy. Each
    token's row is quantized on its own, so a chunked prefill stores exactly what token-by-token
    decoding would, and a snapshot is still just the offset.
    """

    def __init__(self, bits: int = 8, group_size: int = 64, start: int = 0):
        self.bits, self.group_size = bits, group_size
        super().__init__(start)
        self.stored = (None,) * 6  # key codes, scales, biases, then the same for values

    def update(self, k: mx.array, v: mx.array) -> tuple[tuple, tuple, int]:
        """Quantize and append k, v [B, KV, T, hd]; return all keys and values as
        (codes [B, KV, S, hd*bits/32] uint32, scales [B, KV, S, hd/group], biases) and the first key's position."""
        new = (*mx.quantize(k, group_size=self.group_size, bits=self.bits),
               *mx.quantize(v, group_size=self.group_size, bits=self.bits))
        self.stored = _append(self.stored, new, self.offset - self.start)
        self.offset += k.shape[2]
        end = self.offset - self.start
        held = tuple(a[:, :, :end] for a in self.stored)
        return held[:3], held[3:], self.start

    @property
    def state(self):
        return [] if self.stored[0] is None else list(self.stored)

    def _stored(self) -> tuple:
        return self.stored

    def _set_stored(self, stored: tuple) -> None:
        self.stored = stored


class SlidingCache:
    """Only the last `window - 1` positions are kept: a query sees itself and the 127 before it.

    They live in one buffer of window - 1 + LAP rows written in place: a decoded token is one row
    written, no array made. Once per lap (LAP tokens) the window moves back to the front of a fresh
    buffer. update() returns a view of the held rows plus the new ones, in position order, so the
    attention sees exactly the keys (and sums them in the order) it did when this was a concatenation.
    A snapshot copies the held window (the buffer is overwritten afterwards); that is the only copy.
    """

    LAP = SLIDING_LAP

    def __init__(self, window: int, start: int = 0):
        self.window = window
        self.keep = window - 1
        self.offset = start
        self.buffers = (None, None)  # keys, values [B, KV, rows, hd]
        self.lo = self.used = 0  # the held window is rows lo..used of the buffers

    def _room(self, k: mx.array, T: int) -> None:
        """Make rows used..used+T free, moving the held window to the front of a new buffer if needed."""
        rows = self.keep + max(self.LAP, T)
        if self.buffers[0] is not None and self.used + T <= self.buffers[0].shape[2]:
            return
        held = self.used - self.lo
        if self.buffers[0] is not None and self.buffers[0].shape[2] > rows:
            rows = self.buffers[0].shape[2]
        moved = []
        for old in self.buffers:
            b = mx.zeros((*k.shape[:2], rows, k.shape[3]), k.dtype)
            if old is not None and held:
                b[:, :, :held] = old[:, :, self.lo:self.used]
            moved.append(b)
        self.buffers = tuple(moved)
        self.lo, self.used = 0, held

    def update(self, k: mx.array, v: mx.array) -> tuple[mx.array, mx.array, int]:
        T = k.shape[2]
        self._room(k, T)
        keys, values = self.buffers
        end = self.used + T
        keys[:, :, self.used:end] = k  # in place: nothing else holds the buffer (snapshots are copies)
        values[:, :, self.used:end] = v
        self.buffers = (keys, values)
        first = self.lo
        start = self.offset - (self.used - first)  # position of the first returned row
        self.offset += T
        self.used = end
        self.lo = max(first, end - self.keep)
        return keys[:, :, first:end], values[:, :, first:end], start

    def held(self) -> int:
        """Keys held now (at most window - 1): what the next update's keys come after."""
        return self.used - self.lo

    def window_rows(self) -> tuple[mx.array | None, mx.array | None]:
        """Views of the held keys and values (position order), or (None, None) when empty."""
        if self.buffers[0] is None or self.used == self.lo:
            return None, None
        return tuple(b[:, :, self.lo:self.used] for b in self.buffers)

    def snapshot(self):
        k, v = self.window_rows()
        if k is None:
            return (self.offset, None, None)
        k, v = mx.contiguous(k), mx.contiguous(v)
        mx.async_eval(k, v)  # copied now, so the next in-place write finds the buffer unshared
        return (self.offset, k, v)

    def restore(self, snap) -> None:
        offset, k, v = snap
        self.offset = offset
        self.lo = self.used = 0
        if k is not None:
            self._room(k, k.shape[2])
            keys, values = self.buffers
            keys[:, :, :k.shape[2]] = k
            values[:, :, :k.shape[2]] = v
            self.buffers = (keys, values)
            self.used = k.shape[2]

    @property
    def state(self):
        return [] if self.buffers[0] is None else list(self.buffers)

    def fork(self, snap):
        """A new window holding `snap` (a snapshot of this one)."""
        new = SlidingCache(self.window)
        new.restore(snap)
        return new


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

    def fork(self, snap: CacheSnapshot) -> "ModelCache":
        """A new cache at `snap` (a snapshot of this one), sharing nothing this one will overwrite."""
        return ModelCache([c.fork(s) for c, s in zip(self.layers, snap.layers)])

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.state())
