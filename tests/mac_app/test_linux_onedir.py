"""The real PyInstaller build of packaging/gpt_oss_chat.spec (its Linux flavour: a plain onedir),
then the frozen app started offscreen until its first screen shows.

This is the proof that the hidden imports and data files are right: the frozen app imports MLX,
reads our .metal sources, finds mlx-lm's gpt_oss module and opens its window with nothing from
the source tree on its path. Takes two to four minutes on a 2-core machine.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import bundle_entry
import bundle_plan as bp

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="the Linux flavour of the spec; macOS builds run in CI"),
]


@pytest.fixture(scope="module")
def onedir(tmp_path_factory):
    pytest.importorskip("PyInstaller", reason="pip install pyinstaller (it is in the test extra)")
    base = tmp_path_factory.mktemp("pyi")
    result = subprocess.run(
        [sys.executable, str(ROOT / "build_mac_app.py"), "--dist", str(base / "dist"), "--work", str(base / "work")],
        capture_output=True, text=True, timeout=900, cwd=base)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    folder = base / "dist" / bp.EXECUTABLE
    assert (folder / bp.EXECUTABLE).is_file()
    yield folder
    shutil.rmtree(base, ignore_errors=True)   # ~600 MB of build output; pytest would keep three runs


def internal(onedir: Path) -> Path:
    return onedir / "_internal"


def test_data_files_and_libraries_are_where_the_code_looks(onedir):
    kernels = sorted(p.name for p in (ROOT / "engine" / "metal_kernels").glob("*.metal"))
    assert sorted(p.name for p in (internal(onedir) / "engine" / "metal_kernels").glob("*.metal")) == kernels
    assert list((internal(onedir) / "mlx" / "lib").glob("libmlx.so*")), "MLX's library is not in mlx/lib"
    assert (internal(onedir) / "PySide6" / "Qt" / "plugins" / "platforms" / "libqoffscreen.so").is_file()
    demo = ROOT / "models" / "demo"
    if demo.is_dir():
        assert sorted(p.name for p in (internal(onedir) / "models" / "demo").iterdir()) == sorted(
            p.name for p in demo.iterdir())


def test_heavy_and_unused_modules_are_left_out(onedir):
    from PyInstaller.archive.readers import pkg_archive_contents
    modules = set(pkg_archive_contents(str(onedir / bp.EXECUTABLE)))
    assert "mlx_lm.models.gpt_oss" in modules and "engine.session" in modules and "app.launcher" in modules
    for name in ("torch", "transformers", "tests", "pytest", "PySide6.QtNetwork", "PySide6.QtQml",
                 "models.demo_train"):
        assert name not in modules, name
    for folder in ("torch", "transformers"):
        assert not (internal(onedir) / folder).exists(), folder
    assert not list((internal(onedir) / "PySide6").glob("QtNetwork*"))


def frozen_env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update({bundle_entry.SMOKE_ENV: "1", "QT_QPA_PLATFORM": "offscreen",
                "GPT_OSS_CHAT_HOME": str(tmp_path / "home"), "HF_HOME": str(tmp_path / "hf")})
    return env


@pytest.fixture(scope="module")
def smoke(onedir, tmp_path_factory):
    """The frozen app in smoke mode, run once: (the finished process, its report)."""
    folder = tmp_path_factory.mktemp("smoke")
    # Run from an empty folder: nothing from the source tree may leak onto the frozen app's path.
    result = subprocess.run([str(onedir / bp.EXECUTABLE)], capture_output=True, text=True, timeout=180,
                            cwd=folder, env=frozen_env(folder))
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith(bundle_entry.SMOKE_PREFIX)]
    assert lines, f"no smoke report (exit {result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result, json.loads(lines[-1][len(bundle_entry.SMOKE_PREFIX):])


def test_frozen_app_reaches_its_first_screen_offscreen(smoke):
    result, report = smoke
    assert report["screen"] in ("setup", "chat")
    assert report["platform"] == "offscreen"
    failed = {k: v["detail"] for k, v in report["checks"].items() if not v["ok"]}
    assert not failed
    assert report["checks"]["mlx"]["detail"].startswith("ok")
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_frozen_app_runs_the_python_tool_as_its_own_sandboxed_kernel(onedir, smoke, tmp_path):
    """The smoke check ran `print(6 * 7)` in the sandbox with the frozen app itself as the kernel
    (no Python interpreter beside it); started with the kernel flag but no connection file, the app
    fails as a kernel would, never opening as the app."""
    assert smoke[1]["checks"]["python_tool"] == {"ok": True, "detail": "42 3"}
    bad = subprocess.run([str(onedir / bp.EXECUTABLE), "--python-tool-kernel"], capture_output=True,
                         text=True, timeout=60, cwd=tmp_path, env=frozen_env(tmp_path))
    assert bad.returncode != 0 and bundle_entry.SMOKE_PREFIX not in bad.stdout
