"""DESIGN.md's rules about which package may import which, checked on the code itself: the arrows
point down (app -> server -> engine; models -> engine), never back up."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RULES = {  # package: top-level names it must never import
    "engine": {"app", "models", "server", "PySide6"},
    "server": {"app", "PySide6"},
    "models": {"app", "server", "PySide6"},
    "app/ui": {"mlx"},
}


def imported(path: Path) -> set[tuple[int, str]]:
    """(line, top-level module) for every import in the file, lazy ones inside functions included."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {(node.lineno, a.name.split(".")[0]) for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add((node.lineno, node.module.split(".")[0]))
    return out


@pytest.mark.parametrize("package", sorted(RULES))
def test_no_arrow_runs_back_up(package):
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {name}"
             for path in sorted((ROOT / package).rglob("*.py"))
             for line, name in sorted(imported(path)) if name in RULES[package]]
    assert not wrong, "\n".join(wrong)
