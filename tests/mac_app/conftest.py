"""Shared bits for the app-bundle tests: the repo root and the `slow` marker."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# packaging/ is not a package (it would shadow PyPI's `packaging`); its modules import by name.
# The root holds build_mac_app.py.
for _p in (ROOT / "packaging", ROOT):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes minutes (the PyInstaller build); deselect with -m 'not slow'")
