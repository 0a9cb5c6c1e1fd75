"""tests/metal: the Metal kernels' exact source, compiled by clang against a shim and run on the CPU."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
