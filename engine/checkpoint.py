"""The official gpt-oss checkpoint layout (Hugging Face safetensors) -> validated tensors.

Everything is checked from the safetensors headers before a single weight is read: every tensor
the config implies must be present, with the right shape and dtype, and its bytes must lie inside
its shard (a truncated download is caught here, not as a crash halfway through a forward pass).
Tensors are then handed out lazily (mx.load does not read the bytes until they are evaluated),
so loading never holds more than the weights themselves.

# E experts, D hidden, I expert intermediate, V vocab, H query heads, KV kv heads, hd head dim
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import numpy as np

from engine.config import GptOssConfig
from engine.errors import ModelError

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
FLOAT_DTYPES = ("BF16", "F16", "F32")
_BYTES_PER = {"BF16": 2, "F16": 2, "F32": 4, "U8": 1, "I8": 1, "U16": 2, "I32": 4, "U32": 4, "I64": 8}
_NUMPY_DTYPE = {"BF16": np.uint16, "F16": np.float16, "F32": np.float32, "U8": np.uint8,
                "I8": np.int8, "U16": np.uint16, "I32": np.int32, "U32": np.uint32, "I64": np.int64}
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str  # safetensors dtype string: BF16, U8, ...
    shard: Path
    data_offset: int  # absolute byte offset of the tensor's data in its shard
    nbytes: int


def expected_tensors(cfg: GptOssConfig) -> dict[str, tuple[tuple[int, ...], tuple[str, ...]]]:
    """Every tensor name the config implies -> (shape, allowed dtypes)."""
    D, I, E, V = cfg.hidden_size, cfg.intermediate_size, cfg.num_local_experts, cfg.vocab_size
    H, KV, hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    f, u8 = FLOAT_DTYPES, ("U8",)
    out = {
        "model.embed_tokens.weight": ((V, D), f),
        "model.norm.weight": ((D,), f),
    }
    if not cfg.tie_word_embeddings:
        out["lm_head.weight"] = ((V, D), f)
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        out.update({
            p + "input_layernorm.weight": ((D,), f),
            p + "post_attention_layernorm.weight": ((D,), f),
            p + "self_attn.q_proj.weight": ((H * hd, D), f),
            p + "self_attn.k_proj.weight": ((KV * hd, D), f),
            p + "self_attn.v_proj.weight": ((KV * hd, D), f),
            p + "self_attn.o_proj.weight": ((D, H * hd), f),
            p + "self_attn.sinks": ((H,), f),
            p + "mlp.router.weight": ((E, D), f),
            p + "mlp.router.bias": ((E,), f),
            p + "mlp.experts.gate_up_proj_blocks": ((E, 2 * I, D // 32, 16), u8),
            p + "mlp.experts.gate_up_proj_scales": ((E, 2 * I, D // 32), u8),
            p + "mlp.experts.gate_up_proj_bias": ((E, 2 * I), f),
            p + "mlp.experts.down_proj_blocks": ((E, D, I // 32, 16), u8),
            p + "mlp.experts.down_proj_scales": ((E, D, I // 32), u8),
            p + "mlp.experts.down_proj_bias": ((E, D), f),
        })
        if cfg.attention_bias:
            out.update({
                p + "self_attn.q_proj.bias": ((H * hd,), f),
                p + "self_attn.k_proj.bias": ((KV * hd,), f),
                p + "self_attn.v_proj.bias": ((KV * hd,), f),
                p + "self_attn.o_proj.bias": ((D,), f),
            })
    return out


def read_safetensors_header(path: Path) -> dict[str, TensorInfo]:
    """Parse one shard's header; checks that every tensor's bytes lie inside the file."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            raw_len = fh.read(8)
            if len(raw_len) < 8:
                raise ModelError(f"{path.name} is empty or truncated; download it again.")
            (header_len,) = struct.unpack("<Q", raw_len)
            if header_len > min(_MAX_HEADER, size - 8):
                raise ModelError(f"{path.name} is not a valid safetensors file (bad header); download it again.")
            header = json.loads(fh.read(header_len))
    except OSError as exc:
        raise ModelError(f"{path.name} could not be read ({exc.strerror}); check the file and try again.") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelError(f"{path.name} is not a valid safetensors file (bad header); download it again.") from None
    base = 8 + header_len
    infos = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        if base + end > size:
            raise ModelError(
                f"{path.name} is truncated: tensor {name} ends past the end of the file; "
                "download this file again."
            )
        infos[name] = TensorInfo(name, tuple(meta["shape"]), meta["dtype"], path, base + start, end - start)
    return infos


class Checkpoint:
    """A checkpoint folder: its shards' headers, validated against the config."""

    def __init__(self, folder: str | Path, cfg: GptOssConfig):
        self.folder = Path(folder)
        self.cfg = cfg
        self.tensors = self._read_headers()
        self._validate()
        self._loaded: dict[Path, dict[str, mx.array]] = {}

    def _shard_names(self) -> list[str]:
        index = self.folder / INDEX_FILE
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            except (OSError, ValueError, KeyError, TypeError):
                raise ModelError(f"{index.name} in {self.folder} is damaged; download the model again.") from None
            return sorted(set(weight_map.values()))
        if (self.folder / SINGLE_FILE).is_file():
            return [SINGLE_FILE]
        shards = sorted(p.name for p in self.folder.glob("*.safetensors"))
        if not shards:
            raise ModelError(f"There are no .safetensors weights in {self.folder}; download the model first.")
        return shards

    def _read_headers(self) -> dict[str, TensorInfo]:
        tensors: dict[str, TensorInfo] = {}
        for name in self._shard_names():
            path = self.folder / name
            if not path.is_file():
                raise ModelError(f"The weights file {name} is missing from {self.folder}; download the model again.")
            tensors.update(read_safetensors_header(path))
        return tensors

    def _validate(self) -> None:
        for name, (shape, dtypes) in expected_tensors(self.cfg).items():
            info = self.tensors.get(name)
            if info is None:
                raise ModelError(f"The tensor {name} is missing from the weights in {self.folder}; "
                                 "the download is incomplete or for another model.")
            if info.shape != shape:
                raise ModelError(f"The tensor {name} in {info.shard.name} has shape {list(info.shape)}, "
                                 f"but config.json implies {list(shape)}; the files don't belong together.")
            if info.dtype not in dtypes:
                raise ModelError(f"The tensor {name} in {info.shard.name} is {info.dtype}, expected "
                                 f"{' or '.join(dtypes)}; this is not the official checkpoint format.")
            if info.nbytes != int(np.prod(shape)) * _BYTES_PER.get(info.dtype, 0):
                raise ModelError(f"The tensor {name} in {info.shard.name} has the wrong byte size; "
                                 "download this file again.")

    def header(self, name: str) -> tuple[tuple[int, ...], str, Path]:
        """(shape, safetensors dtype, shard path) of one tensor."""
        info = self.tensors[name]
        return info.shape, info.dtype, info.shard

    def memmap(self, name: str) -> np.memmap:
        """Zero-copy, read-only NumPy view of one tensor in its shard (BF16 comes as uint16 bits)."""
        info = self.tensors[name]
        return np.memmap(info.shard, dtype=_NUMPY_DTYPE[info.dtype], mode="r",
                         offset=info.data_offset, shape=info.shape)

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
