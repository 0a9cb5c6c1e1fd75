"""Conversations' KV caches on disk, so a long chat is never prefilled twice, even after a restart.

    store = PromptStore(folder, model_folder, budget_bytes=4 * 10**9)   # the caller's folder
    PromptCache(model.make_cache, store=store)                          # engine/prompt_cache.py

One safetensors file per conversation (a well-kept format: a JSON header, then raw tensors):
- `tokens` (int32, the ids it holds) and `positions` (int32, where it can resume: its snapshots);
- each full-attention layer's keys and values up to the last position, 8-bit (codes, scales and
  biases: the engine's KV quantization; a cache already 8-bit is written as it is, bit for bit);
- each sliding layer's window at every position, as it is (bf16 as uint16: NumPy has no bf16).
Its metadata ties it to the model (a fingerprint of config.json and the weights' headers) and holds
a CRC-32 of every tensor's bytes. A file that doesn't match the model, is truncated or corrupt is
ignored and deleted with a log line: never a crash, never a wrong answer.

Writes happen on the store's own thread (the engine thread only hands over evaluated arrays as
zero-copy NumPy views): a temporary file, fsync, then an atomic rename, so a crash or kill -9
leaves either the old state or the whole new file; leftover temporary files are deleted at start.
The folder is kept under `budget_bytes`, least recently used files first (a load touches its file).
Files live in a subfolder per model folder path, so two models don't delete each other's files.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FORMAT = "gpt-oss-chat prompt cache 1"
DEFAULT_BUDGET = 4 * 10**9  # bytes on disk (Settings may change it)
KEEP_POSITIONS = 4  # positions stored per file besides the last (each costs the sliding windows)
MIN_GAIN = 32  # a file is loaded only when it saves at least this many tokens of prefill
WRITE_BLOCK = 1 << 20


SAMPLES = 16  # blocks of weight bytes hashed per file: a fine-tune with the same layout differs there


def model_fingerprint(model_folder: str | Path) -> str:
    """sha256 of config.json and of every safetensors file's name, size, modification time, header
    and SAMPLES blocks of its bytes: a replaced or re-downloaded model gets a new one (same shapes or
    not), without reading gigabytes of weights."""
    folder = Path(model_folder)
    h = hashlib.sha256()
    h.update((folder / "config.json").read_bytes())
    for path in sorted(folder.glob("*.safetensors")):
        st = path.stat()
        with open(path, "rb") as fh:
            head = fh.read(8)
            size = int.from_bytes(head, "little") if len(head) == 8 else 0
            h.update(f"{path.name}:{st.st_size}:{st.st_mtime_ns}:".encode() + fh.read(min(size, 100 << 20)))
            for i in range(SAMPLES):
                fh.seek(st.st_size * i // SAMPLES)
                h.update(fh.read(4096))
    return h.hexdigest()


def _crc(arrays: dict[str, np.ndarray]) -> str:
    crc = 0
    for name in sorted(arrays):
        crc = zlib.crc32(np.ascontiguousarray(arrays[name]).view(np.uint8).reshape(-1), crc)
    return f"{crc:08x}"


@dataclass
class _Entry:
    path: Path
    tokens: list[int]
    positions: list[int]
    size: int


class PromptStore:
    """The files of one model in `folder` (see the module docstring)."""

    def __init__(self, folder: str | Path, model_folder: str | Path, budget_bytes: int = DEFAULT_BUDGET,
                 fingerprint: str | None = None):
        self.root = Path(folder)
        key = hashlib.sha256(str(Path(model_folder).resolve()).encode()).hexdigest()[:16]
        self.dir = self.root / key
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fingerprint = fingerprint or model_fingerprint(model_folder)
        self.budget_bytes = budget_bytes
        self.entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()  # entries: written by the writer, read by the engine thread
        self._jobs: queue.Queue = queue.Queue()
        self._scan()
        self._writer = threading.Thread(target=self._write_loop, name="prompt-store", daemon=True)
        self._writer.start()

    # ------------------------------------------------------------------ index

    def _drop(self, path: Path, why: str) -> None:
        log.warning("prompt cache: deleting %s (%s)", path.name, why)
        path.unlink(missing_ok=True)

    def _scan(self) -> None:
        for path in self.root.glob("*/*.tmp"):
            self._drop(path, "left over from an interrupted write")
        for path in sorted(self.dir.glob("*.safetensors")):
            entry = self._read_index(path)
            if entry is not None:
                self.entries[path.stem] = entry

    def _read_index(self, path: Path) -> _Entry | None:
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="numpy") as f:
                meta = f.metadata() or {}
                if meta.get("format") != FORMAT:
                    return self._drop(path, "not a prompt cache file of this version")
                if meta.get("fingerprint") != self.fingerprint:
                    return self._drop(path, "written for another model or an earlier copy of this one")
                tokens, positions = f.get_tensor("tokens"), f.get_tensor("positions")
        except Exception as e:  # truncated header, bad JSON, offsets past the end: all the same to us
            return self._drop(path, f"unreadable: {type(e).__name__}")
        return _Entry(path, tokens.tolist(), positions.tolist(), path.stat().st_size)

    # ------------------------------------------------------------------ loading (engine thread)

    def load_longer(self, ids: list[int], than: int, make_cache):
        """The conversation of the file that resumes the most of ids[:-1], if that beats `than`
        (what memory offers) by MIN_GAIN tokens; None otherwise. A bad file is deleted, then None."""
        from engine.prompt_cache import common_prefix

        target = len(ids) - 1
        best, reach = None, than + MIN_GAIN - 1
        with self._lock:
            entries = list(self.entries.values())
        for e in entries:
            common = min(common_prefix(e.tokens, ids), target)
            n = max((p for p in e.positions if p <= common), default=0)
            if n > reach:
                best, reach = e, n
        if best is None:
            return None
        conv = self._load(best, make_cache)
        if conv is not None:
            os.utime(best.path)  # recently used: last to go when the folder is over budget
        return conv

    def _load(self, entry: _Entry, make_cache):
        from safetensors.numpy import load_file

        try:
            arrays = load_file(str(entry.path))
            from safetensors import safe_open

            with safe_open(str(entry.path), framework="numpy") as f:
                meta = f.metadata() or {}
            if meta.get("fingerprint") != self.fingerprint or meta.get("crc32") != _crc(arrays):
                raise ValueError("its checksum or model does not match")
            conv = _conversation(arrays, meta, make_cache)
        except Exception as e:
            with self._lock:
                self.entries.pop(entry.path.stem, None)
            self._drop(entry.path, f"could not be loaded: {e}")
            return None
        conv.saved_key = entry.path.stem
        log.info("prompt cache: resumed %d tokens from %s", conv.cache.offset, entry.path.name)
        return conv

    # ------------------------------------------------------------------ saving

    def save(self, conv) -> None:
        """Hand `conv` to the writer (engine thread: its arrays are evaluated and viewed, not copied)."""
        arrays, meta = _arrays(conv, self.fingerprint)
        if arrays is None:
            return
        key = hashlib.sha256(self.fingerprint.encode() + arrays["tokens"].tobytes()).hexdigest()[:32]
        if getattr(conv, "saved_key", None) == key:
            return  # loaded from that very file and unchanged since
        conv.saved_key = key
        self._jobs.put((key, arrays, meta))

    def wait(self) -> None:
        """Until every handed-over conversation is on disk."""
        self._jobs.join()

    def close(self) -> None:
        self._jobs.put(None)
        self._writer.join(timeout=60)

    def clear(self) -> None:
        """Delete every cached conversation of every model in the folder (Settings' button)."""
        self.wait()
        with self._lock:
            self.entries.clear()
            for path in self.root.glob("*/*.safetensors"):
                path.unlink(missing_ok=True)

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.glob("*/*.safetensors"))

    # ------------------------------------------------------------------ the writer thread

    def _write_loop(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                self._write(*job)
            except Exception:  # a full disk or a vanished folder must not end the writer
                log.exception("prompt cache: a conversation could not be written")
            finally:
                self._jobs.task_done()

    def _write(self, key: str, arrays: dict, meta: dict) -> None:
        from safetensors.numpy import save

        arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
        meta = dict(meta, crc32=_crc(arrays))
        blob = save(arrays, metadata=meta)
        final = self.dir / f"{key}.safetensors"
        tmp = self.dir / f"{key}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            for i in range(0, len(blob), WRITE_BLOCK):
                fh.write(blob[i:i + WRITE_BLOCK])
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)  # atomic: readers see the old state or the whole file
        tokens = arrays["tokens"].tolist()
        with self._lock:
            for stem, e in list(self.entries.items()):  # a shorter copy of this conversation adds nothing
                if stem != key and len(e.tokens) < len(tokens) and tokens[:len(e.tokens)] == e.tokens \
                        and max(e.positions, default=0) in arrays["positions"].tolist():
                    del self.entries[stem]
                    e.path.unlink(missing_ok=True)
            self.entries[key] = _Entry(final, tokens, arrays["positions"].tolist(), final.stat().st_size)
        self._keep_budget(keep=final)

    def _keep_budget(self, keep: Path) -> None:
        files = []
        for p in self.root.glob("*/*.safetensors"):
            try:
                st = p.stat()
            except OSError:
                continue
            files.append((st.st_mtime, st.st_size, p))
        total = sum(size for _, size, _ in files)
        for _, size, p in sorted(files, key=lambda f: (f[2] == keep, f[0])):
            if total <= self.budget_bytes:
                break
            log.info("prompt cache: over the disk budget, deleting %s", p.name)
            with self._lock:
                self.entries.pop(p.stem, None)
            p.unlink(missing_ok=True)
            total -= size


