"""The model's tokenizer as a `tiktoken.Encoding`, built from the model folder's tokenizer.json.

gpt-oss ships a Hugging Face byte-level BPE (o200k_harmony): the vocab maps GPT-2 "byte-level"
strings to ids, and since tiktoken's ranks ARE the ids, mapping each string back to its bytes
gives tiktoken's mergeable ranks directly. Special tokens (harmony's <|start|>, <|end|>, ...) come
from `added_tokens`, so their ids are whatever the file says: nothing here hard-codes an id.

Text a user typed must be encoded with `encode_text` (or tiktoken's `encode_ordinary`): then
"<|start|>" in a message is ordinary text, never a control token (a prompt-injection guard).
"""

from __future__ import annotations

import json
from pathlib import Path

import tiktoken

from engine.config import read_regular_text
from engine.errors import ModelError, unreadable

# GPT-2's pre-tokenizer regex: what a plain ByteLevel pre-tokenizer (use_regex=true) splits with.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
O200K_SIZE = 199998  # o200k_base's ordinary tokens; with it the encoding is named o200k_harmony


def byte_decoder() -> dict[str, int]:
    """GPT-2's printable character -> byte map (inverse of the one byte-level vocabularies use)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars, extra = list(printable), 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def _split_pattern(pre_tokenizer: dict | None) -> str:
    """The regex the file's pre-tokenizer splits text with (tiktoken applies it the same way)."""
    if not pre_tokenizer:
        return GPT2_PATTERN
    if pre_tokenizer.get("type") == "Sequence":
        for sub in pre_tokenizer.get("pretokenizers", []):
            if sub.get("type") == "Split" and "Regex" in (sub.get("pattern") or {}):
                return sub["pattern"]["Regex"]
    if pre_tokenizer.get("type") == "Split" and "Regex" in (pre_tokenizer.get("pattern") or {}):
        return pre_tokenizer["pattern"]["Regex"]
    return GPT2_PATTERN


# The special tokens the harmony format (engine/harmony.py, engine/session.py) cannot do without.
HARMONY_REQUIRED = ("<|start|>", "<|end|>", "<|message|>", "<|channel|>", "<|return|>", "<|call|>")


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise ModelError(
            f"The model folder {path.parent} has no tokenizer.json; download the model again "
            "or pick the folder that holds config.json and tokenizer.json."
        )
    try:
        data = json.loads(read_regular_text(path))
    except PermissionError:
        raise unreadable(str(path)) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ModelError(f"{path} is damaged ({e.__class__.__name__}); download the model again.") from e
    if not isinstance(data, dict):
        raise ModelError(f"{path} does not hold a JSON object, so it is not a tokenizer; download the model again.")
    return data


def _specials(path: Path, added) -> dict[str, int]:
    """added_tokens -> {content: id}; each entry must be an object with a string content and an id."""
    if not isinstance(added, list):
        raise ModelError(f"{path} has an 'added_tokens' that is not a list; download the model again.")
    specials = {}
    for t in added:
        if (not isinstance(t, dict) or not isinstance(t.get("content"), str)
                or not isinstance(t.get("id"), int) or isinstance(t.get("id"), bool) or t["id"] < 0):
            raise ModelError(f"{path} has a special token without a name or a numeric id ({str(t)[:40]}); "
                             "download the model again.")
        specials[t["content"]] = t["id"]
    missing = [n for n in HARMONY_REQUIRED if n not in specials]
    if missing:
        raise ModelError(f"{path} has no {missing[0]} token, so it can't speak harmony; "
                         "choose a gpt-oss model folder or download the model again.")
    return specials


def load_tokenizer(folder: str | Path) -> tiktoken.Encoding:
    """Build the tiktoken Encoding described by `folder/tokenizer.json` (no network needed).

    Raises ModelError with one sentence when the file is missing, malformed or lacks the harmony tokens.
    """
    path = Path(folder) / "tokenizer.json"
    data = _read_json(path)
    model = data.get("model")
    if not isinstance(model, dict) or model.get("type") != "BPE" or not isinstance(model.get("vocab"), dict):
        raise ModelError(f"{path} is not a byte-level BPE tokenizer; this app runs gpt-oss models only.")

    specials = _specials(path, data.get("added_tokens", []))
    owner = {}  # id -> token text: every id must name one token (tiktoken panics otherwise)
    for text, i in specials.items():
        if owner.setdefault(i, text) != text:
            raise ModelError(f"{path} gives the id {i} to both {owner[i]!r} and {text!r}; download the model again.")
    to_byte = byte_decoder()
    ranks: dict[bytes, int] = {}
    try:
        for text, rank in model["vocab"].items():
            if not isinstance(rank, int) or isinstance(rank, bool) or rank < 0:
                raise ModelError(f"{path} gives the token {text[:20]!r} the id {rank!r}, not a token id; "
                                 "download the model again.")
            if text in specials:
                continue  # some files list specials in the vocab too; they stay special only
            if owner.setdefault(rank, text) != text:
                raise ModelError(f"{path} gives the id {rank} to both {owner[rank][:20]!r} and {text[:20]!r}; "
                                 "download the model again.")
            ranks[bytes(to_byte[ch] for ch in text)] = rank
    except KeyError as e:
        raise ModelError(f"{path} is not a byte-level vocabulary (unexpected character {e}); download the model again.") from e

    name = "o200k_harmony" if len(ranks) == O200K_SIZE else f"{Path(folder).name}_bpe"
    try:
        return tiktoken.Encoding(
            name=name,
            pat_str=_split_pattern(data.get("pre_tokenizer")),
            mergeable_ranks=ranks,
            special_tokens=specials,
        )
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # tiktoken rejects a bad regex or ids out of range; its Rust panics are BaseException
        raise ModelError(f"{path} can't be used as a tokenizer ({str(e)[:80]}); download the model again.") from None


def special_id(enc: tiktoken.Encoding, name: str) -> int:
    """Id of a special token such as "<|start|>" (raises ModelError when the tokenizer lacks it)."""
    try:
        return enc.encode_single_token(name)
    except KeyError:
        raise ModelError(f"The tokenizer has no {name} token, so it can't speak harmony; is this a gpt-oss model?") from None


def encode_text(enc: tiktoken.Encoding, text: str) -> list[int]:
    """Ids of `text` as plain text: special-token names inside it are never control tokens."""
    return enc.encode_ordinary(text)
