"""What goes into the frozen app, in one place: read by the PyInstaller spec and by
`build_mac_app.py --check`.

Pure Python on purpose (no PyInstaller import): `--check` must run on any machine, and a Linux
box has to be able to say what a macOS build would collect. Each collected item says why it is
there, because every entry here exists to fix a known way frozen MLX/Qt apps break.

This folder is not a Python package: a `packaging/__init__.py` would shadow the PyPI `packaging`
module that pip and PyInstaller import. Callers put this folder on sys.path instead.
"""
from __future__ import annotations

import importlib.util
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"

APP_NAME = "gpt-oss chat"                 # Finder name, menu bar name, .app and .dmg name
EXECUTABLE = "gpt-oss-chat"               # the binary inside Contents/MacOS (no spaces: easier in shells)
BUNDLE_ID = "io.github.gpt-oss-chat"
MIN_MACOS = "14.0"                        # MLX needs macOS 14 (Metal 3.1)
WHEEL_PLATFORM = "macosx_14_0_arm64"      # pin MLX wheels to this tag: see docs/building.md
CATEGORY = "public.app-category.productivity"
ENTRY_SCRIPT = PACKAGING / "bundle_entry.py"
ICON_ICNS = "gpt-oss-chat.icns"           # written by bundle_icon.py into the build folder

# The app imports some of these inside functions (the engine is loaded lazily on the worker
# thread); listing them makes the frozen app fail at build time rather than at first chat.
HIDDEN_IMPORTS = [
    # mlx.core imports these two from C++ at init; analysis cannot see that.
    "mlx", "mlx.core", "mlx.nn", "mlx.utils", "mlx._reprlib_fix", "mlx.__array_api_info",
    # mlx-lm picks model files by name with importlib (mlx_lm.utils), so analysis never sees them.
    "mlx_lm.models.gpt_oss", "mlx_lm.models.base", "mlx_lm.models.cache",
    "mlx_lm.models.switch_layers", "mlx_lm.models.rope_utils", "mlx_lm.models.activations",
    "tiktoken", "tiktoken_ext", "tiktoken_ext.openai_public",   # plugin found by namespace scan
    "huggingface_hub", "numpy",
    # uvicorn picks its loop, protocol and lifespan modules by name at run time (the API server).
    "uvicorn.loops.auto", "uvicorn.loops.asyncio", "uvicorn.protocols.http.auto", "uvicorn.protocols.http.h11_impl",
    "uvicorn.protocols.websockets.auto", "uvicorn.lifespan.on", "uvicorn.lifespan.off",
    "uvicorn.loops.uvloop", "uvicorn.protocols.http.httptools_impl", "uvloop", "httptools",
    # The Python tool's kernel is the app itself started with a flag (engine/python_tool/sandbox.py):
    # ipykernel and IPython are imported only in that process, so analysis of the app never sees them.
    "engine.python_tool.kernel_entry", "ipykernel", "ipykernel.kernelapp", "ipykernel.ipkernel",
    "ipykernel.zmqshell", "ipykernel.comm", "IPython", "IPython.core.interactiveshell", "comm",
    "jupyter_client", "zmq", "tornado", "psutil",
    # The Linux sandbox's seccomp filter (engine/python_tool/seccomp.py imports it when a kernel starts).
    *(["pyseccomp"] if sys.platform.startswith("linux") else []),
]
# Packages that read their own installed version at import (importlib.metadata): their dist-info
# must travel with them or the import fails in the frozen app.
METADATA = ["llguidance", "jsonschema"]
# Our own packages: every module, so lazy imports (engine_bridge, the app's API server) can't be missed.
OWN_PACKAGES = ["app", "engine", "models", "server"]
OWN_SKIP = ["models.demo_train"]          # training code for the demo model, not the app

