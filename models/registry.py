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

# The tiny demo model another part of the project trains into models/demo/: lets the app run
# (and be tried) before the 13 GB download. It is not gpt-oss and says so.
DEMO = KnownModel(key="demo", label="Tiny demo model (not gpt-oss)", repo_id=None, files=())

KNOWN = (GPT_OSS_20B,)


def demo_folder() -> Path:
    return Path(__file__).resolve().parent / "demo"


def bundled_folders() -> list[Path]:
    """Model folders shipped inside the app (build_mac_app.py --bundle-model), for offline installs."""
    root = Path(__file__).resolve().parent / "bundled"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


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
