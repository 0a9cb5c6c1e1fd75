"""Known models: where to download them and which files make a complete folder.

Sizes are the Hub's listing rounded (approx_bytes): enough for the disk-space check and the
setup screen. The exact size and SHA-256 of every file come from the Hub's metadata at download
time and are what the download is verified against.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

MB, GB = 10**6, 10**9


@dataclass(frozen=True)
class ModelFile:
    name: str
    approx_bytes: int
    required: bool = True      # optional files may be missing from a mirror without failing the download


@dataclass(frozen=True)
class KnownModel:
    key: str
    label: str                 # shown to the user
    repo_id: str | None        # Hugging Face repo (None: ships with the app)
    files: tuple[ModelFile, ...]
    revision: str = "main"
    layers: int = 0            # config.json num_hidden_layers / num_local_experts, to recognise a folder
    experts: int = 0

    @property
    def approx_bytes(self) -> int:
        return sum(f.approx_bytes for f in self.files)


GPT_OSS_20B = KnownModel(
    key="gpt-oss-20b",
    label="gpt-oss-20b",
    repo_id="openai/gpt-oss-20b",
    layers=24,
    experts=32,
    files=(
        ModelFile("config.json", 2 * 10**3),
        ModelFile("generation_config.json", 200),
        ModelFile("model.safetensors.index.json", 40 * 10**3),
        ModelFile("model-00000-of-00002.safetensors", int(4.79 * GB)),
        ModelFile("model-00001-of-00002.safetensors", int(4.80 * GB)),
        ModelFile("model-00002-of-00002.safetensors", int(4.17 * GB)),
        ModelFile("tokenizer.json", int(27.9 * MB)),
        ModelFile("tokenizer_config.json", 4 * 10**3, required=False),
        ModelFile("special_tokens_map.json", 100, required=False),
        ModelFile("chat_template.jinja", 16 * 10**3, required=False),
    ),
)

# 15 shards of about 4.1-4.6 GB (65.2 GB of weights); exact sizes and hashes come from the Hub.
_SHARDS_120B = 15
GPT_OSS_120B = KnownModel(
    key="gpt-oss-120b",
    label="gpt-oss-120b",
    repo_id="openai/gpt-oss-120b",
    layers=36,
    experts=128,
    files=(
        ModelFile("config.json", 2 * 10**3),
        ModelFile("generation_config.json", 200),
        ModelFile("model.safetensors.index.json", 60 * 10**3),
        *(ModelFile(f"model-{i:05d}-of-{_SHARDS_120B - 1:05d}.safetensors", int(65.25 * GB / _SHARDS_120B))
          for i in range(_SHARDS_120B)),
        ModelFile("tokenizer.json", int(27.9 * MB)),
        ModelFile("tokenizer_config.json", 4 * 10**3, required=False),
        ModelFile("special_tokens_map.json", 100, required=False),
        ModelFile("chat_template.jinja", 16 * 10**3, required=False),
    ),
)

# The tiny demo model another part of the project trains into models/demo/: lets the app run
# (and be tried) before the 13 GB download. It is not gpt-oss and says so.
DEMO = KnownModel(key="demo", label="Tiny demo model (not gpt-oss)", repo_id=None, files=())

KNOWN = (GPT_OSS_20B, GPT_OSS_120B)


def demo_folder() -> Path:
    return Path(__file__).resolve().parent / "demo"


def bundled_folders() -> list[Path]:
    """Model folders shipped inside the app (build_mac_app.py --bundle-model), for offline installs."""
    root = Path(__file__).resolve().parent / "bundled"
    try:
        return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    except PermissionError:  # the app's own folder closed to this user: nothing bundled to offer
        return []


def label_for_folder(folder: str | Path) -> str | None:
    """The user-facing name of the model in `folder`, from its config.json (None if unreadable)."""
    folder = Path(folder)
    try:
        if folder.resolve() == demo_folder().resolve():
            return DEMO.label
        cfg = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    layers, experts = cfg.get("num_hidden_layers"), cfg.get("num_local_experts")
    for model in KNOWN:
        if (layers, experts) == (model.layers, model.experts):
            return model.label
    if cfg.get("model_type") == "gpt_oss":
        return f"gpt-oss ({layers} layers, {experts} experts)"
    return None


def official_config(model: KnownModel):
    """The GptOssConfig of a known gpt-oss model, without its folder (both sizes share all but
    the layer and expert counts): lets the planner judge a model before it is downloaded."""
    from engine.config import config_from_dict

    layer_types = ["sliding_attention", "full_attention"] * (model.layers // 2)
    return config_from_dict({
        "model_type": "gpt_oss", "hidden_size": 2880, "intermediate_size": 2880,
        "num_hidden_layers": model.layers, "num_local_experts": model.experts, "num_experts_per_tok": 4,
        "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 64, "vocab_size": 201088,
        "sliding_window": 128, "layer_types": layer_types, "max_position_embeddings": 131072,
        "rope_scaling": {"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                         "original_max_position_embeddings": 4096, "truncate": False},
    }, f"{model.key}/config.json")


@dataclass(frozen=True)
class Offer:
    """Whether to offer a model for download on this Mac, and what to show before downloading."""

    model: KnownModel
    fits: bool
    button: str  # e.g. 'Download gpt-oss-120b (65.3 GB)'
    plan: str  # one or two sentences: how it would run here, or why not


def offer(model: KnownModel, budget_bytes: int, context_length: int = 4096) -> Offer:
    """The memory plan of `model` for a budget (engine.memory, from the config alone)."""
    from engine.memory import footprint_from_config, plan_footprint

    p = plan_footprint(footprint_from_config(official_config(model), model.label), context_length, budget_bytes)
    size = f"{model.approx_bytes / GB:.1f} GB"
    button = f"Download {model.label} ({size})"
    if not p.fits:
        return Offer(model, False, button, p.reason)
    if p.policy.expert_slots is None:
        how = "every expert kept in memory"
    else:
        share = round(100 * p.policy.expert_slots / model.experts)
        how = (f"{p.policy.expert_slots} of its {model.experts} experts per layer kept in memory ({share}%; the "
               "others are read from disk when the model picks them, which slows its answers)")
    text = (f"{model.label} runs on this Mac: about {p.peak_bytes / GB:.0f} of the {budget_bytes / GB:.0f} GB "
            f"the GPU may use, {how}, and up to {p.context_cap:,} tokens of context. The download is {size}.")
    return Offer(model, True, button, text)
