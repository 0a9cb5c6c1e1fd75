"""Expert residency: only `slots` experts per layer live in MLX buffers; the rest are copied in
from the memory-mapped checkpoint when the router picks them, evicting the least recently used.

The MoE block calls `store.resolve(idx)` with the router's choice for the tokens at hand; it reads
the choice (a sync point, once per layer), copies in the experts that are missing, and returns an
ExpertWeights that holds only the slots plus the choice renumbered to slot numbers. The expert
arithmetic is untouched, so the output is exactly the all-resident one. The bytes stay MXFP4 as
stored: a copy is a memcpy of the expert's blocks, scales and biases.

When one call needs more distinct experts than there are slots (a long prefill chunk), the slots
and the missing experts are put together in a temporary buffer for that layer only; the slots are
left as they are.

# E experts, S slots, N tokens, K experts per token, D hidden, I expert intermediate
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import mlx.core as mx
import numpy as np

from engine.checkpoint_format import EXPERT_PARTS, expert_tensor, mxfp4_words
from engine.moe import ExpertWeights

_PARTS = ("gate_up_blocks", "gate_up_scales", "gate_up_bias", "down_blocks", "down_scales", "down_bias")
_TENSOR = {part.replace("_proj", ""): part for part in EXPERT_PARTS}  # "down_blocks" -> "down_proj_blocks"


@dataclass
class ResidencyStats:
    """Counters since load (or the last reset): one hit or miss per distinct expert per call."""

    hits: int = 0
    misses: int = 0
    bytes_fetched: int = 0  # bytes copied from the checkpoint into MLX buffers
    overflow_calls: int = 0  # calls that needed more experts than slots (temporary buffer)

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 1.0


def _as_uint32(blocks: np.ndarray) -> np.ndarray:
    """[E, R, n_blocks, 16] uint8 -> [E, R, n_blocks * 4] uint32 (MLX's mxfp4 packing, same bytes)."""
    return mxfp4_words(blocks)


class ExpertStore:
    """One layer's experts, `slots` of them resident, the rest read from the memory-mapped source.

    source: part name -> NumPy array [E, ...] (memory-mapped; bf16 biases as uint16 bits).
    """

    def __init__(self, source: dict[str, np.ndarray], slots: int, dtype=mx.bfloat16):
        self.source = source
        self.num_experts = source["gate_up_blocks"].shape[0]
        if not 1 <= slots <= self.num_experts:
            raise ValueError(f"slots must be between 1 and {self.num_experts}, not {slots}")
        self.slots = slots
        self.dtype = dtype
        self.expert_bytes = sum(a[0].nbytes for a in source.values())
        self.stats = ResidencyStats()
        # Warm start: experts 0..S-1 (not counted as fetched: it is the load itself).
        first = list(range(slots))
        self.buffers = {name: self._fetch(name, first) for name in _PARTS}
        self._lru: OrderedDict[int, int] = OrderedDict((e, e) for e in first)  # expert -> slot, oldest first
        mx.eval(list(self.buffers.values()))

    def _fetch(self, name: str, experts) -> mx.array:
        """Copy experts' rows of one part from the source into a new MLX array."""
        src = self.source[name]
        # One expert: a view of the mapped file, so the only copy is into MLX.
        rows = src[experts[0]:experts[0] + 1] if len(experts) == 1 else np.ascontiguousarray(src[np.asarray(experts)])
        a = mx.array(rows)
        if name.endswith("_bias"):
            a = (a.view(mx.bfloat16) if rows.dtype == np.uint16 else a).astype(self.dtype)
        return a

    def _weights(self, buffers: dict[str, mx.array]) -> ExpertWeights:
        return ExpertWeights(**{name: buffers[name] for name in _PARTS})

    @property
    def resident(self) -> list[int]:
        """Resident experts, least recently used first."""
        return list(self._lru)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.buffers.values())

    def resolve(self, idx: mx.array) -> tuple[ExpertWeights, mx.array]:
        """Router choice idx [N, K] -> (the slots' ExpertWeights, idx renumbered to slots) [N, K]."""
        ids = np.asarray(idx)  # reads the router choice: the one sync point per layer
        wanted = np.unique(ids).tolist()
        lut = np.zeros(self.num_experts, dtype=np.uint32)
        if len(wanted) > self.slots:
            return self._overflow(ids, wanted, lut)
        missing = [e for e in wanted if e not in self._lru]
        self.stats.hits += len(wanted) - len(missing)
        self.stats.misses += len(missing)
        if missing:
            wanted_set = set(wanted)
            victims = [e for e in self._lru if e not in wanted_set][: len(missing)]
            for new, old in zip(missing, victims):
                slot = self._lru.pop(old)
                for name in _PARTS:  # in place: MLX donates the buffer when nothing else holds it
                    self.buffers[name][slot] = self._fetch(name, [new])[0]
                self._lru[new] = slot
            # No eval here: the copies are evaluated with the layer that uses them, a sync less.
            self.stats.bytes_fetched += len(missing) * self.expert_bytes
        for e in wanted:  # most recently used last
            self._lru.move_to_end(e)
            lut[e] = self._lru[e]
        return self._weights(self.buffers), mx.array(lut[ids])

    def _overflow(self, ids, wanted, lut) -> tuple[ExpertWeights, mx.array]:
        # More experts than slots in one call: a temporary buffer of the slots followed by the
        # missing experts. Only the missing ones are read from the mapped file (the resident ones
        # are one device copy away); the slots and the LRU order are left as they are.
        self.stats.overflow_calls += 1
        missing = [e for e in wanted if e not in self._lru]
        self.stats.hits += len(wanted) - len(missing)
        self.stats.misses += len(missing)
        self.stats.bytes_fetched += len(missing) * self.expert_bytes
        for e, slot in self._lru.items():
            lut[e] = slot
        lut[np.asarray(missing, dtype=np.int64)] = self.slots + np.arange(len(missing), dtype=np.uint32)
        temp = {name: mx.concatenate([self.buffers[name]] + [self._fetch(name, [e]) for e in missing])
                for name in _PARTS}
        return self._weights(temp), mx.array(lut[ids])


def layer_source(checkpoint, layer_index: int) -> dict[str, np.ndarray]:
    """Memory-mapped views of one layer's expert tensors (blocks viewed as uint32)."""
    out = {}
    for name in _PARTS:
        a = checkpoint.memmap(expert_tensor(layer_index, _TENSOR[name]))
        out[name] = _as_uint32(a) if name.endswith("_blocks") else a
    return out


def load_layer_experts(checkpoint, layer_index: int, config, slots: int, dtype=mx.bfloat16) -> ExpertStore:
    """The loader's seam: an ExpertStore for one layer with `slots` resident experts."""
    return ExpertStore(layer_source(checkpoint, layer_index), min(slots, config.num_local_experts), dtype)


def model_stores(model) -> list[ExpertStore]:
    """The ExpertStores of a loaded model (empty when every expert is resident)."""
    layers = [getattr(b.moe.experts, "inner", b.moe.experts) for b in model.blocks]  # see through wrappers
    return [e for e in layers if isinstance(e, ExpertStore)]


def total_stats(model) -> ResidencyStats:
    """Counters summed over the layers of a loaded model."""
    total = ResidencyStats()
    for store in model_stores(model):
        for f in ("hits", "misses", "bytes_fetched", "overflow_calls"):
            setattr(total, f, getattr(total, f) + getattr(store.stats, f))
    return total