# ---------------------------------------------------------------------- arrays <-> conversation

def _to_numpy(a) -> np.ndarray:
    import mlx.core as mx

    return np.asarray(a.view(mx.uint16) if a.dtype == mx.bfloat16 else a)


def _arrays(conv, fingerprint: str):
    """The tensors and metadata of one file (engine thread). Full-attention layers up to the last
    stored position, 8-bit; sliding windows at each stored position."""
    import mlx.core as mx

    from engine.cache import FullCache, QuantizedFullCache, SlidingCache

    cache = conv.cache
    snaps = [(s.position, s.state) for s in conv.snapshots][-KEEP_POSITIONS:]
    if cache.offset == len(conv.held) and (not snaps or snaps[-1][0] < cache.offset):
        snaps.append((cache.offset, cache.snapshot()))  # where it stands now (after a tool call)
    snaps = [(p, s) for p, s in snaps if p > 0]
    if not snaps or not hasattr(cache, "layers"):
        return None, None
    last = snaps[-1][0]
    out: dict = {"tokens": mx.array(conv.held[:last], dtype=mx.int32),
                 "positions": mx.array([p for p, _ in snaps], dtype=mx.int32)}
    kinds, dtype, group = [], "float32", 0
    for i, layer in enumerate(cache.layers):
        if isinstance(layer, SlidingCache):
            kinds.append("s")
            for j, (_, snap) in enumerate(snaps):
                _, k, v = snap.layers[i]
                if k is not None:
                    out[f"{i}.{j}.k"], out[f"{i}.{j}.v"] = k, v
                    dtype = str(k.dtype).split(".")[-1]
            continue
        n = last - layer.start
        if isinstance(layer, QuantizedFullCache):
            kinds.append("q")
            group = layer.group_size
            parts = [a[:, :, :n] for a in layer.stored]
        elif isinstance(layer, FullCache):
            kinds.append("f")
            group = 64 if layer.keys.shape[-1] % 64 == 0 else layer.keys.shape[-1]
            parts = [*mx.quantize(layer.keys[:, :, :n], group_size=group, bits=8),
                     *mx.quantize(layer.values[:, :, :n], group_size=group, bits=8)]
        else:
            return None, None
        for name, a in zip(("kc", "ks", "kb", "vc", "vs", "vb"), parts):
            out[f"{i}.{name}"] = mx.contiguous(a)
    mx.eval(list(out.values()))
    meta = {"format": FORMAT, "fingerprint": fingerprint, "layers": "".join(kinds), "group": str(group),
            "sliding_dtype": dtype, "full_dtype": str(next((a.dtype for k, a in out.items() if k.endswith(".ks")),
                                                           mx.float32)).split(".")[-1]}
    return {k: _to_numpy(a) for k, a in out.items()}, meta


