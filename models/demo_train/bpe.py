"""A small byte-level BPE for the demo model, written as a Hugging Face tokenizer.json.

Same scheme as o200k_harmony, only smaller: the o200k pre-tokenizer regex, byte-level BPE over all
256 bytes (so any text encodes), merges learned from the synthetic corpus, and the harmony special
tokens at the same offsets from one another as in o200k_harmony (<|return|> is <|startoftext|> + 4,
...), padded with <|reserved_N|> tokens up to the vocabulary size. Merges never touch digits, so
every digit stays one token, which keeps column arithmetic learnable.

Token ids: 0..255 are the bytes in byte order; 256.. are merges in the order learned (a merge's
id is its rank, as tiktoken wants); the special tokens follow.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

import regex

# o200k_base's pre-tokenizer pattern, so the split is the same as the real model's.
from models.tokenizer_json import O200K_PATTERN  # noqa: E402

# Harmony special tokens and their offset from <|startoftext|> (o200k_harmony: 199998 + offset).
SPECIAL_OFFSETS = {
    "<|startoftext|>": 0,
    "<|endoftext|>": 1,
    "<|return|>": 4,
    "<|constrain|>": 5,
    "<|channel|>": 7,
    "<|start|>": 8,
    "<|end|>": 9,
    "<|message|>": 10,
    "<|call|>": 14,
    "<|endofprompt|>": 20,
}
SPECIAL_SPAN = 21  # offsets 0..20


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map used by byte-level tokenizer.json files."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(printable, map(chr, chars)))


def learn_merges(texts: list[str], num_merges: int, min_count: int = 2) -> list[tuple[bytes, bytes]]:
    """Classic BPE on the pre-tokenized corpus; pairs containing a digit are never merged."""
    pretokens = collections.Counter()
    for text in texts:
        pretokens.update(regex.findall(O200K_PATTERN, text))
    words = [([bytes([b]) for b in w.encode("utf-8")], c) for w, c in pretokens.items()]
    merges: list[tuple[bytes, bytes]] = []
    for _ in range(num_merges):
        pairs = collections.Counter()
        for parts, count in words:
            for a, b in zip(parts, parts[1:]):
                pairs[a, b] += count
        candidates = [(c, p) for p, c in pairs.items()
                      if c >= min_count and not any(ch in b"0123456789" for ch in p[0] + p[1])]
        if not candidates:
            break
        # Highest count wins; ties broken by the bytes so the result is deterministic.
        _, best = max(candidates, key=lambda cp: (cp[0], cp[1]))
        merges.append(best)
        joined = best[0] + best[1]
        for i, (parts, count) in enumerate(words):
            if len(parts) < 2:
                continue
            out, j = [], 0
            while j < len(parts):
                if j + 1 < len(parts) and parts[j] == best[0] and parts[j + 1] == best[1]:
                    out.append(joined)
                    j += 2
                else:
                    out.append(parts[j])
                    j += 1
            words[i] = (out, count)
    return merges


def build_tokenizer_json(merges: list[tuple[bytes, bytes]], vocab_size: int) -> dict:
    """The tokenizer.json dict: byte vocab, merges, harmony specials after them, reserved padding."""
    byte_char = bytes_to_unicode()

    def show(token: bytes) -> str:
        return "".join(byte_char[b] for b in token)

    vocab = {show(bytes([b])): b for b in range(256)}
    for a, b in merges:
        vocab[show(a + b)] = len(vocab)
    base = len(vocab)
    if base + SPECIAL_SPAN > vocab_size:
        raise ValueError(f"vocab_size {vocab_size} is too small for {base} tokens plus the specials")
    names = {offset: name for name, offset in SPECIAL_OFFSETS.items()}
    added = []
    for token_id in range(base, vocab_size):
        offset = token_id - base
        name = names.get(offset, f"<|reserved_{token_id}|>")
        added.append({"id": token_id, "content": name, "single_word": False, "lstrip": False,
                      "rstrip": False, "normalized": False, "special": True})
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": O200K_PATTERN}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
        ]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": False, "vocab": vocab,
                  "merges": [[show(a), show(b)] for a, b in merges]},
    }


def special_ids(tokenizer_json: dict) -> dict[str, int]:
    """Special token name -> id, read from added_tokens (never assumed)."""
    return {t["content"]: t["id"] for t in tokenizer_json["added_tokens"]}


def tiktoken_encoding(path: Path | str):
    """Our tokenizer.json as a tiktoken.Encoding (used to train and to check the engine's loader)."""
    import tiktoken

    data = json.loads(Path(path).read_text())
    char_byte = {c: b for b, c in bytes_to_unicode().items()}
    ranks = {bytes(char_byte[c] for c in tok): i for tok, i in data["model"]["vocab"].items()}
    pattern = data["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"]
    return tiktoken.Encoding(name="demo_harmony", pat_str=pattern, mergeable_ranks=ranks,
                             special_tokens=special_ids(data), explicit_n_vocab=len(ranks) + len(data["added_tokens"]))


def write_tokenizer(texts: list[str], out_dir: Path | str, vocab_size: int, num_merges: int) -> dict:
    """Learn merges from `texts`, write out_dir/tokenizer.json, return the dict."""
    merges = learn_merges(texts, num_merges)
    data = build_tokenizer_json(merges, vocab_size)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False, indent=1))
    return data
