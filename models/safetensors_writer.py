"""Write NumPy tensors as Hugging Face sharded safetensors (+ index json), bf16 included.

NumPy has no bfloat16, so bf16 tensors are given as float32 and rounded here (round to nearest
even, as torch does) to their 16-bit patterns.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

DTYPE_NAMES = {np.dtype(np.uint8): "U8", np.dtype(np.float32): "F32", np.dtype(np.float16): "F16",
               np.dtype(np.int32): "I32"}


def float32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> uint16 bfloat16 bit patterns, round to nearest even."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = u + np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1))
    return (rounded >> 16).astype(np.uint16)


def bf16_bits_to_float32(bits: np.ndarray) -> np.ndarray:
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def _encode(tensor: np.ndarray, bf16: bool) -> tuple[str, bytes]:
    if bf16:
        return "BF16", float32_to_bf16_bits(tensor).tobytes()
    return DTYPE_NAMES[tensor.dtype], np.ascontiguousarray(tensor).tobytes()


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], bf16: set[str]) -> int:
    """One safetensors file; names in `bf16` are stored as BF16. Returns the data bytes written."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        dtype, data = _encode(t, name in bf16)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # keep the data 8-byte aligned, as the reference writer does
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        for blob in blobs:
            fh.write(blob)
    return offset


def write_sharded(folder: Path, tensors: dict[str, np.ndarray], bf16: set[str], shard_bytes: int) -> None:
    """Cut `tensors` (in order) into shards of about shard_bytes and write the index json."""
    folder.mkdir(parents=True, exist_ok=True)
    groups: list[dict[str, np.ndarray]] = [{}]
    size = 0
    for name, t in tensors.items():
        nbytes = t.size * (2 if name in bf16 else t.itemsize)
        if groups[-1] and size + nbytes > shard_bytes:
            groups.append({})
            size = 0
        groups[-1][name] = t
        size += nbytes
    weight_map, total = {}, 0
    for i, group in enumerate(groups):
        fname = f"model-{i:05d}-of-{len(groups) - 1:05d}.safetensors"
        total += write_safetensors(folder / fname, group, bf16)
        weight_map.update({name: fname for name in group})
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
