"""The official gpt-oss checkpoint format, read and checked without MLX (the app uses it too).

What a model folder must hold, checked from config.json, the index and the safetensors headers
before a single weight is read:
- shards: the files the index names (or model.safetensors, or every *.safetensors), each a
  regular file inside the folder. A name with "..", an absolute path, a device, a FIFO (which
  would block the reader forever) or a link leading out of the folder is refused. The one
  exception is the Hugging Face cache, whose snapshot files link into the repo's blobs/ folder.
- headers: a JSON object of tensor entries {dtype, shape, data_offsets}, of the right types,
  whose byte ranges tile the data exactly (no overlap, no gap, nothing after the last tensor, each
  range dtype x shape bytes long), as the safetensors format itself requires.
- layout: every tensor the config implies, with its shape and dtype; all float tensors in one
  dtype (the one config.json names), so a same-size relabelling (BF16 -> F16) is caught.
Every refusal is a ModelError with one sentence and a way forward.

# E experts, D hidden, I expert intermediate, V vocab, H query heads, KV kv heads, hd head dim
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.config import GptOssConfig
from engine.errors import ModelError, unreadable

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header
FLOAT_DTYPES = ("BF16", "F16", "F32")
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
               "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
NUMPY_DTYPE = {"BF16": np.uint16, "F16": np.float16, "F32": np.float32, "U8": np.uint8, "I8": np.int8,
               "U16": np.uint16, "I16": np.int16, "I32": np.int32, "U32": np.uint32, "I64": np.int64,
               "U64": np.uint64, "F64": np.float64, "BOOL": np.bool_}
# config.json's torch_dtype (or dtype) -> the safetensors dtype of every float tensor
CONFIG_DTYPE = {"bfloat16": "BF16", "float16": "F16", "float32": "F32"}

# The MoE experts of one layer, all under model.layers.N.mlp.experts. (the only MXFP4 tensors)
EXPERT_PARTS = ("gate_up_proj_blocks", "gate_up_proj_scales", "gate_up_proj_bias",
                "down_proj_blocks", "down_proj_scales", "down_proj_bias")
MXFP4_BLOCK = 32  # values per block; a block is 16 bytes

_REDO = "download the model again"


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str  # safetensors dtype string: BF16, U8, ...
    shard: Path
    data_offset: int  # absolute byte offset of the tensor's data in its shard
    nbytes: int


# ----------------------------------------------------------------------------- names

def expert_tensor(layer: int, part: str) -> str:
    """Full name of one layer's expert tensor, e.g. expert_tensor(3, "down_proj_blocks")."""
    return f"model.layers.{layer}.mlp.experts.{part}"


