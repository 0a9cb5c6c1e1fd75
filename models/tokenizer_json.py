"""Write a real o200k_harmony `tokenizer.json` into a model folder, offline.

The gpt-oss tokenizer is o200k_base (199,998 byte-level BPE tokens, id = rank) plus the harmony
special tokens at ids 199998..201087. The genuine o200k_base.tiktoken ships (gzipped) inside the
PyPI package `bpe-openai`, so tests and tiny checkpoints can carry the real vocabulary without a
download. The file follows the Hugging Face layout the official checkpoint uses: a BPE model whose
vocab maps GPT-2 "byte-level" strings to ids, merges derived from the ranks, a regex Split
pre-tokenizer and the special tokens in `added_tokens`.

    python -m models.tokenizer_json MODEL_FOLDER
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import json
import os
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

from engine.tokenizer import byte_decoder

O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"

# tiktoken's o200k pre-tokenizer regex (identical in o200k_harmony).
O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

# The named harmony tokens; every other id from 199998 to 201087 is <|reserved_N|>.
HARMONY_SPECIALS = {
    199998: "<|startoftext|>",
    199999: "<|endoftext|>",
    200002: "<|return|>",
    200003: "<|constrain|>",
    200005: "<|channel|>",
    200006: "<|start|>",
    200007: "<|end|>",
    200008: "<|message|>",
    200012: "<|call|>",
    200018: "<|endofprompt|>",
}
FIRST_SPECIAL, VOCAB_SIZE = 199998, 201088


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character map used by byte-level BPE vocabularies."""
    return {b: c for c, b in byte_decoder().items()}


@lru_cache(maxsize=1)
def o200k_base_file() -> bytes:
    """The genuine o200k_base.tiktoken shipped inside the installed `bpe-openai` (hash-checked)."""
    # find_spec locates the package without importing it (its import loads a 74 MB extension).
    spec = importlib.util.find_spec("bpe_openai")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The o200k vocabulary comes from the PyPI package bpe-openai: pip install bpe-openai.")
    gz = Path(list(spec.submodule_search_locations)[0]) / "data" / "o200k_base.tiktoken.gz"
    raw = gzip.decompress(gz.read_bytes())
    if hashlib.sha256(raw).hexdigest() != O200K_SHA256:
        raise RuntimeError("bpe-openai's o200k_base.tiktoken is not the genuine file (sha256 mismatch).")
    return raw


@lru_cache(maxsize=1)
def o200k_base_ranks() -> dict[bytes, int]:
    """The genuine o200k_base ranks: token bytes -> rank (= id)."""
    raw = o200k_base_file()
    ranks = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def write_o200k_base_tiktoken(folder: str | Path) -> Path:
    """Write o200k_base.tiktoken into `folder` (what openai-harmony/tiktoken read offline)."""
    out = Path(folder) / "o200k_base.tiktoken"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(o200k_base_file())
    tmp.replace(out)
    return out


def _merges(ranks: dict[bytes, int], to_str) -> list[list[str]]:
    """Pairs (left, right) whose concatenation is a token, ordered by the result's rank.

    Within one token, splits with lower-ranked parts come first: the order the BPE would
    reach them. This is how Hugging Face converts tiktoken files.
    """
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        splits = [
            (ranks[token[:i]], ranks[token[i:]], token[:i], token[i:])
            for i in range(1, len(token))
            if token[:i] in ranks and token[i:] in ranks
        ]
        merges.extend([to_str(left), to_str(right)] for _, _, left, right in sorted(splits))
    return merges


def harmony_special_tokens() -> dict[int, str]:
    """id -> content for every harmony special token (named ones and reserved ones)."""
    return {i: HARMONY_SPECIALS.get(i, f"<|reserved_{i}|>") for i in range(FIRST_SPECIAL, VOCAB_SIZE)}


def tokenizer_json_dict() -> dict:
    """The whole tokenizer.json content as a dict."""
    byte_map = bytes_to_unicode()

    def to_str(b: bytes) -> str:
        return "".join(byte_map[x] for x in b)

    ranks = o200k_base_ranks()
    added = [
        {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for i, content in harmony_special_tokens().items()
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": O200K_PATTERN}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
            ],
        },
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
            "vocab": {to_str(token): rank for token, rank in ranks.items()},
            "merges": _merges(ranks, to_str),
        },
    }


def small_harmony_tokenizer_dict(first_special: int = 256) -> dict:
    """A whole byte-level tokenizer.json as a dict: the 256 bytes (no merges) and the named harmony
    specials from id `first_special` on; the smallest tokenizer the engine and the app's folder check
    accept (for tiny test checkpoints whose vocab_size is above first_special + 10)."""
    byte_map = bytes_to_unicode()
    return {
        "model": {"type": "BPE", "vocab": {byte_map[b]: b for b in range(256)}, "merges": []},
        "added_tokens": [{"id": first_special + k, "content": name, "special": True}
                         for k, name in enumerate(HARMONY_SPECIALS.values())],
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
    }


def write_o200k_harmony_tokenizer(folder: str | Path) -> Path:
    """Write `folder/tokenizer.json` (o200k_harmony, real ids); returns its path."""
    out = Path(folder) / "tokenizer.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".json.{os.getpid()}.tmp")  # several test processes may write at once
    tmp.write_text(json.dumps(tokenizer_json_dict(), ensure_ascii=False), encoding="utf-8")
    tmp.replace(out)  # never leave a half-written tokenizer.json behind
    return out


def shared_o200k_harmony_folder() -> Path:
    """A folder holding tokenizer.json and o200k_base.tiktoken, written once per machine.

    For tests and benchmarks: writing the file takes seconds, so every test file reuses one copy
    (in the system temp folder, keyed by the vocabulary hash).
    """
    folder = Path(tempfile.gettempdir()) / f"gpt-oss-chat-o200k_harmony-{O200K_SHA256[:12]}"
    if not (folder / "tokenizer.json").is_file() or not (folder / "o200k_base.tiktoken").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        write_o200k_base_tiktoken(folder)
        write_o200k_harmony_tokenizer(folder)
    return folder


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m models.tokenizer_json MODEL_FOLDER")
    print(write_o200k_harmony_tokenizer(sys.argv[1]))
