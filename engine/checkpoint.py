"""The official gpt-oss checkpoint layout (Hugging Face safetensors) -> validated tensors.

Everything is checked from the safetensors headers before a single weight is read (by the pure
engine/checkpoint_format.py, which the planner and the app's model manager use too): every tensor
the config implies must be present, with the right shape and dtype, and its bytes must lie inside
its shard (a truncated download is caught here, not as a crash halfway through a forward pass).
Tensors are then handed out lazily (mx.load does not read the bytes until they are evaluated),
so loading never holds more than the weights themselves.

# E experts, D hidden, I expert intermediate, V vocab, H query heads, KV kv heads, hd head dim
"""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import numpy as np

from engine import checkpoint_format as fmt
from engine.checkpoint_format import (  # noqa: F401  (re-exported: the format lives there)
    FLOAT_DTYPES, INDEX_FILE, SINGLE_FILE, TensorInfo, expected_tensors, read_header,
)
from engine.config import GptOssConfig
from engine.errors import ModelError

read_safetensors_header = read_header  # the older name


class Checkpoint:
    """A checkpoint folder: its shards' headers, validated against the config."""

    def __init__(self, folder: str | Path, cfg: GptOssConfig):
        self.folder = Path(folder)
        self.cfg = cfg
        self.tensors = fmt.read_checkpoint(self.folder, cfg)
        fmt.check_finite(self.tensors, fmt.small_float_tensors(cfg))
        self._loaded: dict[Path, dict[str, mx.array]] = {}

    def header(self, name: str) -> tuple[tuple[int, ...], str, Path]:
        """(shape, safetensors dtype, shard path) of one tensor."""
        info = self.tensors[name]
        return info.shape, info.dtype, info.shard

    def memmap(self, name: str) -> np.memmap:
        """Zero-copy, read-only NumPy view of one tensor in its shard (BF16 comes as uint16 bits)."""
        return fmt.memmap(self.tensors[name])

    def array(self, name: str) -> mx.array:
        """The tensor as a lazy MLX array (read from disk when first evaluated).

        The checkpoint lets go of it once handed out, so a tensor the loader converts (or drops)
        is freed at once instead of living until loading ends.
        """
        shard = self.tensors[name].shard
        if name not in self._loaded.get(shard, {}):
            try:
                self._loaded[shard] = mx.load(str(shard))  # lazy: only headers are read here
            except (RuntimeError, ValueError) as exc:
                raise ModelError(f"{shard.name} could not be read ({exc}); download it again.") from None
        return self._loaded[shard].pop(name)

    def weights_bytes(self) -> int:
        return sum(info.nbytes for info in self.tensors.values())
