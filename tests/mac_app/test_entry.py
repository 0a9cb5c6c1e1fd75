"""The frozen app's entry point, run unfrozen: the smoke mode reports the first screen and its
checks can fail (so the slow frozen test means something)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import bundle_entry

ROOT = Path(__file__).resolve().parents[2]


def test_frozen_module_check_finds_real_modules_and_not_missing_ones():
    assert bundle_entry._check_frozen_module("mlx_lm.models.gpt_oss") == (True, "found")
    ok, detail = bundle_entry._check_frozen_module("mlx_lm.models.no_such_model_here")
    assert not ok and detail == "not in the bundle"


def test_highlighting_check_fails_when_pygments_cannot_colour(monkeypatch):
    import app.ui.markdown_view as mv
    monkeypatch.setattr(mv, "highlight_html", lambda code, language, dark: "<pre>plain</pre>")
    ok, _ = bundle_entry._check_highlighting()
    assert not ok


def test_python_tool_check_runs_code_and_fails_when_the_sandbox_cannot(monkeypatch):
    from engine.python_tool import sandbox
    ok, detail = bundle_entry._check_python_tool()
    assert (ok, detail) == (True, "42 3") or sandbox.sandbox_problem() is not None
    monkeypatch.setattr("engine.python_tool.sandbox_problem", lambda: "no sandbox here")
    assert bundle_entry._check_python_tool() == (False, "no sandbox here")


def test_describe_keeps_the_hidden_cause():
    try:
        try:
            raise FileNotFoundError("mlx.metallib")
        except FileNotFoundError as inner:
            raise ImportError("Encountered an error while initializing the extension.") from inner
    except ImportError as e:
        text = bundle_entry._describe(e)
    assert text.startswith("ImportError: Encountered") and "FileNotFoundError: mlx.metallib" in text


def test_smoke_mode_reports_the_setup_screen_and_exits(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", GPT_OSS_CHAT_HOME=str(tmp_path / "home"),
               HF_HOME=str(tmp_path / "hf"), **{bundle_entry.SMOKE_ENV: "1"})
    result = subprocess.run([sys.executable, str(ROOT / "packaging" / "bundle_entry.py")], capture_output=True,
                            text=True, timeout=120, cwd=tmp_path, env=env)
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith(bundle_entry.SMOKE_PREFIX)]
    assert len(lines) == 1, result.stdout + result.stderr[-3000:]
    report = json.loads(lines[0][len(bundle_entry.SMOKE_PREFIX):])
    # No model anywhere (empty home and HF cache) and no demo model: the setup page comes first.
    expected = "chat" if (ROOT / "models" / "demo" / "config.json").is_file() else "setup"
    assert report["screen"] == expected
    assert report["ok"] is True and set(report["checks"]) == {"mlx", "metal_kernels", "mlx_lm_gpt_oss", "tiktoken",
                                                              "highlighting", "python_tool"}
