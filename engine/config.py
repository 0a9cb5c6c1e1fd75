"""config.json of a gpt-oss checkpoint -> a validated, frozen GptOssConfig."""

from __future__ import annotations

import errno
import json
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ModelError, unreadable

SUPPORTED_MODEL_TYPES = ("gpt_oss",)

# Keys the engine cannot run without (the rest have the 20b's defaults).
REQUIRED_KEYS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_local_experts",
    "num_attention_heads",
    "num_key_value_heads",
    "vocab_size",
)


@dataclass(frozen=True)
class YarnScaling:
    """YaRN RoPE scaling as gpt-oss configures it (truncate=false: no floor/ceil of the range)."""

    factor: float = 32.0
    beta_fast: float = 32.0
    beta_slow: float = 1.0
    original_max_position_embeddings: int = 4096
    truncate: bool = False

    @property
    def attention_factor(self) -> float:
        return 0.1 * math.log(self.factor) + 1.0 if self.factor > 1 else 1.0


@dataclass(frozen=True)
class GptOssConfig:
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_local_experts: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    num_experts_per_tok: int = 4
    head_dim: int = 64
    rms_norm_eps: float = 1e-5
    sliding_window: int = 128
    layer_types: tuple[str, ...] = ()
    rope_theta: float = 150000.0
    rope_scaling: YarnScaling | None = YarnScaling()
    max_position_embeddings: int = 131072
    swiglu_limit: float = 7.0
    attention_bias: bool = True
    tie_word_embeddings: bool = False
    eos_token_id: int | tuple[int, ...] | None = 200002
    pad_token_id: int | None = 199999
    torch_dtype: str | None = None  # the float dtype the weights are stored in ("bfloat16")

    def is_sliding(self, layer: int) -> bool:
        return self.layer_types[layer] == "sliding_attention"


# Every value the engine reads: key -> (kind, smallest allowed, largest allowed). The upper bounds
# are far above any gpt-oss model (20b: hidden 2880, 24 layers, 32 experts, vocab 201088) and only
# stop absurd values from turning into hour-long loops or huge allocations before a clear refusal.
_WHOLE, _NUMBER, _FLAG = "a whole number", "a number", "true or false"
CONFIG_RULES: dict[str, tuple[str, float | None, float | None]] = {
    "hidden_size": (_WHOLE, 32, 1 << 16),
    "intermediate_size": (_WHOLE, 32, 1 << 17),
    "num_hidden_layers": (_WHOLE, 1, 1024),
    "num_local_experts": (_WHOLE, 1, 4096),
    "num_experts_per_tok": (_WHOLE, 1, 4096),
    "num_attention_heads": (_WHOLE, 1, 1024),
    "num_key_value_heads": (_WHOLE, 1, 1024),
    "head_dim": (_WHOLE, 2, 1024),
    "vocab_size": (_WHOLE, 1, 1 << 22),
    "sliding_window": (_WHOLE, 1, 1 << 24),
    "max_position_embeddings": (_WHOLE, 1, 1 << 24),
    "rms_norm_eps": (_NUMBER, 0, 1),  # strictly above the minimum for numbers
    "rope_theta": (_NUMBER, 1, None),  # log(theta) divides the YaRN correction range
    "swiglu_limit": (_NUMBER, 0, None),
    "attention_bias": (_FLAG, None, None),
    "tie_word_embeddings": (_FLAG, None, None),
}
YARN_RULES: dict[str, tuple[str, float | None, float | None]] = {
    "factor": (_NUMBER, 0, 1e6),
    "beta_fast": (_NUMBER, 0, 1e6),
    "beta_slow": (_NUMBER, 0, 1e6),
    "original_max_position_embeddings": (_WHOLE, 1, 1 << 24),
    "truncate": (_FLAG, None, None),
}


def _bad(path: Path, key: str, wanted: str, value) -> ModelError:
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return ModelError(f"{path} gives '{key}' as {shown}, but it must be {wanted}; "
                      "the file is damaged or not a gpt-oss config (download the model again).")


def _checked(path: Path, key: str, value, rule) -> int | float | bool:
    """One value checked against its rule (bool is not a number here, 4.0 is not a whole number)."""
    kind, low, high = rule
    if kind == _FLAG:
        if not isinstance(value, bool):
            raise _bad(path, key, kind, value)
        return value
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not numeric or (kind == _WHOLE and not isinstance(value, int)) or not math.isfinite(value):
        raise _bad(path, key, kind, value)
    if kind == _WHOLE:
        in_range = (low is None or value >= low) and (high is None or value <= high)
        wanted = f"a whole number from {low} to {high}"
    else:  # lower bounds of real numbers are exclusive: eps 0 or theta 1 break the math
        in_range = (low is None or value > low) and (high is None or value <= high)
        wanted = f"a number above {low}" + (f" and at most {high:g}" if high is not None else "")
    if not in_range:
        raise _bad(path, key, wanted, value)
    return value


def _token_ids(path: Path, key: str, value):
    """eos/pad ids: null, a non-negative id, or (eos only) a list of them."""
    ids = value if isinstance(value, list) and key == "eos_token_id" else [value]
    if value is None:
        return None
    for i in ids:
        if not isinstance(i, int) or isinstance(i, bool) or i < 0:
            raise _bad(path, key, "a token id (a whole number from 0)" +
                       (" or a list of them" if key == "eos_token_id" else ""), value)
    return tuple(ids) if isinstance(value, list) else value


