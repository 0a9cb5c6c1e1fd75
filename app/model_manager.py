"""Finding and checking model folders, without the network and without loading any weights.

Search order: the folder the user picked (or downloaded to), the app's own models folder, the
Hugging Face cache (read from disk, offline), then the tiny demo model shipped in models/demo.
`check_folder` answers in one sentence with a way forward; it reads only config.json, the index
and the safetensors headers, so it is instant even for 13 GB.
"""
from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from app.paths import models_dir
from models.registry import DEMO, GPT_OSS_20B, bundled_folders, demo_folder, label_for_folder

PARTIAL_SUFFIXES = (".part", ".incomplete")


@dataclass(frozen=True)
class FoundModel:
    folder: Path
    label: str
    is_demo: bool


def enable_offline_mode() -> None:
    """From here on nothing may reach the network: Hugging Face lookups read the local cache only."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        import huggingface_hub.constants as hf_constants
        hf_constants.HF_HUB_OFFLINE = True
    except ImportError:
        pass


def hf_cache_folders(repo_id: str = GPT_OSS_20B.repo_id) -> list[Path]:
    """Snapshot folders of `repo_id` in the local Hugging Face cache, newest first (disk only)."""
    hub = os.environ.get("HF_HUB_CACHE")
    if not hub:
        hf_home = os.environ.get("HF_HOME") or str(Path.home() / ".cache" / "huggingface")
        hub = os.path.join(hf_home, "hub")
    snaps = Path(hub) / ("models--" + repo_id.replace("/", "--")) / "snapshots"
    try:
        return sorted((p for p in snaps.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return []


def default_download_folder() -> Path:
    return models_dir() / GPT_OSS_20B.key


def candidate_folders(chosen: str | Path | None = None) -> list[Path]:
    """Where to look for a model, in order of preference."""
    out = [Path(chosen)] if chosen else []
    out += [default_download_folder(), *hf_cache_folders(), *bundled_folders(), demo_folder()]
    seen, unique = set(), []
    for p in out:
        key = str(p.expanduser())
        if key not in seen:
            seen.add(key)
            unique.append(p.expanduser())
    return unique


def find_model(chosen: str | Path | None = None) -> FoundModel | None:
    """The first candidate folder that passes `check_folder`, or None (then: the setup screen)."""
    for folder in candidate_folders(chosen):
        if check_folder(folder) is None:
            is_demo = folder.resolve() == demo_folder().resolve()
            label = DEMO.label if is_demo else (label_for_folder(folder) or folder.name)
            return FoundModel(folder, label, is_demo)
    return None


def _safetensors_problem(path: Path) -> str | None:
    """Check the header and that the file is exactly as long as the header says."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                return "empty"
            (n,) = struct.unpack("<Q", raw)
            if n > min(size - 8, 100 * 1024 * 1024):
                return "its header is damaged"
            header = json.loads(f.read(n))
    except (OSError, ValueError, UnicodeDecodeError):
        return "its header is damaged"
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            end = max(end, int(info["data_offsets"][1]))
        except (KeyError, TypeError, ValueError, IndexError):
            return "its header is damaged"
    expected = 8 + n + end
    if size != expected:
        return f"it has {size:,} bytes but should have {expected:,}"
    return None


def check_folder(folder: str | Path) -> str | None:
    """None if `folder` holds a usable model; otherwise one sentence saying what is wrong and what to do."""
    folder = Path(folder).expanduser()
    redo = "download the model again or choose another folder"
    if not folder.is_dir():
        return f"The folder {folder} does not exist; choose another folder or download the model."
    partial = sorted(p.name for p in folder.iterdir() if p.name.endswith(PARTIAL_SUFFIXES))
    if partial:
        return (f"The download into {folder} did not finish ({partial[0]} is incomplete); "
                "resume the download from the setup screen.")
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        return (f"{folder} has no config.json, so it is not a model folder; choose the folder that holds "
                "gpt-oss-20b (config.json, model-*.safetensors, tokenizer.json).")
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, ValueError):
        return f"The config.json in {folder} is damaged; {redo}."
    if not isinstance(cfg, dict) or cfg.get("model_type") != "gpt_oss":
        kind = cfg.get("model_type", "unknown") if isinstance(cfg, dict) else "unknown"
        return f"{folder} holds a {kind} model, not gpt-oss; choose a gpt-oss-20b folder or download it."
    if not (folder / "tokenizer.json").is_file():
        return f"{folder} has no tokenizer.json; {redo}."
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (OSError, ValueError, KeyError, AttributeError):
            return f"The weight index in {folder} is damaged; {redo}."
    elif (folder / "model.safetensors").is_file():
        shards = ["model.safetensors"]
    else:
        return f"{folder} has no model weights (model-*.safetensors); {redo}."
    for shard in shards:
        path = folder / shard
        if not path.is_file():
            return f"The weight file {shard} is missing from {folder}; {redo}."
        problem = _safetensors_problem(path)
        if problem:
            return f"The weight file {shard} is damaged or incomplete ({problem}); {redo}."
    return None
