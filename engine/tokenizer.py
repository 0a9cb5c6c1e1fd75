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

import regex
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


def _split_pattern(path: Path, pre_tokenizer) -> str:
    """The regex the file's pre-tokenizer splits text with (tiktoken applies it the same way)."""
    if not pre_tokenizer:
        return GPT2_PATTERN
    steps = pre_tokenizer.get("pretokenizers") if isinstance(pre_tokenizer, dict) and \
        pre_tokenizer.get("type") == "Sequence" else [pre_tokenizer]
    if not isinstance(steps, list) or not all(isinstance(step, dict) for step in steps):
        raise ModelError(f"{path} has a 'pre_tokenizer' that is not a list of pre-tokenizer objects; "
                         "download the model again.")
    for step in steps:
        pattern = step.get("pattern")
        if step.get("type") == "Split" and isinstance(pattern, dict) and isinstance(pattern.get("Regex"), str):
            return pattern["Regex"]
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


# Text that must come back unchanged from encode + decode: spaces, tabs and line ends (a
# pre-tokenizer regex that skips them loses them), accents, CJK, an emoji, digits, harmony names.
ROUND_TRIP_PROBE = ("Hello, world!  It's 12:30 - 4567 apples.\n\tcafé naïve Größe 日本語 🙂\r\n"
                    "<|start|>user<|message|>x<|end|>  \n")


def _to_latin1_table() -> dict[int, str]:
    """str.translate table: a byte-level character -> the latin-1 character of its byte, any other
    character below 256 -> U+FFFF (so .encode("latin-1") fails on it, as on anything above 255)."""
    table = {ord(ch): chr(b) for ch, b in byte_decoder().items()}
    for code in range(256):
        table.setdefault(code, "\uffff")
    return table


def _ranks(path: Path, vocab: dict, specials: dict[str, int]) -> dict[bytes, int]:
    """vocab -> tiktoken's mergeable ranks, checked to be whole: every id one token, every byte present,
    no id missing below the highest (a cut-down vocabulary makes tiktoken panic on the first reply)."""
    owner = {}  # id -> token text: every id must name one token (tiktoken panics otherwise)
    for text, i in specials.items():
        if owner.setdefault(i, text) != text:
            raise ModelError(f"{path} gives the id {i} to both {owner[i]!r} and {text!r}; download the model again.")
    to_latin1 = _to_latin1_table()
    ranks: dict[bytes, int] = {}
    try:
        for text, rank in vocab.items():
            if not isinstance(rank, int) or isinstance(rank, bool) or rank < 0:
                raise ModelError(f"{path} gives the token {text[:20]!r} the id {rank!r}, not a token id; "
                                 "download the model again.")
            if text in specials:
                continue  # some files list specials in the vocab too; they stay special only
            if owner.setdefault(rank, text) != text:
                raise ModelError(f"{path} gives the id {rank} to both {owner[rank][:20]!r} and {text[:20]!r}; "
                                 "download the model again.")
            ranks[text.translate(to_latin1).encode("latin-1")] = rank  # each character is one byte
    except UnicodeEncodeError as e:
        raise ModelError(f"{path} is not a byte-level vocabulary (unexpected character {e.object[e.start]!r} "
                         f"in the token {e.object[:20]!r}); download the model again.") from None
    except AttributeError:  # a token that is not a string (JSON keys always are; kept for safety)
        raise ModelError(f"{path} is not a byte-level vocabulary; download the model again.") from None
    missing = [b for b in range(256) if bytes([b]) not in ranks]
    if missing:
        raise ModelError(f"{path} has a cut-down vocabulary: it lacks {len(missing)} of the 256 single-byte tokens "
                         f"(the first is byte {missing[0]}), so some text can't be encoded; "
                         "download the model again.")
    top = max(ranks.values())
    hole = next((i for i in range(top) if i not in owner), None) if len(ranks) != top + 1 else None
    if hole is not None:
        raise ModelError(f"{path} has a cut-down vocabulary: no token has the id {hole}, below the highest "
                         f"id {top}; download the model again.")
    return ranks


