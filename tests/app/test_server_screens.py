"""The local API's settings and request log under a real X server (Xvfb): each state renders to a
non-blank PNG at the default and the minimum size (tests/app/server_screens.py)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

pytest.importorskip("mlx.core")   # the demo model answers the requests the log shows

SCRIPT = Path(__file__).with_name("server_screens.py")


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs Xvfb (apt-get install xvfb libxcb-cursor0)")
def test_server_settings_and_request_log_render_under_xvfb(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}   # a real X server, not offscreen
    run = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1400x900x24", sys.executable, str(SCRIPT),
                          str(tmp_path)], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    images = {}
    for state in ("25-server-settings", "min-25-server-settings", "26-request-log", "min-26-request-log"):
        image = QImage(str(tmp_path / f"{state}.png"))
        assert not image.isNull(), f"{state}.png was not written"
        small = image.scaled(80, 50)
        assert len({small.pixel(x, y) for x in range(80) for y in range(50)}) > 20, f"{state}.png looks blank"
        images[state] = image
    assert (images["26-request-log"].width(), images["26-request-log"].height()) == (1180, 780)
    assert (images["min-26-request-log"].width(), images["min-26-request-log"].height()) == (760, 520)
    assert images["min-25-server-settings"].height() < images["25-server-settings"].height()
