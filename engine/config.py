"""config.json of a gpt-oss checkpoint -> a validated, frozen GptOssConfig."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ModelError

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

    def is_sliding(self, layer: int) -> bool:
        return self.layer_types[layer] == "sliding_attention"


def _yarn_from(raw: dict | None, path: Path) -> YarnScaling | None:
    if not raw:
        return None
    kind = raw.get("rope_type", raw.get("type"))
    if kind != "yarn":
        raise ModelError(f"{path} asks for rope_scaling type {kind!r}; gpt-oss uses 'yarn'.")
    fields = YarnScaling.__dataclass_fields__
    return YarnScaling(**{k: raw[k] for k in fields if k in raw})


def config_from_dict(raw: dict, path: Path | str = "config.json") -> GptOssConfig:
    """Validate a parsed config.json. Raises ModelError naming the offending key."""
    path = Path(path)
    model_type = raw.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ModelError(
            f"{path} says model_type {model_type!r}; this app runs gpt-oss models ('gpt_oss') only."
        )
    for key in REQUIRED_KEYS:
        if key not in raw:
            raise ModelError(f"{path} is missing the key '{key}'; the model folder is incomplete.")
    values = {k: raw[k] for k in GptOssConfig.__dataclass_fields__ if k in raw}
    if "num_experts_per_tok" not in raw and "experts_per_token" in raw:
        values["num_experts_per_tok"] = raw["experts_per_token"]
    values["rope_scaling"] = _yarn_from(raw.get("rope_scaling"), path)
    layers = raw["num_hidden_layers"]
    # gpt-oss alternates: even layers slide, odd layers see everything.
    types = tuple(raw.get("layer_types") or
                  ("sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers)))
    if len(types) != layers or not set(types) <= {"sliding_attention", "full_attention"}:
        raise ModelError(f"{path} has a 'layer_types' list that does not match num_hidden_layers.")
    values["layer_types"] = types
    if isinstance(values.get("eos_token_id"), list):
        values["eos_token_id"] = tuple(values["eos_token_id"])
    cfg = GptOssConfig(**values)
    for key in ("hidden_size", "intermediate_size"):
        if getattr(cfg, key) % 32:
            raise ModelError(f"{path}: '{key}' must be a multiple of 32 (the MXFP4 block size).")
    if cfg.num_attention_heads % cfg.num_key_value_heads:
        raise ModelError(f"{path}: 'num_attention_heads' must be a multiple of 'num_key_value_heads'.")
    if not 0 < cfg.num_experts_per_tok <= cfg.num_local_experts:
        raise ModelError(f"{path}: 'num_experts_per_tok' must be between 1 and num_local_experts.")
    return cfg


def load_config(folder: str | Path) -> GptOssConfig:
    """Read and validate folder/config.json."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise ModelError(f"There is no config.json in {Path(folder)}: choose a gpt-oss model folder.")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path} could not be read as JSON ({exc}); download the model again.") from None
    if not isinstance(raw, dict):
        raise ModelError(f"{path} does not hold a JSON object; download the model again.")
    return config_from_dict(raw, path)
