"""`build_mac_app.py --check` on any machine: a valid Info.plist with every key the Mac needs, a
collection list holding what frozen MLX/Qt apps are known to miss, and a real .icns icon."""
from __future__ import annotations

import json
import plistlib
import subprocess
import sys

from pathlib import Path

import pytest

import bundle_icon
import bundle_info
import bundle_plan as bp

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    out = tmp_path_factory.mktemp("check")
    result = subprocess.run([sys.executable, str(ROOT / "build_mac_app.py"), "--check", str(out)],
                            capture_output=True, text=True, timeout=120)
    return out, result


def test_check_succeeds_and_says_what_it_wrote(checked):
    out, result = checked
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Info.plist" in result.stdout and "mlx.metallib" in result.stdout
    assert "Traceback" not in result.stderr


def test_info_plist_is_valid_and_complete(checked):
    out, _ = checked
    with open(out / f"{bp.APP_NAME}.app" / "Contents" / "Info.plist", "rb") as f:
        info = plistlib.load(f)
    missing = [k for k in bundle_info.REQUIRED_KEYS if k not in info]
    assert not missing
    assert info["LSMinimumSystemVersion"] == "14.0"
    assert info["NSHighResolutionCapable"] is True
    assert info["LSApplicationCategoryType"].startswith("public.app-category.")
    assert info["CFBundleIdentifier"] == bp.BUNDLE_ID
    assert info["CFBundleExecutable"] == bp.EXECUTABLE
    assert info["CFBundlePackageType"] == "APPL"
    # The version is pyproject's, read independently here.
    import re
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert info["CFBundleShortVersionString"] == re.search(r'(?m)^version\s*=\s*"([^"]+)"', pyproject).group(1)


def test_collection_has_metallib_kernels_and_qt_platform_plugin(checked):
    out, _ = checked
    report = json.loads((out / "collection.json").read_text())
    paths = {i["bundle_path"]: i for i in report["items"]}
    assert "mlx/lib/mlx.metallib" in paths and paths["mlx/lib/mlx.metallib"]["kind"] == "data"
    assert "mlx/lib/libmlx.dylib" in paths
    assert "PySide6/Qt/plugins/platforms/libqcocoa.dylib" in paths
    kernels = sorted(p.name for p in (ROOT / "engine" / "metal_kernels").glob("*.metal"))
    assert kernels, "the checkout has no Metal kernels"
    assert sorted(p.split("/")[-1] for p in paths if p.startswith("engine/metal_kernels/")) == kernels
    assert "mlx_lm.models.gpt_oss" in report["hidden_imports"]
    assert "engine.session" in report["hidden_imports"] and "app.engine_bridge" in report["hidden_imports"]
    for heavy in ("torch", "transformers", "tests", "PySide6.QtNetwork", "PySide6.QtQml"):
        assert heavy in report["excludes"]
    assert report["problems"] == []


def test_layout_puts_metallib_beside_libmlx(checked):
    out, _ = checked
    rows = (out / "layout.txt").read_text().splitlines()
    frameworks_lib = next(r for r in rows if r.endswith("Frameworks/mlx/lib/libmlx.dylib"))
    metallib_link = next(r for r in rows if r.startswith(frameworks_lib.rsplit("/", 1)[0] + "/mlx.metallib"))
    assert "->" in metallib_link


def test_icon_is_a_well_formed_icns(checked):
    out, _ = checked
    icns = (out / f"{bp.APP_NAME}.app" / "Contents" / "Resources" / bp.ICON_ICNS).read_bytes()
    entries = bundle_icon.read_icns(icns)
    assert set(entries) == {t for t, _ in bundle_icon.ICNS_TYPES}
    from PySide6.QtGui import QImage
    for kind, size in bundle_icon.ICNS_TYPES:
        img = QImage.fromData(entries[kind], "PNG")
        assert (img.width(), img.height()) == (size, size), kind
    big = QImage.fromData(entries[b"ic10"], "PNG")
    assert big.pixelColor(2, 2).alpha() == 0            # transparent margin around the tile
    assert big.pixelColor(512, 200).alpha() == 255      # the tile itself is opaque
    assert (out / "icon" / "gpt-oss-chat.iconset" / "icon_512x512@2x.png").is_file()


def test_check_reports_a_bad_bundle_model_in_one_sentence(tmp_path):
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    result = subprocess.run([sys.executable, str(ROOT / "build_mac_app.py"), "--check", str(tmp_path / "o"),
                             "--bundle-model", str(empty)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "has no config.json" in result.stdout
    assert "Traceback" not in result.stderr


def test_bundle_model_files_are_planned_under_models_bundled(tmp_path):
    model = tmp_path / "gpt-oss-20b"
    (model / "sub").mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "sub" / "x.bin").write_bytes(b"1")
    plan = bp.collection_plan("darwin", model)
    assert "models/bundled/gpt-oss-20b/config.json" in plan.bundle_paths()
    assert "models/bundled/gpt-oss-20b/sub/x.bin" in plan.bundle_paths()
    assert (str(model / "config.json"), "models/bundled/gpt-oss-20b") in plan.datas()


def test_spec_validation_catches_a_broken_entitlements_file(tmp_path, monkeypatch):
    import build_mac_app
    assert build_mac_app.validate_spec() == []
    fake = tmp_path / "packaging"
    fake.mkdir()
    (fake / "entitlements.plist").write_text("not a plist")
    monkeypatch.setattr(bp, "PACKAGING", fake)
    problems = build_mac_app.validate_spec()
    assert len(problems) == 1 and "entitlements.plist" in problems[0]
