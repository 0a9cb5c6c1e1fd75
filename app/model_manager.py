"""Finding and checking model folders, without the network and without loading any weights.

Search order: the folder the user picked (or downloaded to), the app's own models folder, the
Hugging Face cache (read from disk, offline), then the tiny demo model shipped in models/demo.
`check_folder` answers in one sentence with a way forward; it reads only config.json, the index
and the safetensors headers (through the engine's pure checks, the same the loader runs), so it
is instant even for 13 GB, and it never raises.
"""
from __future__ import annotations

import json
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from app.paths import models_dir
from models.registry import DEMO, GPT_OSS_20B, bundled_folders, demo_folder, label_for_folder

PARTIAL_SUFFIXES = (".part", ".incomplete")
log = logging.getLogger(__name__)


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


def unreadable_problem(path: Path) -> str | None:
    """A sentence when `path` exists but this app may not read it (permissions, macOS privacy)."""
    is_dir = False
    try:
        mode = os.stat(path).st_mode
        is_dir = stat.S_ISDIR(mode)
        if is_dir:
            os.listdir(path)
        elif stat.S_ISREG(mode):  # never open anything else: a FIFO would block the app
            os.close(os.open(path, os.O_RDONLY))
    except PermissionError:
        from engine.errors import unreadable
        return str(unreadable(f"The model folder {path}" if is_dir else str(path)))
    except OSError:
        return None  # missing and friends: the caller says what is missing
    return None


def has_partial_download(folder: Path) -> bool:
    """True if `folder` holds files of a download that did not finish (never raises)."""
    try:
        return any(p.name.endswith(PARTIAL_SUFFIXES) for p in Path(folder).iterdir())
    except OSError:
        return False


def check_folder(folder: str | Path) -> str | None:
    """None if `folder` holds a usable model; otherwise one sentence saying what is wrong and what to do.

    Reads config.json, the index and the safetensors headers with the engine's own checks
    (engine/config.py, engine/checkpoint_format.py: no MLX, no weights read). Never raises: the
    app calls it at launch on the remembered folder, and a broken folder must not stop the app.
    """
    folder = Path(folder).expanduser()
    try:
        return _folder_problem(folder)
    except Exception as exc:  # a check we did not foresee must not keep the app from starting
        log.exception("checking the model folder %s failed", folder)
        return (f"The model folder {folder} could not be checked ({type(exc).__name__}); "
                "download the model again or choose another folder.")


def _folder_problem(folder: Path) -> str | None:
    from engine.checkpoint_format import read_checkpoint
    from engine.config import load_config
    from engine.errors import ModelError
    from engine.tokenizer import read_tokenizer

    redo = "download the model again or choose another folder"
    unreadable = unreadable_problem(folder)
    if unreadable:
        return unreadable
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
        raw = json.loads(cfg_path.read_text(encoding="utf-8"))
    except PermissionError:
        return unreadable_problem(cfg_path) or f"The config.json in {folder} can't be read; {redo}."
    except (OSError, ValueError):
        return f"The config.json in {folder} is damaged; {redo}."
    if not isinstance(raw, dict) or raw.get("model_type") != "gpt_oss":
        kind = raw.get("model_type", "unknown") if isinstance(raw, dict) else "unknown"
        return f"{folder} holds a {kind} model, not gpt-oss; choose a gpt-oss-20b folder or download it."
    if not (folder / "tokenizer.json").is_file():
        return f"{folder} has no tokenizer.json; {redo}."
    try:
        cfg = load_config(folder)
        read_checkpoint(folder, cfg)
        read_tokenizer(folder, cfg.vocab_size)  # a whole vocabulary (the round trip runs at load)
    except ModelError as exc:
        return str(exc)
    return None
