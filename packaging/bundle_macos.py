"""The macOS-only steps of the build: wheel pinning, metallib placement, signing, .dmg, notarization.

Every function shells out to Apple's tools (codesign, hdiutil, xcrun) or pip; build_mac_app.py
calls them in order. Step-by-step documentation: docs/building.md, "Building the Mac app".
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import bundle_plan as bp

MACHO_MAGICS = {b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe", b"\xbe\xba\xfe\xca"}
ENTITLEMENTS = bp.PACKAGING / "entitlements.plist"


class BuildError(Exception):
    """A build step failed; str() says which and what to do."""


def run(cmd: list[str], what: str) -> None:
    print("+", " ".join(cmd), flush=True)
    result = subprocess.run(cmd)
    if result.returncode != 0:
        raise BuildError(f"{what} failed (exit {result.returncode}); see the output above.")


def wheel_tags(dist: str) -> list[str]:
    """The platform tags of an installed distribution, from its dist-info WHEEL file."""
    try:
        text = metadata.distribution(dist).read_text("WHEEL") or ""
    except metadata.PackageNotFoundError:
        return []
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")]


def pin_macos14_wheels(download_dir: Path) -> None:
    """Reinstall mlx and mlx-metal from their macOS 14 wheels.

    pip picks the newest tag the build host supports (e.g. macosx_26_0), whose mlx.metallib uses a
    Metal language version older macOS cannot load ("language version 4.0 ... not supported").
    The macosx_14_0 wheels of the same version run on macOS 14 and later.
    """
    for dist in ("mlx", "mlx-metal"):
        tags = wheel_tags(dist)
        if tags and all(t.endswith(bp.WHEEL_PLATFORM) for t in tags):
            continue
        version = metadata.version(dist)
        download_dir.mkdir(parents=True, exist_ok=True)
        run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--platform", bp.WHEEL_PLATFORM, "-d", str(download_dir), f"{dist}=={version}"],
            f"downloading the {bp.WHEEL_PLATFORM} wheel of {dist} {version}")
        stem = dist.replace("-", "_")
        wheels = sorted(download_dir.glob(f"{stem}-{version}-*{bp.WHEEL_PLATFORM}.whl"))
        if not wheels:
            raise BuildError(f"pip found no {bp.WHEEL_PLATFORM} wheel of {dist} {version}; pin another version.")
        run([sys.executable, "-m", "pip", "install", "--no-deps", "--force-reinstall", str(wheels[-1])],
            f"installing {wheels[-1].name}")


def place_metallib(app: Path) -> list[Path]:
    """Make sure mlx.metallib sits beside every libmlx.dylib in the bundle (MLX looks only there).

    PyInstaller puts binaries in Contents/Frameworks and data in Contents/Resources, linking one to
    the other; a second copy of libmlx.dylib (e.g. at the top of Frameworks) would look for the
    metallib beside itself and fail. Returns the links made.
    """
    metallibs = [p for p in app.rglob("mlx.metallib") if p.is_file() and not p.is_symlink()]
    if not metallibs:
        raise BuildError("mlx.metallib is not in the bundle; reinstall mlx-metal and build again.")
    made = []
    for lib in app.rglob("libmlx.dylib"):
        beside = lib.parent / "mlx.metallib"
        if not beside.exists():
            beside.symlink_to(os.path.relpath(metallibs[0], lib.parent))
            made.append(beside)
    return made


def is_macho(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) in MACHO_MAGICS
    except OSError:
        return False


def sign_bundle(app: Path, identity: str | None) -> None:
    """Sign inside out: every Mach-O file on its own, then the whole app.

    The per-file pass reaches Python extensions deep in Frameworks/ that `codesign --deep` does
    not treat as nested code; the final --deep pass seals the Qt frameworks and the app (the way
    PyInstaller signs bundles itself). Ad-hoc ("-") without an identity: enough for the Mac that
    built it. With a Developer ID identity: hardened runtime, entitlements.plist and a secure
    timestamp, which notarization requires.
    """
    ident = identity or "-"
    base = ["codesign", "--force", "--sign", ident]
    if identity:
        base += ["--options", "runtime", "--timestamp"]
    files = [p for p in app.rglob("*") if p.is_file() and not p.is_symlink() and is_macho(p)]
    main_exe = app / "Contents" / "MacOS" / bp.EXECUTABLE
    nested = sorted((p for p in files if p != main_exe), key=lambda p: -len(p.parts))
    for chunk in range(0, len(nested), 64):          # one codesign call per 64 files: far faster
        run(base + [str(p) for p in nested[chunk:chunk + 64]], "signing the bundle's libraries")
    run(base + ["--deep", "--entitlements", str(ENTITLEMENTS), str(app)], "signing the app")
    run(["codesign", "--verify", "--deep", "--strict", "--verbose=2", str(app)], "verifying the signature")


def make_dmg(app: Path, dmg: Path, identity: str | None) -> Path:
    """A compressed .dmg holding the app and an Applications link to drag it onto."""
    staging = dmg.parent / "dmg-staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    # ditto keeps symlinks, extended attributes and signatures exactly as they are.
    run(["ditto", str(app), str(staging / app.name)], "copying the app for the .dmg")
    (staging / "Applications").symlink_to("/Applications")
    dmg.unlink(missing_ok=True)
    run(["hdiutil", "create", "-volname", bp.APP_NAME, "-srcfolder", str(staging), "-ov",
         "-format", "UDZO", "-fs", "HFS+", str(dmg)], "creating the .dmg")
    shutil.rmtree(staging, ignore_errors=True)
    if identity:
        run(["codesign", "--force", "--sign", identity, "--timestamp", str(dmg)], "signing the .dmg")
    return dmg


def notarize(dmg: Path, keychain_profile: str) -> None:
    """Send the .dmg to Apple's notary service, wait, and staple the ticket to it."""
    run(["xcrun", "notarytool", "submit", str(dmg), "--keychain-profile", keychain_profile, "--wait"],
        "notarization (run `xcrun notarytool log <id> --keychain-profile ...` to see why)")
    run(["xcrun", "stapler", "staple", str(dmg)], "stapling the notarization ticket")