def read_tokenizer(folder: str | Path, vocab_size: int | None = None) -> tuple[dict[bytes, int], dict[str, int], str]:
    """The checks that need no tiktoken (the app's folder check runs them): the file's shape, a whole
    vocabulary, the harmony specials, and (given the model's vocab_size) every id inside it.

    Returns (mergeable ranks, special tokens, split regex); raises ModelError with one sentence.
    """
    path = Path(folder) / "tokenizer.json"
    data = _read_json(path)
    model = data.get("model")
    if not isinstance(model, dict) or model.get("type") != "BPE" or not isinstance(model.get("vocab"), dict):
        raise ModelError(f"{path} is not a byte-level BPE tokenizer; this app runs gpt-oss models only.")
    specials = _specials(path, data.get("added_tokens", []))
    ranks = _ranks(path, model["vocab"], specials)
    top = max(max(ranks.values()), max(specials.values()))
    if vocab_size is not None and top >= vocab_size:
        raise ModelError(f"{path} has token ids up to {top}, but the model in {Path(folder).name} knows only "
                         f"{vocab_size} tokens ('vocab_size' in config.json), so they don't belong together; "
                         "download the model again.")
    pattern = _split_pattern(path, data.get("pre_tokenizer"))
    try:  # tiktoken encodes only what the regex matches: the same regex here shows what it would drop
        kept = "".join(m.group(0) for m in regex.finditer(pattern, ROUND_TRIP_PROBE, timeout=1.0))
    except (regex.error, TypeError, ValueError, TimeoutError):
        kept = ROUND_TRIP_PROBE  # a syntax only tiktoken's engine reads: load_tokenizer's round trip decides
    _check_round_trip(path, kept)
    return ranks, specials, pattern


def _check_round_trip(path: Path, back: str) -> None:
    if back != ROUND_TRIP_PROBE:
        at = next((i for i, (a, b) in enumerate(zip(ROUND_TRIP_PROBE, back)) if a != b),
                  min(len(back), len(ROUND_TRIP_PROBE)))
        raise ModelError(f"{path} does not give text back unchanged (a test text encoded and decoded changes at "
                         f"character {at}, {ROUND_TRIP_PROBE[at:at + 1]!r}: its pre-tokenizer drops text); "
                         "download the model again.")


def load_tokenizer(folder: str | Path, vocab_size: int | None = None) -> tiktoken.Encoding:
    """Build the tiktoken Encoding described by `folder/tokenizer.json` (no network needed).

    Raises ModelError with one sentence when the file is missing, malformed, lacks the harmony
    tokens, has a cut-down vocabulary, or can't write the probe text and read it back unchanged.
    """
    path = Path(folder) / "tokenizer.json"
    ranks, specials, pattern = read_tokenizer(folder, vocab_size)
    name = "o200k_harmony" if len(ranks) == O200K_SIZE else f"{Path(folder).name}_bpe"
    try:
        enc = tiktoken.Encoding(name=name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=specials)
        back = enc.decode(enc.encode_ordinary(ROUND_TRIP_PROBE))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # tiktoken rejects a bad regex or ids out of range; its Rust panics are BaseException
        raise ModelError(f"{path} can't be used as a tokenizer ({str(e)[:80]}); download the model again.") from None
    _check_round_trip(path, back)
    return enc


def special_id(enc: tiktoken.Encoding, name: str) -> int:
    """Id of a special token such as "<|start|>" (raises ModelError when the tokenizer lacks it)."""
    try:
        return enc.encode_single_token(name)
    except KeyError:
        raise ModelError(f"The tokenizer has no {name} token, so it can't speak harmony; is this a gpt-oss model?") from None


def encode_text(enc: tiktoken.Encoding, text: str) -> list[int]:
    """Ids of `text` as plain text: special-token names inside it are never control tokens."""
    return enc.encode_ordinary(text)
