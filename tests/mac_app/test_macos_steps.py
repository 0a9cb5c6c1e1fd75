"""The macOS-only build steps, run here on stand-in files: where the metallib ends up, the order
and flags of the codesign calls, the .dmg and notarization commands, the wheel-tag check.
Apple's tools are not called: `run` is replaced by a recorder."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import bundle_macos as mac
import bundle_plan as bp

MACHO = b"\xcf\xfa\xed\xfe" + b"\0" * 60     # a 64-bit Mach-O header's magic, enough for is_macho


@pytest.fixture
def fake_app(tmp_path) -> Path:
    """A .app laid out like PyInstaller 6 makes it: code in Frameworks, data in Resources."""
    app = tmp_path / f"{bp.APP_NAME}.app"
    contents = app / "Contents"
    (contents / "MacOS").mkdir(parents=True)
    (contents / "MacOS" / bp.EXECUTABLE).write_bytes(MACHO)
    lib = contents / "Frameworks" / "mlx" / "lib"
    lib.mkdir(parents=True)
    (lib / "libmlx.dylib").write_bytes(MACHO)
    (contents / "Frameworks" / "libmlx.dylib").write_bytes(MACHO)   # a second copy at the top
    (contents / "Frameworks" / "mlx" / "core.cpython-311-darwin.so").write_bytes(MACHO)
    res = contents / "Resources" / "mlx" / "lib"
    res.mkdir(parents=True)
    (res / "mlx.metallib").write_bytes(b"MTLB" + b"\0" * 32)
    (contents / "Resources" / "engine").mkdir()
    (contents / "Resources" / "engine" / "k.metal").write_text("kernel void k() {}")
    return app


@pytest.fixture
def recorded(monkeypatch):
    calls = []
    monkeypatch.setattr(mac, "run", lambda cmd, what: calls.append(cmd))
    return calls


def test_metallib_is_linked_beside_every_libmlx(fake_app):
    made = mac.place_metallib(fake_app)
    fw = fake_app / "Contents" / "Frameworks"
    assert sorted(made) == sorted([fw / "mlx" / "lib" / "mlx.metallib", fw / "mlx.metallib"])
    real = (fake_app / "Contents" / "Resources" / "mlx" / "lib" / "mlx.metallib").resolve()
    for link in made:
        assert link.is_symlink() and not os.path.isabs(os.readlink(link))   # relative: survives moving the app
        assert link.resolve() == real
    assert mac.place_metallib(fake_app) == []                               # idempotent


def test_missing_metallib_is_a_clear_build_error(fake_app):
    (fake_app / "Contents" / "Resources" / "mlx" / "lib" / "mlx.metallib").unlink()
    with pytest.raises(mac.BuildError, match="mlx.metallib is not in the bundle"):
        mac.place_metallib(fake_app)


def test_adhoc_signing_signs_libraries_first_then_the_app(fake_app, recorded):
    mac.sign_bundle(fake_app, None)
    libs, app_call, verify = recorded
    assert libs[:4] == ["codesign", "--force", "--sign", "-"] and "--options" not in libs
    signed = {Path(p).name for p in libs[4:]}
    assert signed == {"libmlx.dylib", "core.cpython-311-darwin.so"}            # not data, not the main exe
    assert app_call[-1] == str(fake_app) and "--deep" in app_call
    assert app_call[app_call.index("--entitlements") + 1] == str(mac.ENTITLEMENTS)
    assert verify[:2] == ["codesign", "--verify"]


def test_identity_signing_uses_hardened_runtime_and_timestamp(fake_app, recorded):
    mac.sign_bundle(fake_app, "Developer ID Application: Test (TEAM123456)")
    for call in recorded[:-1]:
        assert call[call.index("--sign") + 1] == "Developer ID Application: Test (TEAM123456)"
        assert call[call.index("--options") + 1] == "runtime" and "--timestamp" in call


def test_dmg_holds_the_app_and_an_applications_link(fake_app, monkeypatch, tmp_path):
    dmg = tmp_path / "out" / "gpt-oss-chat-0.1.0.dmg"
    dmg.parent.mkdir()
    calls, staged = [], {}

    def record_and_look(cmd, what):   # look into the staging folder while hdiutil would read it
        calls.append(cmd)
        if cmd[0] == "hdiutil":
            src = Path(cmd[cmd.index("-srcfolder") + 1])
            staged["entries"] = sorted(p.name for p in src.iterdir())
            staged["link"] = os.readlink(src / "Applications")

    monkeypatch.setattr(mac, "run", record_and_look)
    mac.make_dmg(fake_app, dmg, None)
    ditto, hdiutil = calls
    assert ditto[0] == "ditto" and ditto[1] == str(fake_app)
    assert hdiutil[:2] == ["hdiutil", "create"] and hdiutil[-1] == str(dmg)
    assert hdiutil[hdiutil.index("-volname") + 1] == bp.APP_NAME
    assert staged["entries"] == ["Applications"]   # ditto was not really run, so only the link is there
    assert staged["link"] == "/Applications"
    assert not (dmg.parent / "dmg-staging").exists()   # the staging folder is cleaned up


def test_notarize_submits_waits_and_staples(recorded, tmp_path):
    mac.notarize(tmp_path / "x.dmg", "profile")
    submit, staple = recorded
    assert submit[:3] == ["xcrun", "notarytool", "submit"] and "--wait" in submit
    assert submit[submit.index("--keychain-profile") + 1] == "profile"
    assert staple[:3] == ["xcrun", "stapler", "staple"]


def test_wheel_tags_read_the_installed_wheel():
    tags = mac.wheel_tags("mlx")
    assert tags and all("-" in t for t in tags)
    assert mac.wheel_tags("no-such-distribution-here") == []


def test_is_macho_tells_code_from_data(fake_app):
    assert mac.is_macho(fake_app / "Contents" / "MacOS" / bp.EXECUTABLE)
    assert not mac.is_macho(fake_app / "Contents" / "Resources" / "engine" / "k.metal")


def test_bundle_verification_names_what_is_missing(fake_app):
    roots = [fake_app / "Contents" / "Frameworks", fake_app / "Contents" / "Resources"]
    plan = bp.Plan("darwin", items=[
        bp.Item(None, "mlx/lib", "data", "", name="mlx.metallib"),
        bp.Item(None, "mlx/lib", "binary", "", name="libmlx.dylib"),
        bp.Item(None, "PySide6/Qt/plugins/platforms", "auto", "", name="libqcocoa.dylib"),
    ])
    assert bp.missing_from_bundle(roots, plan) == ["PySide6/Qt/plugins/platforms/libqcocoa.dylib"]
