"""The names a client may give as `model`: the model's own id (its folder's name) and two aliases.

`gpt-oss` always names whatever this server runs. The size name (`gpt-oss-20b`, `gpt-oss-120b`) names
a folder holding that model under any folder name, and the bundled demo model, which stands in for
gpt-oss-20b on a fresh install: programs (and the README's examples) written for the 20b work as
they are, and answer with the demo until the real model is installed.
"""

from __future__ import annotations

import json
from pathlib import Path

FAMILY = "gpt-oss"
SIZES = {(24, 32): "gpt-oss-20b", (36, 128): "gpt-oss-120b"}  # (layers, experts) -> the model's name


def aliases_for(folder: str | Path) -> tuple[str, ...]:
    """The other names `model` may give for the model in `folder` (its id, the folder name, aside)."""
    from models.registry import demo_folder

    folder = Path(folder).resolve()
    names = [FAMILY]
    if folder == demo_folder().resolve():
        names.append(SIZES[(24, 32)])
    else:
        try:
            config = json.loads((folder / "config.json").read_text())
            size = SIZES.get((config.get("num_hidden_layers"), config.get("num_local_experts")))
        except (OSError, ValueError, AttributeError):
            size = None
        if size:
            names.append(size)
    return tuple(n for n in names if n != folder.name)
