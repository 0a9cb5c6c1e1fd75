#!/usr/bin/env python3
"""Build "gpt-oss chat.app" and a .dmg for Apple-silicon Macs (PyInstaller onedir inside the bundle).

    python build_mac_app.py                       # on a Mac: dist/gpt-oss chat.app + dist/gpt-oss-chat-<v>.dmg, ad-hoc signed
    python build_mac_app.py --identity "Developer ID Application: ..." --notarize-profile NAME
    python build_mac_app.py --bundle-model ~/models/gpt-oss-20b   # an offline installer with the weights inside
    python build_mac_app.py --check build/check   # anywhere: Info.plist, bundle layout, collection report

On Linux the same spec builds a plain onedir (dist/gpt-oss-chat/), which tests/mac_app starts
offscreen; the .app, signing and the .dmg need a Mac. Steps and options: docs/building.md.
"""
from __future__ import annotations

import argparse
import ast
import json
import platform
import plistlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "packaging"))   # not a package: see packaging/bundle_plan.py

import bundle_info  # noqa: E402
import bundle_plan as bp  # noqa: E402

SPEC = bp.PACKAGING / "gpt_oss_chat.spec"
EXPECTED_ENTITLEMENTS = ("com.apple.security.cs.allow-unsigned-executable-memory",
                         "com.apple.security.cs.disable-library-validation")


def bundle_layout(plan: bp.Plan) -> list[str]:
    """Where each planned file lands inside the .app (PyInstaller 6: code in Frameworks, data in Resources)."""
    app = f"{bp.APP_NAME}.app/Contents"
    rows = [f"{app}/Info.plist", f"{app}/MacOS/{bp.EXECUTABLE}", f"{app}/Resources/{bp.ICON_ICNS}",
            f"{app}/_CodeSignature/CodeResources"]
    for item in plan.items:
        top = "Resources" if item.kind == "data" else "Frameworks"
        rows.append(f"{app}/{top}/{item.dest}/{item.filename}")
        if item.filename == "mlx.metallib":   # MLX looks beside libmlx.dylib, which is in Frameworks
            rows.append(f"{app}/Frameworks/{item.dest}/{item.filename} -> ../../../Resources/{item.dest}/{item.filename}")
    return rows


def validate_spec() -> list[str]:
    """The spec parses and builds from bundle_plan (the single list of what to collect)."""
    try:
        tree = ast.parse(SPEC.read_text(), str(SPEC))
    except (OSError, SyntaxError) as e:
        return [f"{SPEC} cannot be read as Python ({e})."]
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    missing = [n for n in ("Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE") if n not in names]
    problems = [f"{SPEC.name} never calls {', '.join(missing)}."] if missing else []
    try:
        ent = plistlib.loads((bp.PACKAGING / "entitlements.plist").read_bytes())
        problems += [f"entitlements.plist lacks {k}." for k in EXPECTED_ENTITLEMENTS if ent.get(k) is not True]
    except (OSError, plistlib.InvalidFileException, ValueError) as e:
        problems.append(f"packaging/entitlements.plist is not a valid plist ({e}).")
    return problems


def check(out: Path, target: str, bundle_model: Path | None) -> int:
    """Write Info.plist, the icon, the layout and the collection report to `out`; 0 if all is well."""
    plan = bp.collection_plan(target, bundle_model)
    problems = plan.problems + validate_spec()
    contents = out / f"{bp.APP_NAME}.app" / "Contents"
    info = bundle_info.write_info_plist(contents / "Info.plist")
    for sub in ("MacOS", "Frameworks", "Resources"):
        (contents / sub).mkdir(parents=True, exist_ok=True)
    try:
        import bundle_icon
        bundle_icon.write_icon(out / "icon")
        (contents / "Resources" / bp.ICON_ICNS).write_bytes((out / "icon" / bp.ICON_ICNS).read_bytes())
    except ImportError as e:   # PySide6 missing: the rest of the check still means something
        print(f"note: icon not drawn ({e}); install PySide6 to draw it.")
    layout = bundle_layout(plan)
    (out / "layout.txt").write_text("\n".join(layout) + "\n")
    report = {
        "target": plan.target, "version": info["CFBundleShortVersionString"],
        "items": [{"bundle_path": f"{i.dest}/{i.filename}", "kind": i.kind, "present_here": i.present,
                   "source": str(i.source) if i.source else None, "why": i.why} for i in plan.items],
        "hidden_imports": plan.hidden_imports, "excludes": plan.excludes, "problems": problems,
    }
    (out / "collection.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"Check for {plan.target}, version {report['version']}: wrote {contents / 'Info.plist'}, "
          f"{out / 'layout.txt'} and {out / 'collection.json'}.")
    for item in plan.items:
        state = "here" if item.present else "not on this machine"
        print(f"  {item.kind:6} {item.dest}/{item.filename}  ({state}; {item.why})")
    print(f"  {len(plan.hidden_imports)} hidden imports, {len(plan.excludes)} excluded modules")
    for p in problems:
        print(f"problem: {p}")
    return 1 if problems else 0


