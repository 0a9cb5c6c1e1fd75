"""The app under a real X server (Xvfb): every main state renders to a non-blank, distinct PNG."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

SCRIPT = Path(__file__).with_name("screens.py")
SCRIPTED = ["1-empty", "2-streaming", "3-finished-reasoning-hidden", "4-raw-reasoning-shown", "5-setup-download",
            "12-rich-answer"]
DEMO = ["6-demo-examples", "7-demo-answer"]      # the real demo model, when MLX is installed
try:
    import mlx.core  # noqa: F401
    HAVE_MLX = True
except ImportError:
    HAVE_MLX = False
BASE = SCRIPTED + (DEMO if HAVE_MLX else [])
STATES = BASE + ["min-" + s for s in BASE]       # the default size and the window's minimum size


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs Xvfb (apt-get install xvfb libxcb-cursor0)")
def test_main_states_render_under_xvfb(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}  # a real X server, not offscreen
    run = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1400x900x24", sys.executable, str(SCRIPT),
                          str(tmp_path)], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    images = {}
    for state in STATES:
        image = QImage(str(tmp_path / f"{state}.png"))
        assert not image.isNull(), f"{state}.png was not written"
        want = (760, 520) if state.startswith("min-") else (1180, 780)
        assert (image.width(), image.height()) == want, state
        small = image.scaled(80, 50)
        colors = {small.pixel(x, y) for x in range(80) for y in range(50)}
        assert len(colors) > 20, f"{state}.png looks blank"
        images[state] = image
    # Showing the raw chain of thought changes what a person sees; the setup page is another screen.
    assert images["3-finished-reasoning-hidden"] != images["4-raw-reasoning-shown"]
    assert images["1-empty"] != images["5-setup-download"]
    if HAVE_MLX:   # the demo model answered: its chat differs from the empty one with the examples
        assert images["6-demo-examples"] != images["7-demo-answer"]


TOOL_STATES = ["8-tool-consent", "9-tool-call-collapsed", "10-tool-call-expanded", "11-structured-answer"]


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs Xvfb (apt-get install xvfb libxcb-cursor0)")
def test_tool_states_render_under_xvfb(tmp_path):
    from engine.python_tool import sandbox_problem
    if sandbox_problem():
        pytest.skip(f"the sandbox can't run here: {sandbox_problem()}")
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    run = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1400x900x24", sys.executable, str(SCRIPT), "tools",
                          str(tmp_path)], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    images = {}
    for state in TOOL_STATES:
        image = QImage(str(tmp_path / f"{state}.png"))
        assert not image.isNull() and (image.width(), image.height()) == (1180, 780), state
        images[state] = image
    # Asking, folded and opened are different screens; only the opened block shows the chart the
    # code drew (its bars are exactly this blue).
    assert len({bytes(images[s].constBits()) for s in TOOL_STATES}) == 4

    def has_bars(image):
        return any(image.pixelColor(x, y).getRgb()[:3] == (66, 133, 244)
                   for x in range(0, image.width(), 4) for y in range(0, image.height(), 4))
    assert has_bars(images["10-tool-call-expanded"]) and not has_bars(images["9-tool-call-collapsed"])


@pytest.mark.skipif(shutil.which("xvfb-run") is None or not HAVE_MLX, reason="needs Xvfb and MLX (the demo model)")
def test_model_picker_renders_under_xvfb(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    run = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1400x900x24", sys.executable,
                          str(SCRIPT.with_name("picker_screens.py")), str(tmp_path)],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    for name, size in (("19-model-picker", (1180, 780)), ("min-19-model-picker", (760, 520))):
        image = QImage(str(tmp_path / f"{name}.png"))
        assert not image.isNull() and (image.width(), image.height()) == size, name
        small = image.scaled(80, 50)
        assert len({small.pixel(x, y) for x in range(80) for y in range(50)}) > 20, f"{name}.png looks blank"
