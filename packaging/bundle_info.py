"""The .app's Info.plist, as a dict (PyInstaller's BUNDLE takes it) and as a file (--check writes it)."""
from __future__ import annotations

import plistlib
from pathlib import Path

import bundle_plan as bp

# Keys every build must carry; tests check the written plist against this list.
REQUIRED_KEYS = (
    "CFBundleIdentifier", "CFBundleName", "CFBundleDisplayName", "CFBundleExecutable",
    "CFBundleShortVersionString", "CFBundleVersion", "CFBundleIconFile", "CFBundlePackageType",
    "LSMinimumSystemVersion", "NSHighResolutionCapable", "LSApplicationCategoryType",
)


def info_plist(version: str | None = None) -> dict:
    """Info.plist keys for the app; `version` defaults to pyproject's."""
    version = version or bp.project_version()
    return {
        "CFBundleIdentifier": bp.BUNDLE_ID,
        "CFBundleName": bp.APP_NAME,
        "CFBundleDisplayName": bp.APP_NAME,
        "CFBundleExecutable": bp.EXECUTABLE,
        "CFBundlePackageType": "APPL",
        "CFBundleShortVersionString": version,
        "CFBundleVersion": version,
        "CFBundleIconFile": bp.ICON_ICNS,
        "CFBundleInfoDictionaryVersion": "6.0",
        "CFBundleDevelopmentRegion": "en",
        "LSMinimumSystemVersion": bp.MIN_MACOS,
        # MLX runs on Apple silicon only; this stops the app being offered to Intel Macs.
        "LSArchitecturePriority": ["arm64"],
        "LSRequiresNativeExecution": True,
        "NSHighResolutionCapable": True,
        "NSSupportsAutomaticGraphicsSwitching": True,
        "LSApplicationCategoryType": bp.CATEGORY,
        "NSHumanReadableCopyright": "gpt-oss-20b weights: Apache-2.0, by OpenAI.",
        # Lets Qt follow the system's light/dark appearance.
        "NSRequiresAquaSystemAppearance": False,
    }


def write_info_plist(path: Path, version: str | None = None) -> dict:
    """Write the Info.plist (XML) to `path` and return the dict written."""
    data = info_plist(version)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        plistlib.dump(data, f)
    return data