def verified(roots: list[Path], plan: bp.Plan) -> bool:
    """Every planned file made it into the bundle; otherwise say which did not."""
    missing = bp.missing_from_bundle(roots, plan)
    for path in missing:
        print(f"problem: {path} is not in the built bundle (looked in {', '.join(str(r) for r in roots)}).")
    return not missing


def build(args: argparse.Namespace) -> int:
    """Freeze the app; on a Mac also fix up, sign and package it."""
    import bundle_icon
    import bundle_macos as mac

    on_mac = sys.platform == "darwin"
    if on_mac and platform.machine() != "arm64":
        print("This Mac is not Apple silicon (or Python runs under Rosetta); MLX needs an arm64 Python.")
        return 2
    dist, work = Path(args.dist).resolve(), Path(args.work).resolve()
    plan = bp.collection_plan(sys.platform, args.bundle_model)
    if plan.problems:
        print("Cannot build:\n  " + "\n  ".join(plan.problems))
        return 2
    try:
        if on_mac and not args.keep_wheels:
            mac.pin_macos14_wheels(work / "wheels")
        icns = bundle_icon.write_icon(work / "icon")
        cmd = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--distpath", str(dist),
               "--workpath", str(work / "pyinstaller"), str(SPEC), "--", "--icon", str(icns)]
        if args.bundle_model:
            cmd += ["--bundle-model", str(args.bundle_model)]
        mac.run(cmd, "PyInstaller")
        if not on_mac:
            if not verified([dist / bp.EXECUTABLE / "_internal"], plan):
                return 1
            print(f"Built {dist / bp.EXECUTABLE} (Linux onedir, for testing the spec); the .app and "
                  ".dmg need a Mac.")
            return 0
        app = dist / f"{bp.APP_NAME}.app"
        for link in mac.place_metallib(app):
            print(f"linked {link.relative_to(dist)}")
        if not verified([app / "Contents" / "Frameworks", app / "Contents" / "Resources"], plan):
            return 1
        mac.sign_bundle(app, args.identity)
        if args.no_dmg:
            print(f"Built {app}.")
            return 0
        dmg = mac.make_dmg(app, dist / f"{bp.EXECUTABLE}-{bp.project_version()}.dmg", args.identity)
        if args.notarize_profile:
            if not args.identity:
                print("Notarization needs a Developer ID identity (--identity); the .dmg was not sent.")
                return 2
            mac.notarize(dmg, args.notarize_profile)
        print(f"Built {app} and {dmg}.")
        return 0
    except (mac.BuildError, subprocess.SubprocessError, OSError) as e:
        print(f"Build failed: {e}")
        return 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", metavar="OUT", help="write Info.plist, layout and collection report to OUT; no build")
    ap.add_argument("--target", choices=["darwin", "linux"], default="darwin", help="platform --check reports for")
    ap.add_argument("--identity", help='codesign identity, e.g. "Developer ID Application: Name (TEAMID)"; default ad-hoc')
    ap.add_argument("--notarize-profile", help="notarytool keychain profile (xcrun notarytool store-credentials)")
    ap.add_argument("--bundle-model", type=Path, help="a model folder to ship inside the app (offline installs)")
    ap.add_argument("--no-dmg", action="store_true", help="stop after the signed .app")
    ap.add_argument("--keep-wheels", action="store_true", help="do not reinstall MLX from its macOS 14 wheels")
    ap.add_argument("--dist", default=str(ROOT / "dist"), help="output folder (default dist/)")
    ap.add_argument("--work", default=str(ROOT / "build" / "mac"), help="scratch folder (default build/mac/)")
    args = ap.parse_args(argv)
    if args.check:
        return check(Path(args.check), args.target, args.bundle_model)
    return build(args)


if __name__ == "__main__":
    sys.exit(main())