def _yarn_from(raw, path: Path) -> YarnScaling | None:
    if not raw:
        return None
    if not isinstance(raw, dict):
        raise _bad(path, "rope_scaling", "an object such as {\"rope_type\": \"yarn\", ...}", raw)
    kind = raw.get("rope_type", raw.get("type"))
    if kind != "yarn":
        raise ModelError(f"{path} asks for rope_scaling type {kind!r}; gpt-oss uses 'yarn'.")
    return YarnScaling(**{k: _checked(path, "rope_scaling." + k, raw[k], rule) for k, rule in YARN_RULES.items() if k in raw})


def config_from_dict(raw: dict, path: Path | str = "config.json") -> GptOssConfig:
    """Validate a parsed config.json: every value the engine uses, its type and its range.

    Raises ModelError with one sentence naming the offending key.
    """
    path = Path(path)
    model_type = raw.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ModelError(
            f"{path} says model_type {model_type!r}; this app runs gpt-oss models ('gpt_oss') only."
        )
    for key in REQUIRED_KEYS:
        if key not in raw:
            raise ModelError(f"{path} is missing the key '{key}'; the model folder is incomplete.")
    raw = dict(raw)
    if "num_experts_per_tok" not in raw and "experts_per_token" in raw:
        raw["num_experts_per_tok"] = raw["experts_per_token"]
    values = {k: _checked(path, k, raw[k], rule) for k, rule in CONFIG_RULES.items() if k in raw}
    for key in ("eos_token_id", "pad_token_id"):
        if key in raw:
            values[key] = _token_ids(path, key, raw[key])
    values["rope_scaling"] = _yarn_from(raw.get("rope_scaling"), path)
    stored = raw.get("torch_dtype", raw.get("dtype"))  # newer transformers write "dtype"
    if stored is not None and not isinstance(stored, str):
        raise _bad(path, "torch_dtype", "a dtype name such as \"bfloat16\"", stored)
    values["torch_dtype"] = stored
    _check_quantization(path, raw.get("quantization_config"))
    layers = values["num_hidden_layers"]
    # gpt-oss alternates: even layers slide, odd layers see everything.
    types = raw.get("layer_types") or [
        "sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers)]
    if (not isinstance(types, list) or len(types) != layers
            or not all(t in ("sliding_attention", "full_attention") for t in types if isinstance(t, str))
            or not all(isinstance(t, str) for t in types)):
        raise ModelError(f"{path} has a 'layer_types' list that does not match num_hidden_layers "
                         "(one 'sliding_attention' or 'full_attention' per layer).")
    values["layer_types"] = tuple(types)
    cfg = GptOssConfig(**values)
    for key in ("hidden_size", "intermediate_size"):
        if getattr(cfg, key) % 32:
            raise ModelError(f"{path}: '{key}' must be a multiple of 32 (the MXFP4 block size).")
    if cfg.head_dim % 2:
        raise ModelError(f"{path}: 'head_dim' must be even (rotary embeddings turn pairs of values).")
    if cfg.num_attention_heads % cfg.num_key_value_heads:
        raise ModelError(f"{path}: 'num_attention_heads' must be a multiple of 'num_key_value_heads'.")
    if not 0 < cfg.num_experts_per_tok <= cfg.num_local_experts:
        raise ModelError(f"{path}: 'num_experts_per_tok' must be between 1 and num_local_experts.")
    for key in ("eos_token_id", "pad_token_id"):
        ids = getattr(cfg, key)
        outside = [i for i in (ids if isinstance(ids, tuple) else (ids,)) if i is not None and i >= cfg.vocab_size]
        if outside:
            raise ModelError(f"{path} gives '{key}' as {outside[0]}, outside the model's vocabulary of "
                             f"{cfg.vocab_size} tokens ('vocab_size'); the file is damaged or belongs to "
                             "another model (download the model again).")
    return cfg


def _check_quantization(path: Path, quant) -> None:
    """quantization_config, when given, must describe gpt-oss's own MXFP4 experts (the only format read)."""
    if quant is None:
        return
    if not isinstance(quant, dict):
        raise _bad(path, "quantization_config", "an object such as {\"quant_method\": \"mxfp4\", ...}", quant)
    method = quant.get("quant_method")
    if method != "mxfp4":
        raise ModelError(f"{path} says the weights are quantized with {method!r} ('quantization_config'), but "
                         "this app reads gpt-oss's own MXFP4 checkpoint only; download the original model.")


def read_regular_text(path: Path) -> str:
    """A regular file's text. Anything else (a FIFO would block the reader forever, a device never
    ends) raises IsADirectoryError, which callers treat like a missing file."""
    # O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise IsADirectoryError(errno.EISDIR, "not a regular file", str(path))
        return fh.read().decode("utf-8")


def load_config(folder: str | Path) -> GptOssConfig:
    """Read and validate folder/config.json."""
    path = Path(folder) / "config.json"
    try:
        text = read_regular_text(path)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise ModelError(f"There is no config.json in {Path(folder)}: choose a gpt-oss model folder.") from None
    except PermissionError:
        raise unreadable(str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path} could not be read ({exc}); download the model again.") from None
    try:
        raw = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ModelError(f"{path} could not be read as JSON ({exc}); download the model again.") from None
    if not isinstance(raw, dict):
        raise ModelError(f"{path} does not hold a JSON object; download the model again.")
    return config_from_dict(raw, path)
