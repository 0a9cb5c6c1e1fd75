"""Finding a stdio server's program the way the user's terminal would.

An app started from the Finder gets a bare PATH (/usr/bin:/bin:...), so `npx` and `uvx` from
Homebrew, nvm or uv are "not found" although they work in Terminal: the most common MCP
complaint in LM Studio's and Claude Desktop's trackers. We look in the usual install folders too,
pass that PATH on to the server (npx itself needs `node`), and say plainly what to install.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

INSTALL_HINTS = {"npx": "Node.js (nodejs.org)", "node": "Node.js (nodejs.org)", "uvx": "uv (docs.astral.sh/uv)",
                 "uv": "uv (docs.astral.sh/uv)", "docker": "Docker Desktop", "bunx": "Bun (bun.sh)",
                 "deno": "Deno (deno.com)", "python3": "Python", "python": "Python"}


def search_path(base: str | None = None) -> str:
    """PATH plus the folders package managers install into, existing ones only, no repeats."""
    home = Path.home()
    extra = [Path("/opt/homebrew/bin"), Path("/usr/local/bin"), home / ".local/bin", home / ".cargo/bin",
             home / ".bun/bin", home / ".deno/bin", home / ".volta/bin", home / "Library/pnpm",
             home / ".npm-global/bin"]
    nvm = home / ".nvm/versions/node"
    if nvm.is_dir():      # the newest installed node first
        extra += sorted((p / "bin" for p in nvm.iterdir()), key=lambda p: _version(p.parent.name), reverse=True)
    parts = (base if base is not None else os.environ.get("PATH", "")).split(os.pathsep)
    parts += [str(p) for p in extra if p.is_dir()]
    seen, out = set(), []
    for p in parts:
        if p and p not in seen:
            seen.add(p)
            out.append(p)
    return os.pathsep.join(out)


def _version(name: str) -> tuple:
    return tuple(int(x) if x.isdigit() else 0 for x in name.lstrip("v").split("."))


def resolve(command: str, env_path: str | None = None) -> tuple[str | None, str, str]:
    """(full path of the program or None, the PATH to run it with, one sentence when not found)."""
    path = search_path(env_path)
    expanded = os.path.expanduser(command)
    if os.sep in expanded:
        found = expanded if os.access(expanded, os.X_OK) and os.path.isfile(expanded) else None
    else:
        found = shutil.which(expanded, path=path)
    if found:
        return found, path, ""
    hint = INSTALL_HINTS.get(Path(expanded).name)
    how = f"install {hint}, or " if hint else ""
    return None, path, f'The program "{command}" was not found; {how}put its full path in "command".'