# Never in the bundle: test and reference stacks (huge, and the app must not need them).
EXCLUDES = [
    "torch", "transformers", "tokenizers", "safetensors.torch", "pytest", "_pytest", "hypothesis",
    "pytestqt", "tests", "bench", "openai_harmony", "bpe_openai", "tkinter", "matplotlib",
    "scipy", "pandas", "sympy", "jinja2", "PIL", "models.demo_train",
    # ipykernel's debugger: optional (ipykernel runs without it), and frozen it fails to import
    # (debugpy reads its vendored sources from disk).
    "debugpy",
]
# Qt modules the app does not use (it imports QtCore, QtGui, QtWidgets only).
QT_EXCLUDES = [f"PySide6.{m}" for m in (
    "QtNetwork", "QtQml", "QtQmlFeatures", "QtQuick", "QtQuickControls2", "QtQuickTest",
    "QtQuickWidgets", "QtSql", "QtOpenGL", "QtOpenGLWidgets", "QtPrintSupport", "QtTest",
    "QtUiTools", "QtXml", "QtConcurrent", "QtDBus", "QtDesigner", "QtHelp", "QtLabsStyleKit",
    "QtSvgWidgets", "QtPdf", "QtPdfWidgets", "QtWebEngineCore", "QtWebEngineWidgets",
    "QtMultimedia", "Qt3DCore", "QtCharts", "QtDataVisualization", "QtBluetooth", "QtPositioning",
)]


@dataclass
class Item:
    """One file the bundle must hold: `dest` is its folder inside the bundle's Python root."""
    source: Path | None         # None: not installed on this host (e.g. the metallib on Linux)
    dest: str
    kind: str                   # "data" | "binary" | "auto" (collected by PyInstaller's own hooks)
    why: str
    name: str = ""              # the file name in the bundle (defaults to source's name)

    @property
    def filename(self) -> str:
        return self.name or (self.source.name if self.source else "")

    @property
    def present(self) -> bool:
        return self.source is not None and self.source.exists()


@dataclass
class Plan:
    target: str                                   # "darwin" or "linux"
    items: list[Item] = field(default_factory=list)
    hidden_imports: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)   # one sentence each; empty = buildable

    def datas(self) -> list[tuple[str, str]]:
        return [(str(i.source), i.dest) for i in self.items if i.kind == "data" and i.present]

    def binaries(self) -> list[tuple[str, str]]:
        return [(str(i.source), i.dest) for i in self.items if i.kind == "binary" and i.present]

    def bundle_paths(self) -> list[str]:
        """Every planned file as a path inside the bundle's Python root (for reports and tests)."""
        return [f"{i.dest}/{i.filename}" for i in self.items]


