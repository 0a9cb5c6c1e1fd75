"""Every way a model folder can be broken gets one clear sentence naming the file or tensor."""

import json
import shutil
import struct

import pytest

from engine import load_model
from engine.errors import ModelError
from models.tiny import write_tiny_checkpoint


@pytest.fixture
def folder(tmp_path, tiny_dir):
    dst = tmp_path / "model"
    shutil.copytree(tiny_dir, dst)
    return dst


def edit_config(folder, **changes):
    cfg = json.loads((folder / "config.json").read_text())
    for key, value in changes.items():
        if value is None:
            cfg.pop(key)
        else:
            cfg[key] = value
    (folder / "config.json").write_text(json.dumps(cfg))


def shards(folder):
    return sorted(folder.glob("*.safetensors"))


def expect(folder, *fragments):
    with pytest.raises(ModelError) as info:
        load_model(folder)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    for fragment in fragments:
        assert fragment in message
    return message


def test_missing_folder(tmp_path):
    expect(tmp_path / "nowhere", "does not exist")


def test_missing_config(folder):
    (folder / "config.json").unlink()
    expect(folder, "no config.json")


def test_config_not_json(folder):
    (folder / "config.json").write_text("{not json")
    expect(folder, "config.json", "JSON")


def test_unknown_model_type(folder):
    edit_config(folder, model_type="llama")
    expect(folder, "'llama'", "gpt_oss")


@pytest.mark.parametrize("key", ["hidden_size", "num_local_experts", "vocab_size"])
def test_missing_key_is_named(folder, key):
    edit_config(folder, **{key: None})
    expect(folder, f"'{key}'")


def test_missing_shard(folder):
    last = shards(folder)[-1]
    last.unlink()
    expect(folder, last.name, "missing")


def test_truncated_shard(folder):
    path = shards(folder)[0]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])
    expect(folder, path.name, "truncated")


def test_garbage_header(folder):
    path = shards(folder)[0]
    path.write_bytes(struct.pack("<Q", 10 ** 12) + b"x" * 100)
    expect(folder, path.name, "not a valid safetensors")


def test_wrong_shape_names_tensor(tmp_path):
    # Weights of a 96-wide model under a config that says 128.
    folder = write_tiny_checkpoint(tmp_path / "m", layers=2, hidden=96)
    edit_config(folder, hidden_size=128)
    expect(folder, "The tensor model.", "has shape", "config.json implies")


def test_missing_tensor_is_named(folder):
    edit_config(folder, num_hidden_layers=5, layer_types=None)  # layer 4 does not exist
    expect(folder, "model.layers.4.", "missing")


def test_wrong_dtype_names_tensor(folder):
    # Rewrite one shard's header so a uint8 tensor claims to be int8.
    path = next(p for p in shards(folder) if b"gate_up_proj_blocks" in p.read_bytes()[:100000])
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    name = next(k for k in header if k.endswith("gate_up_proj_blocks"))
    header[name]["dtype"] = "I8"
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (n - len(raw))
    path.write_bytes(data[:8] + raw + data[8 + n:])
    expect(folder, name, "I8")


def test_bad_dtype_argument(tiny_dir):
    with pytest.raises(ModelError, match="Unknown dtype"):
        load_model(tiny_dir, dtype="int3")
