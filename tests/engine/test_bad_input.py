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


# Values of the wrong type or range: each is refused in one sentence that names the key
# (they used to surface as TypeError / ZeroDivisionError tracebacks).
BAD_CONFIG_VALUES = [
    ("hidden_size", "96"),
    ("hidden_size", 0),
    ("hidden_size", -32),
    ("hidden_size", True),
    ("intermediate_size", 0),
    ("num_hidden_layers", 0),
    ("num_hidden_layers", 4.0),
    ("num_hidden_layers", 10 ** 12),
    ("num_local_experts", 0),
    ("num_attention_heads", 0),
    ("num_key_value_heads", 0),
    ("num_key_value_heads", [2]),
    ("vocab_size", 0),
    ("vocab_size", "512"),
    ("num_experts_per_tok", 2.5),
    ("head_dim", 0),
    ("head_dim", 33),  # rotary halves need an even head_dim
    ("rms_norm_eps", 0),
    ("rms_norm_eps", "1e-5"),
    ("sliding_window", 0),
    ("rope_theta", 1),
    ("rope_theta", float("nan")),
    ("max_position_embeddings", "131072"),
    ("max_position_embeddings", 0),
    ("swiglu_limit", -1),
    ("attention_bias", "yes"),
    ("tie_word_embeddings", 1),
    ("eos_token_id", "200002"),
    ("eos_token_id", [200002, "x"]),
    ("pad_token_id", -5),
    ("torch_dtype", 16),
    ("layer_types", "sliding_attention"),
    ("layer_types", [1, 2, 3, 4]),
    ("rope_scaling", "yarn"),
    ("rope_scaling", {"rope_type": "yarn", "factor": "32"}),
    ("rope_scaling", {"rope_type": "yarn", "factor": 0}),
    ("rope_scaling", {"rope_type": "yarn", "beta_fast": 0}),
    ("rope_scaling", {"rope_type": "yarn", "original_max_position_embeddings": 4096.5}),
    ("rope_scaling", {"rope_type": "yarn", "truncate": "false"}),
]


@pytest.mark.parametrize("key,value", BAD_CONFIG_VALUES, ids=[f"{k}={v!r}" for k, v in BAD_CONFIG_VALUES])
def test_config_value_of_wrong_type_or_range(folder, key, value):
    edit_config(folder, **{key: value if value is not None else None})
    if key == "rope_scaling" and isinstance(value, dict):
        key += "." + next(k for k in value if k != "rope_type")
    expect(folder, "config.json", f"'{key}'")


def test_a_model_folder_under_a_parent_it_may_not_enter_is_called_unreadable():
    """Root (CI) reads anything: the check then runs with the effective uid of `nobody`."""
    import os
    import shutil
    import tempfile
    from pathlib import Path

    from engine import open_chat

    base = Path(tempfile.mkdtemp())  # pytest's own temp folders are closed to other users
    os.chmod(base, 0o755)
    parent = base / "locked"
    (parent / "model").mkdir(parents=True)
    parent.chmod(0o000)
    messages = []
    root = os.geteuid() == 0
    try:
        if root:
            os.setegid(65534)
            os.seteuid(65534)
        for open_folder in (load_model, open_chat):
            with pytest.raises(ModelError) as info:
                open_folder(parent / "model")
            messages.append(str(info.value))
    finally:
        if root:
            os.seteuid(0)
            os.setegid(0)
        parent.chmod(0o755)
        shutil.rmtree(base)
    assert all("can't be read (permission denied)" in m for m in messages), messages