def project_version(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """`version` from pyproject.toml's [project] table."""
    text = pyproject.read_text()
    try:
        import tomllib
        return str(tomllib.loads(text)["project"]["version"])
    except ImportError:   # Python 3.10: no tomllib; the key is a plain string line
        m = re.search(r'(?m)^version\s*=\s*"([^"]+)"', text)
        if not m:
            raise ValueError(f"no version in {pyproject}")
        return m.group(1)


def package_dir(name: str) -> Path | None:
    """Where an installed package lives, without importing it (mlx is a namespace package)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def own_modules() -> list[str]:
    """Every module of app/, engine/ and models/ (minus OWN_SKIP), by walking the source tree."""
    out = []
    for pkg in OWN_PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
            mod = ".".join(parts)
            if not any(mod == s or mod.startswith(s + ".") for s in OWN_SKIP):
                out.append(mod)
    return out


def mlx_items(target: str, lib: Path | None) -> list[Item]:
    """MLX's shared libraries and, on macOS, the metallib beside them (MLX looks next to libmlx)."""
    if target == "darwin":
        items = [Item(lib / "mlx.metallib" if lib else None, "mlx/lib", "data",
                      "MLX's compiled Metal kernels; MLX loads mlx.metallib from libmlx.dylib's folder",
                      name="mlx.metallib")]
        dylibs = sorted(lib.glob("*.dylib")) if lib else []
        names = [d.name for d in dylibs] or ["libmlx.dylib"]
        items += [Item(lib / n if lib else None, "mlx/lib", "binary",
                       "MLX's library, kept in mlx/lib so the metallib sits beside it", name=n) for n in names]
        return items
    libs = sorted(lib.glob("*.so*")) if lib else []
    return [Item(p, "mlx/lib", "binary", "MLX's library (CPU backend)") for p in libs]


def kernel_items() -> list[Item]:
    src = ROOT / "engine" / "metal_kernels"
    return [Item(p, "engine/metal_kernels", "data", "our MXFP4 Metal kernels, compiled at first use")
            for p in sorted(src.glob("*.metal"))]


def folder_items(folder: Path, dest: str, why: str) -> list[Item]:
    return [Item(p, f"{dest}/{p.parent.relative_to(folder).as_posix()}".rstrip("/."), "data", why)
            for p in sorted(folder.rglob("*")) if p.is_file()]


def qt_plugin_items(target: str) -> list[Item]:
    """The platform plugins Qt needs to open a window; PyInstaller's PySide6 hook collects them."""
    qt = package_dir("PySide6")
    plugins = qt / "Qt" / "plugins" / "platforms" if qt else None
    names = ["libqcocoa.dylib"] if target == "darwin" else ["libqxcb.so", "libqoffscreen.so"]
    items = [Item(plugins / n if plugins else None, "PySide6/Qt/plugins/platforms", "auto",
                  "Qt's platform plugin: without it no window opens", name=n) for n in names]
    if target == "darwin":
        styles = qt / "Qt" / "plugins" / "styles" if qt else None
        items.append(Item(styles / "libqmacstyle.dylib" if styles else None, "PySide6/Qt/plugins/styles",
                          "auto", "the native macOS widget style (without it Qt falls back to Fusion)",
                          name="libqmacstyle.dylib"))
    return items


def missing_from_bundle(roots: list[Path], plan: Plan) -> list[str]:
    """Planned files found under none of `roots` (the bundle's Python roots), as bundle paths."""
    return [p for p in plan.bundle_paths() if not any((r / p).exists() for r in roots)]


def collection_plan(target: str = sys.platform, bundle_model: Path | None = None) -> Plan:
    """Everything the frozen app needs for `target`; `problems` lists what blocks a build here."""
    target = "darwin" if target == "darwin" else "linux"
    plan = Plan(target)
    mlx_dir = package_dir("mlx")
    lib = mlx_dir / "lib" if mlx_dir else None
    plan.items += mlx_items(target, lib if lib and lib.is_dir() else None)
    plan.items += kernel_items()
    plan.items += qt_plugin_items(target)
    demo = ROOT / "models" / "demo"
    if demo.is_dir():
        plan.items += folder_items(demo, "models/demo", "the tiny demo model, to try the app before downloading")
    if bundle_model is not None:
        bundle_model = Path(bundle_model).expanduser().resolve()
        if not (bundle_model / "config.json").is_file():
            plan.problems.append(f"{bundle_model} has no config.json; pass the folder that holds the model files.")
        else:
            plan.items += folder_items(bundle_model, f"models/bundled/{bundle_model.name}",
                                       "a model bundled for offline installs (--bundle-model)")
    plan.hidden_imports = HIDDEN_IMPORTS + own_modules()
    plan.excludes = EXCLUDES + QT_EXCLUDES

    if not plan.items or not any(i.dest == "engine/metal_kernels" for i in plan.items):
        plan.problems.append("engine/metal_kernels has no .metal files; the checkout is incomplete.")
    host = "darwin" if sys.platform == "darwin" else "linux"
    if target == host:   # only the host's own files can be checked for presence
        for item in plan.items:
            if not item.present:
                plan.problems.append(f"{item.dest}/{item.filename} is missing on this machine ({item.why}); "
                                     "reinstall the package that ships it.")
    if not ENTRY_SCRIPT.is_file():
        plan.problems.append(f"{ENTRY_SCRIPT} is missing.")
    return plan