def _from_numpy(a: np.ndarray, dtype: str):
    import mlx.core as mx

    x = mx.array(a)
    return x.view(mx.bfloat16) if dtype == "bfloat16" and a.dtype == np.uint16 else x


def _conversation(arrays: dict, meta: dict, make_cache):
    """A Conversation at the file's last position, with a snapshot at each stored position."""
    import mlx.core as mx

    from engine.cache import CacheSnapshot, FullCache, QuantizedFullCache, SlidingCache, _append
    from engine.prompt_cache import Conversation, Snapshot

    cache = make_cache()
    kinds = meta["layers"]
    if len(kinds) != len(cache.layers):
        raise ValueError("its layers are not the model's")
    tokens = arrays["tokens"].tolist()
    positions = arrays["positions"].tolist()
    last, group = positions[-1], int(meta["group"])
    if len(tokens) != last or positions != sorted(positions):
        raise ValueError("its positions are inconsistent")
    per_snap: list[list] = [[] for _ in positions]
    for i, (kind, layer) in enumerate(zip(kinds, cache.layers)):
        if kind == "s":
            if not isinstance(layer, SlidingCache):
                raise ValueError("its layers are not the model's")
            for j, p in enumerate(positions):
                k, v = arrays.get(f"{i}.{j}.k"), arrays.get(f"{i}.{j}.v")
                if k is None:
                    per_snap[j].append((p, None, None))
                else:
                    per_snap[j].append((p, _from_numpy(k, meta["sliding_dtype"]),
                                        _from_numpy(v, meta["sliding_dtype"])))
            continue
        parts = [_from_numpy(arrays[f"{i}.{n}"], meta["full_dtype"]) for n in ("kc", "ks", "kb", "vc", "vs", "vb")]
        if parts[0].shape[2] != last or layer.start != 0:
            raise ValueError("its keys don't cover its tokens")
        if isinstance(layer, QuantizedFullCache):
            if layer.group_size != group or layer.bits != 8:
                raise ValueError("its quantization is not the model's")
            layer.stored = _append((None,) * 6, tuple(parts), 0)
        elif isinstance(layer, FullCache):
            dt = getattr(mx, meta["sliding_dtype"])  # the model dtype (the windows are kept in it)
            k = mx.dequantize(*parts[:3], group_size=group, bits=8).astype(dt)
            v = mx.dequantize(*parts[3:], group_size=group, bits=8).astype(dt)
            layer.keys, layer.values = _append((None, None), (k, v), 0)
        else:
            raise ValueError("its layers are not the model's")
        layer.offset = last
        for j, p in enumerate(positions):
            per_snap[j].append(p)
    snapshots = [Snapshot(p, CacheSnapshot(p, tuple(layers))) for p, layers in zip(positions, per_snap)]
    cache.restore(snapshots[-1].state)
    mx.eval(cache.state())
    return Conversation(cache, tokens, snapshots, from_disk=True)


__all__ = ["DEFAULT_BUDGET", "PromptStore", "model_fingerprint"]