def is_expert_tensor(name: str) -> bool:
    return ".mlp.experts." in name


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
        })
        experts = {
            "gate_up_proj_blocks": ((E, 2 * I, D // MXFP4_BLOCK, 16), u8),
            "gate_up_proj_scales": ((E, 2 * I, D // MXFP4_BLOCK), u8),
            "gate_up_proj_bias": ((E, 2 * I), f),
            "down_proj_blocks": ((E, D, I // MXFP4_BLOCK, 16), u8),
            "down_proj_scales": ((E, D, I // MXFP4_BLOCK), u8),
            "down_proj_bias": ((E, D), f),
        }
        out.update({expert_tensor(i, part): experts[part] for part in EXPERT_PARTS})
        if cfg.attention_bias:
            out.update({
                p + "self_attn.q_proj.bias": ((H * hd,), f),
                p + "self_attn.k_proj.bias": ((KV * hd,), f),
                p + "self_attn.v_proj.bias": ((KV * hd,), f),
                p + "self_attn.o_proj.bias": ((D,), f),
            })
    return out


def small_float_tensors(cfg: GptOssConfig) -> list[str]:
    """Norms, biases, sinks and routers: cheap to scan for NaN/Inf at load (a few MB in the 20b)."""
    names = ["model.norm.weight"]
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        names += [p + "input_layernorm.weight", p + "post_attention_layernorm.weight",
                  p + "self_attn.sinks", p + "mlp.router.weight", p + "mlp.router.bias",
                  expert_tensor(i, "gate_up_proj_bias"), expert_tensor(i, "down_proj_bias")]
        if cfg.attention_bias:
            names += [p + f"self_attn.{n}_proj.bias" for n in "qkvo"]
    return names


# ----------------------------------------------------------------------------- MXFP4 block view

def mxfp4_packed_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """[..., blocks, 16] uint8 -> [..., blocks * 4] uint32: MLX's mxfp4 packing, the same bytes."""
    return (*shape[:-2], shape[-2] * 4)


def mxfp4_words(blocks: np.ndarray) -> np.ndarray:
    """A uint8 block array [..., blocks, 16] viewed (no copy) as uint32 words [..., blocks * 4]."""
    return blocks.reshape(*blocks.shape[:-2], -1).view(np.uint32)


# ----------------------------------------------------------------------------- files

def _unreadable(path: Path, exc: OSError) -> ModelError:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return unreadable(str(path))
    return ModelError(f"{path} could not be read ({exc.strerror or exc}); check the disk, or {_REDO}.")


def _allowed_roots(folder: Path) -> list[Path]:
    """Where a model folder's files may really live: the folder, and for a Hugging Face cache
    snapshot (…/snapshots/<revision>) the repo's blobs/ folder its files link into."""
    real = folder.resolve()
    roots = [real]
    if real.parent.name == "snapshots":
        roots.append(real.parent.parent / "blobs")
    return roots


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def model_file(folder: Path, name: str, what: str = "weights file") -> Path:
    """folder/name, checked to be a regular file inside the folder (ModelError otherwise)."""
    folder = Path(folder)
    parts = name.replace("\\", "/").split("/")
    if not name or os.path.isabs(name) or ".." in parts or ":" in parts[0]:
        raise ModelError(f"{INDEX_FILE} in {folder} names the {what} {name!r}, which is not inside the "
                         f"model folder; the index is damaged or was tampered with: {_REDO}.")
    path = folder / name
    if not os.path.lexists(path):
        raise ModelError(f"The {what} {name} is missing from {folder}; {_REDO}.")
    real = path.resolve()
    if not _inside(real, _allowed_roots(folder)):
        raise ModelError(f"The {what} {name} in {folder} is a link to {real}, outside the model folder; "
                         f"put the real file in the folder or {_REDO}.")
    try:
        mode = os.stat(real).st_mode
    except OSError as exc:
        raise _unreadable(path, exc) from None
    if not stat.S_ISREG(mode):
        raise ModelError(f"The {what} {name} in {folder} is not a regular file; {_REDO}.")
    return path


def read_weight_map(folder: Path) -> dict[str, str] | None:
    """The index's tensor -> shard map, or None when the folder has no index."""
    index = Path(folder) / INDEX_FILE
    if not os.path.lexists(index):
        return None
    damaged = ModelError(f"{INDEX_FILE} in {folder} is damaged (it must map each tensor name to a "
                         f"file name in 'weight_map'); {_REDO}.")
    path = model_file(folder, INDEX_FILE, "index file")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _unreadable(path, exc) from None
    except (UnicodeDecodeError, ValueError):
        raise damaged from None
    weight_map = raw.get("weight_map") if isinstance(raw, dict) else None
    if not isinstance(weight_map, dict) or not weight_map or not all(
            isinstance(v, str) for v in weight_map.values()):
        raise damaged
    return weight_map


def shard_paths(folder: str | Path) -> list[Path]:
    """The checkpoint's shard files (from the index, else model.safetensors, else *.safetensors)."""
    folder = Path(folder)
    weight_map = read_weight_map(folder)
    if weight_map is not None:
        names = sorted(set(weight_map.values()))
    elif os.path.lexists(folder / SINGLE_FILE):
        names = [SINGLE_FILE]
    else:
        try:
            names = sorted(p.name for p in folder.glob("*.safetensors"))
        except OSError as exc:
            raise _unreadable(folder, exc) from None
        if not names:
            raise ModelError(f"There are no .safetensors weights in {folder}; download the model first.")
    return [model_file(folder, n) for n in names]


# ----------------------------------------------------------------------------- headers

def _whole(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _entry(shard: Path, name, meta) -> tuple[str, tuple[int, ...], int, int]:
    """(dtype, shape, start, end) of one header entry, every field type-checked."""
    bad = f"{shard.name} is not a valid safetensors file: the entry of tensor {name!r}"
    if not isinstance(meta, dict):
        raise ModelError(f"{bad} is not an object; download the model again.")
    for key in ("dtype", "shape", "data_offsets"):
        if key not in meta:
            raise ModelError(f"{bad} has no '{key}'; download the model again.")
    dtype, shape, offsets = meta["dtype"], meta["shape"], meta["data_offsets"]
    if not isinstance(dtype, str):
        raise ModelError(f"{bad} has a 'dtype' that is not a string; download the model again.")
    if dtype not in DTYPE_BYTES:
        raise ModelError(f"{bad} has the dtype {dtype!r}, which is not a safetensors dtype; download the model again.")
    if not isinstance(shape, list) or not all(_whole(d) for d in shape):
        raise ModelError(f"{bad} has a 'shape' that is not a list of whole numbers; download the model again.")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_whole(o) for o in offsets)
            or offsets[0] > offsets[1]):
        raise ModelError(f"{bad} has 'data_offsets' that are not [start, end] byte offsets; "
                         "download the model again.")
    start, end = offsets
    need = math.prod(shape) * DTYPE_BYTES[dtype]
    if end - start != need:
        raise ModelError(f"The tensor {name} in {shard.name} spans {end - start} bytes, but {dtype} "
                         f"{list(shape)} needs {need}; download the model again.")
    return dtype, tuple(shape), start, end


def read_header(path: str | Path) -> dict[str, TensorInfo]:
    """Parse and check one shard's header: entries well-typed, byte ranges tiling the data exactly."""
    path = Path(path)
    invalid = f"{path.name} is not a valid safetensors file (bad header); download the model again."
    try:
        # O_NONBLOCK: should a FIFO get here after all, opening it must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ModelError(f"{path.name} is not a regular file; {_REDO}.")
            size = st.st_size
            raw_len = fh.read(8)
            if len(raw_len) < 8:
                raise ModelError(f"{path.name} is empty or truncated; download the model again.")
            (header_len,) = struct.unpack("<Q", raw_len)
            if header_len > min(MAX_HEADER, size - 8):
                raise ModelError(invalid)
            header = json.loads(fh.read(header_len))
    except OSError as exc:
        raise _unreadable(path, exc) from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ModelError(invalid) from None
    if not isinstance(header, dict):
        raise ModelError(f"{path.name} is not a valid safetensors file: its header is not a JSON object; "
                         "download the model again.")
    if not isinstance(header.get("__metadata__", {}), dict):
        raise ModelError(f"{path.name} is not a valid safetensors file: its '__metadata__' is not an object; "
                         "download the model again.")
    base, data_size = 8 + header_len, size - 8 - header_len
    entries = sorted(((*_entry(path, name, meta), name) for name, meta in header.items()
                      if name != "__metadata__"), key=lambda e: (e[2], e[3]))
    infos, covered, previous = {}, 0, None
    for dtype, shape, start, end, name in entries:
        if start < covered:
            raise ModelError(f"{path.name} is not a valid safetensors file: tensors {previous} and {name} "
                             "overlap; download the model again.")
        if start > covered:
            raise ModelError(f"{path.name} is not a valid safetensors file: a gap of {start - covered} bytes "
                             f"that no tensor owns lies before {name}; download the model again.")
        if end > data_size:
            raise ModelError(f"{path.name} is truncated: tensor {name} ends past the end of the file; "
                             "download the model again.")
        infos[name] = TensorInfo(name, shape, dtype, path, base + start, end - start)
        covered, previous = end, name
    if covered != data_size:
        raise ModelError(f"{path.name} has {data_size - covered} bytes after its last tensor, so it is not "
                         "the file its header describes; download the model again.")
    return infos


def read_headers(folder: str | Path) -> dict[str, TensorInfo]:
    """Every shard's header, checked against each other and against the index."""
    folder = Path(folder)
    tensors: dict[str, TensorInfo] = {}
    for path in shard_paths(folder):
        for name, info in read_header(path).items():
            if name in tensors:
                raise ModelError(f"The tensor {name} is in both {tensors[name].shard.name} and {path.name}; "
                                 f"the folder mixes files of two downloads: {_REDO}.")
            tensors[name] = info
    for name, shard in (read_weight_map(folder) or {}).items():
        info = tensors.get(name)
        if info is not None and info.shard.name != Path(shard).name:
            raise ModelError(f"{INDEX_FILE} says the tensor {name} is in {shard}, but it is in "
                             f"{info.shard.name}; the folder mixes files of two downloads: {_REDO}.")
    return tensors


def check_layout(tensors: dict[str, TensorInfo], cfg: GptOssConfig, folder: str | Path) -> None:
    """Every tensor the config implies is there, with its shape, and float tensors share one dtype."""
    expected = expected_tensors(cfg)
    for name, (shape, dtypes) in expected.items():
        info = tensors.get(name)
        if info is None:
            raise ModelError(f"The tensor {name} is missing from the weights in {folder}; "
                             "the download is incomplete or for another model.")
        if info.shape != shape:
            raise ModelError(f"The tensor {name} in {info.shard.name} has shape {list(info.shape)}, "
                             f"but config.json implies {list(shape)}; the files don't belong together.")
        if info.dtype not in dtypes:
            raise ModelError(f"The tensor {name} in {info.shard.name} is {info.dtype}, expected "
                             f"{' or '.join(dtypes)}; this is not the official checkpoint format.")
    # A BF16 tensor relabelled F16 keeps its size and passes every check above, then computes
    # garbage: the official layout has one float dtype, the one config.json names.
    floats = [tensors[n] for n, (_, dtypes) in expected.items() if dtypes == FLOAT_DTYPES]
    stated = CONFIG_DTYPE.get(cfg.torch_dtype or "")
    common = stated or Counter(t.dtype for t in floats).most_common(1)[0][0]
    if cfg.torch_dtype is not None and stated is None:  # e.g. "float64" over BF16 weights: which is right?
        raise ModelError(f"config.json says the weights are {cfg.torch_dtype}, but they are {common}, and this app "
                         f"reads {', '.join(CONFIG_DTYPE)} weights only; the file is damaged or was altered: {_REDO}.")
    for info in floats:
        if info.dtype != common:
            said = (f"config.json says the weights are {cfg.torch_dtype} ({common})" if stated
                    else f"the other float tensors are {common}")
            raise ModelError(f"The tensor {info.name} in {info.shard.name} is {info.dtype}, but {said}; "
                             f"the file is damaged or was altered: {_REDO}.")


def read_checkpoint(folder: str | Path, cfg: GptOssConfig) -> dict[str, TensorInfo]:
    """All headers of a model folder, fully checked against the format and the config."""
    tensors = read_headers(folder)
    check_layout(tensors, cfg, folder)
    return tensors


# Bits that are all ones in the exponent of a NaN or an infinity, per float dtype (as stored).
_NONFINITE_EXPONENT = {"BF16": (np.uint16, 0x7F80), "F16": (np.uint16, 0x7C00), "F32": (np.uint32, 0x7F800000)}


def check_finite(tensors: dict[str, TensorInfo], names: list[str]) -> None:
    """Refuse a checkpoint whose tensors `names` hold NaN or infinity (read from disk, no MLX).

    Meant for the small tensors (small_float_tensors): a NaN in a norm or a router silently turns
    every answer into garbage, and scanning them costs a few MB of reads.
    """
    for name in names:
        info = tensors[name]
        if info.dtype not in _NONFINITE_EXPONENT:
            continue
        bits_dtype, exponent = _NONFINITE_EXPONENT[info.dtype]
        bits = np.memmap(info.shard, dtype=bits_dtype, mode="r", offset=info.data_offset,
                         shape=(info.nbytes // np.dtype(bits_dtype).itemsize,))
        if np.any((bits & exponent) == exponent):
            raise ModelError(f"The tensor {name} in {info.shard.name} holds NaN or infinite values, so the "
                             f"model would answer garbage; the file is damaged: {_REDO}.")


def memmap(info: TensorInfo) -> np.memmap:
    """Zero-copy, read-only NumPy view of one tensor in its shard (BF16 comes as uint16 bits)."""
    return np.memmap(info.shard, dtype=NUMPY_DTYPE[info.dtype], mode="r",
                     offset=info.data_offset, shape=info.shape)
