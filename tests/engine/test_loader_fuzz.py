"""Fuzz the model folder: random mutations of a tiny checkpoint's config, safetensors headers,
index, tokenizer and files. Every entry point (config, planner, loader, tokenizer, the app's folder
check) either succeeds or says what is wrong in one sentence (a ModelError); nothing else may
escape, nothing may hang, and the app's check never passes a folder the loader then refuses."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.model_manager import check_folder
from engine import load_model
from engine.config import load_config
from engine.errors import ModelError
from engine.generate import generate_greedy
from engine.generation_config import prefers_greedy
from engine.memory import plan
from engine.tokenizer import load_tokenizer
from models.tiny import write_tiny_checkpoint

INDEX = "model.safetensors.index.json"
HARMONY = ["<|start|>", "<|end|>", "<|message|>", "<|channel|>", "<|return|>", "<|call|>"]

ANY_TEXT = "Grüße, 世界! 🙂\n\tline two  <|start|>"
# Values that have broken parsers before: wrong types, zero, negatives, huge, non-finite, empty.
ODD = st.sampled_from([0, -1, 1, 2, 3, 31, 64, 4.0, 2.5, 1e308, -1e308, 10 ** 12, 2 ** 63, "96", "", "x",
                       None, True, False, [], {}, [1, 2], [0, 0], [-1, 5], {"a": 1}, float("nan"),
                       float("inf"), "../x.safetensors", "/dev/zero", "BF16", "F16", "U8", "I8", "F32"])


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    folder = write_tiny_checkpoint(tmp_path_factory.mktemp("fuzz") / "m", layers=2, experts=4, hidden=64,
                                   vocab=272, shard_bytes=24 << 10)
    from models.tokenizer_json import bytes_to_unicode
    byte_map = bytes_to_unicode()
    (folder / "tokenizer.json").write_text(json.dumps({
        "model": {"type": "BPE", "vocab": {byte_map[b]: b for b in range(256)}, "merges": []},  # every byte
        "added_tokens": [{"id": 256 + k, "content": n, "special": True} for k, n in enumerate(HARMONY)],
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}}))
    assert len(list(folder.glob("*.safetensors"))) >= 3
    return folder


# ----------------------------------------------------------------------------- mutations

def shards(folder):
    return sorted(folder.glob("model-*.safetensors"))


def read_json(path):
    return json.loads(path.read_text())


def write_json(path, value):
    path.write_text(json.dumps(value))


def pick(data, seq):
    seq = list(seq)
    return seq[data.draw(st.integers(0, len(seq) - 1))] if seq else None


def poke(data, value):
    """Set, delete or replace something inside a JSON value (one level or two down)."""
    if isinstance(value, dict) and value and data.draw(st.booleans()):
        key = pick(data, value)
        action = data.draw(st.sampled_from(["set", "delete", "recurse"]))
        if action == "set":
            value[key] = data.draw(ODD)
        elif action == "delete":
            del value[key]
        else:
            value[key] = poke(data, value[key])
        return value
    if isinstance(value, list) and value and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(value) - 1))
        value[i] = poke(data, value[i]) if data.draw(st.booleans()) else data.draw(ODD)
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and data.draw(st.booleans()):
        return data.draw(st.sampled_from([value * 2, value + 1, -value, value / 2, 0]))
    return data.draw(ODD)


def mutate_config(data, folder):
    path = folder / "config.json"
    choice = data.draw(st.sampled_from(["poke", "poke", "poke", "truncate", "replace"]))
    if choice == "truncate":
        text = path.read_text()
        path.write_text(text[: data.draw(st.integers(0, len(text)))])
    elif choice == "replace":
        write_json(path, data.draw(ODD))
    else:
        cfg = read_json(path)
        key = data.draw(st.sampled_from(sorted(cfg)))
        cfg[key] = poke(data, cfg[key]) if data.draw(st.booleans()) else data.draw(ODD)
        path.write_text(json.dumps(cfg))  # NaN/Infinity are written as JSON's extensions


def mutate_header(data, folder):
    path = pick(data, shards(folder))
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header, body = json.loads(raw[8:8 + n]), raw[8 + n:]
    choice = data.draw(st.sampled_from(["entry", "entry", "offsets", "dtype", "rename", "drop", "whole",
                                        "length", "truncate", "append", "flip"]))
    names = [k for k in header if k != "__metadata__"]
    name = pick(data, names)
    if choice == "entry":
        header[name] = poke(data, header[name])
    elif choice == "offsets":
        shift = data.draw(st.integers(-64, 64))
        header[name]["data_offsets"][data.draw(st.integers(0, 1))] += shift
    elif choice == "dtype":
        header[name]["dtype"] = data.draw(st.sampled_from(["BF16", "F16", "F32", "U8", "I8", "U16", "F64", "Q4"]))
    elif choice == "rename":
        header[name + ".x"] = header.pop(name)
    elif choice == "drop":
        del header[name]
    elif choice == "whole":
        header = data.draw(ODD)
    if choice == "length":
        raw = struct.pack("<Q", data.draw(st.sampled_from([0, 1, n - 1, n + 1, 2 ** 63, 2 ** 64 - 1]))) + raw[8:]
    elif choice == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif choice == "append":
        raw = raw + b"\0" * data.draw(st.integers(1, 300))
    elif choice == "flip":
        i = data.draw(st.integers(0, len(raw) - 1))
        raw = raw[:i] + bytes([raw[i] ^ data.draw(st.integers(1, 255))]) + raw[i + 1:]
    else:
        encoded = json.dumps(header).encode()
        raw = struct.pack("<Q", len(encoded)) + encoded + body
    path.write_bytes(raw)


def mutate_index(data, folder):
    path = folder / INDEX
    choice = data.draw(st.sampled_from(["value", "value", "poke", "whole", "delete"]))
    if choice == "delete":
        path.unlink()
        return
    index = read_json(path)
    if choice == "value":
        key = pick(data, index["weight_map"])
        index["weight_map"][key] = data.draw(st.one_of(ODD, st.sampled_from(
            [s.name for s in shards(folder)] + ["missing.safetensors", "sub/../" + shards(folder)[0].name])))
    elif choice == "poke":
        index = poke(data, index)
    else:
        index = data.draw(ODD)
    write_json(path, index)


def mutate_tokenizer(data, folder):
    path = folder / "tokenizer.json"
    tok = read_json(path)
    choice = data.draw(st.sampled_from(["poke", "poke", "vocab", "cut", "id", "special", "whole", "truncate"]))
    if choice == "poke":
        write_json(path, poke(data, tok))
    elif choice == "vocab":
        tok["model"]["vocab"][pick(data, tok["model"]["vocab"])] = data.draw(st.one_of(ODD, st.integers(0, 300)))
        write_json(path, tok)
    elif choice == "cut":  # a cut-down vocabulary: tiktoken panicked on text needing a missing byte
        low = data.draw(st.integers(0, 255))
        high = data.draw(st.integers(low, 256))
        tok["model"]["vocab"] = {t: i for t, i in tok["model"]["vocab"].items() if not low <= i < high}
        write_json(path, tok)
    elif choice == "id":
        pick(data, tok["added_tokens"])["id"] = data.draw(st.one_of(ODD, st.integers(0, 300)))
        write_json(path, tok)
    elif choice == "special":
        tok["added_tokens"] = [t for t in tok["added_tokens"] if t["content"] != pick(data, HARMONY)]
        write_json(path, tok)
    elif choice == "whole":
        write_json(path, data.draw(ODD))
    else:
        text = path.read_text()
        path.write_text(text[: data.draw(st.integers(0, len(text) - 1))])


def mutate_files(data, folder):
    victim = pick(data, [*shards(folder), folder / "config.json", folder / "tokenizer.json", folder / INDEX,
                         folder / "generation_config.json"])
    choice = data.draw(st.sampled_from(["delete", "fifo", "symlink-out", "directory", "empty"]))
    victim.unlink()
    if choice == "fifo":
        os.mkfifo(victim)  # nothing may open it for reading: that would block forever
    elif choice == "symlink-out":
        os.symlink("/dev/zero", victim)
    elif choice == "directory":
        victim.mkdir()
    elif choice == "empty":
        victim.write_bytes(b"")


MUTATIONS = [mutate_config, mutate_header, mutate_header, mutate_index, mutate_tokenizer, mutate_files]


# ----------------------------------------------------------------------------- the property

@contextlib.contextmanager
def deadline(seconds: int):
    """Turn a hang (a FIFO opened for reading waits forever) into a failure instead of a stuck run."""
    def fail(*_):
        raise TimeoutError(f"no answer within {seconds} s: something blocked on the folder")
    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def one_sentence(message: str) -> None:
    assert message and "\n" not in message and "Traceback" not in message, message
    assert message.rstrip().endswith("."), message


def outcome(call):
    """None when `call` succeeds, the sentence when it raises ModelError; anything else fails the test."""
    try:
        call()
    except ModelError as e:
        one_sentence(str(e))
        return str(e)
    return None


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "250")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_fuzz_every_entry_point_succeeds_or_says_one_sentence(base, tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("case") / "m"
    shutil.copytree(base, folder)
    chosen = [data.draw(st.sampled_from(MUTATIONS)) for _ in range(data.draw(st.integers(1, 3)))]
    for mutate in sorted(chosen, key=lambda m: m is mutate_files):  # file swaps last: the others read files
        try:
            mutate(data, folder)
        except (OSError, ValueError, TypeError, KeyError, AttributeError, IndexError, struct.error):
            pass  # an earlier mutation left nothing this one can edit: the folder is as it is

    with deadline(30):
        outcome(lambda: load_config(folder))
        outcome(lambda: plan(folder, 512, budget_bytes=10 ** 10))
        tokenizer = {}
        if outcome(lambda: tokenizer.setdefault("enc", load_tokenizer(folder))) is None:
            enc = tokenizer["enc"]  # a tokenizer that loads must write any text (a cut-down one panicked)
            assert enc.decode(enc.encode_ordinary(ANY_TEXT)) == ANY_TEXT
        assert prefers_greedy(folder) in (True, False)
        loaded = {}
        refused = outcome(lambda: loaded.setdefault("model", load_model(folder, dtype="float32")))
        if refused is None:  # a folder that loads must also run (or say why it can't)
            outcome(lambda: generate_greedy(loaded["model"], [1, 2, 3], 2))
        problem = check_folder(folder)
    if problem is not None:
        one_sentence(problem)
    # The app's check reads the same headers as the loader: it never passes what the loader refuses
    # (the loader's NaN scan of the small tensors reads data, which the app's instant check skips).
    if problem is None and refused is not None:
        assert "NaN or infinite" in refused, refused
    shutil.rmtree(folder.parent, ignore_errors=True)


def test_the_unmutated_base_loads(base):
    assert check_folder(base) is None
    assert len(generate_greedy(load_model(base, dtype="float32"), [1, 2, 3], 2)) == 2
    assert math.isfinite(plan(base, 512, budget_bytes=10 ** 10).peak_bytes)
    assert load_tokenizer(base).encode_single_token("<|call|>") == 261
    assert Path(base).is_dir()
