"""Entry point of the frozen app: starts `app.__main__.main()`, exactly as `python -m app` does.

Smoke-test mode (GPT_OSS_CHAT_SMOKE_TEST=1), used by tests/mac_app and the macOS CI job: before the
app starts it checks what freezing tends to break (MLX and its metallib, our .metal sources,
mlx-lm's dynamically loaded model file, tiktoken, Pygments' lexers and styles); then it lets the app start normally and, once
the first screen (setup page or chat) is visible, prints one line

    GPT_OSS_CHAT_SMOKE {"screen": "setup", "checks": {...}, "ok": true}

closes the window (the app's own shutdown path) and exits: 0 if every check passed, 3 if not.

Kernel mode (`--python-tool-kernel ...`): the app is also the Python tool's Jupyter kernel, started
inside the sandbox by engine/python_tool with that flag; it runs the kernel and never opens a window.
"""
from __future__ import annotations

import json
import os
import sys

SMOKE_ENV = "GPT_OSS_CHAT_SMOKE_TEST"
SMOKE_PREFIX = "GPT_OSS_CHAT_SMOKE "
SMOKE_TIMEOUT_MS = 60_000


def _describe(e: BaseException) -> str:
    """The exception and its causes in one line (extension modules hide the real error in __cause__)."""
    parts = []
    while e is not None and len(parts) < 4:
        parts.append(f"{type(e).__name__}: {e}")
        e = e.__cause__ or e.__context__
    return " <- ".join(parts)


def _check_mlx() -> tuple[bool, str]:
    """One tiny MLX computation; on a Mac this loads the Metal device and mlx.metallib."""
    try:
        import mlx.core as mx
        value = (mx.arange(4, dtype=mx.float32) * 2).sum().item()
        return value == 12.0, f"ok on {mx.default_device()}"
    except Exception as e:  # the message is the finding; a traceback would hide it
        text = _describe(e)
        # A VM without a usable GPU (some CI runners) is not a packaging fault; a missing metallib is.
        return ("metallib" not in text and "Failed to load device" in text), text


def _check_kernels() -> tuple[bool, str]:
    try:
        from engine.metal_kernels import launch
        # Every kernel the engine declares, read the way the engine reads it.
        specs = [v for v in vars(launch).values() if isinstance(v, launch.KernelSpec)]
        sources = [launch.helpers_source()] + [spec.source() for spec in specs]
        return all(s.strip() for s in sources), f"{len(sources)} .metal sources read"
    except Exception as e:
        return False, f"{type(e).__name__}: {e}"


def _check_frozen_module(name: str) -> tuple[bool, str]:
    """Is `name` in the bundle? Found through the import system without importing its parents
    (mlx_lm/__init__ imports transformers, which the bundle leaves out on purpose)."""
    import importlib.machinery
    parts = name.split(".")
    roots = [getattr(sys, "_MEIPASS", "")] + sys.path
    for root in roots:
        path = os.path.join(root, *parts[:-1])
        spec = importlib.machinery.PathFinder.find_spec(name, [path])
        if spec is not None:
            return True, "found"
    return False, "not in the bundle"


def _check_tiktoken() -> tuple[bool, str]:
    try:
        import tiktoken  # noqa: F401  (the engine builds its Encoding from tokenizer.json)
        import engine.tokenizer  # noqa: F401
        return True, "ok"
    except Exception as e:
        return False, f"{type(e).__name__}: {e}"


def _check_highlighting() -> tuple[bool, str]:
    """Code blocks: Pygments finds lexers and styles by name at runtime, which freezing can miss."""
    try:
        from app.ui.markdown_view import highlight_html
        coloured = [highlight_html("def f(x):\n    return x + 1", "python", dark) for dark in (False, True)]
        return all("<span" in h for h in coloured), "python, light and dark"
    except Exception as e:
        return False, _describe(e)


def _check_python_tool() -> tuple[bool, str]:
    """The Python tool end to end: the app starts itself as the sandboxed kernel and runs code."""
    try:
        import tempfile

        from engine.python_tool import Limits, PythonTool, sandbox_problem
        problem = sandbox_problem()
        if problem:
            return False, problem
        # A folder the tool makes itself, as the app's chats are (mkdtemp's own is 0700: run as
        # root, the sandbox drops the capability that would let it enter a folder it gave away).
        with tempfile.TemporaryDirectory() as top, PythonTool(os.path.join(top, "chat"), Limits(timeout=60.0)) as tool:
            out = tool.run("import sys\nprint(6 * 7, sys.version_info[0])")
        return out.error is None and out.text.split() == ["42", "3"], (out.error or out.text.strip())[:200]
    except Exception as e:
        return False, _describe(e)


def run_checks() -> dict:
    """Every bundle check, as {name: {"ok": bool, "detail": str}}."""
    checks = {
        "mlx": _check_mlx(),
        "metal_kernels": _check_kernels(),
        "mlx_lm_gpt_oss": _check_frozen_module("mlx_lm.models.gpt_oss"),
        "tiktoken": _check_tiktoken(),
        "highlighting": _check_highlighting(),
        "python_tool": _check_python_tool(),
    }
    return {k: {"ok": bool(ok), "detail": detail} for k, (ok, detail) in checks.items()}


def _install_first_screen_probe(checks: dict) -> None:
    """Swap in a QApplication that, once running, reports the first screen and quits."""
    import PySide6.QtWidgets as qtw
    from PySide6.QtCore import QTimer

    base = qtw.QApplication
    state = {"waited": 0}

    def first_screen() -> str | None:
        for w in base.topLevelWidgets():
            stack = getattr(w, "stack", None)
            if w.isVisible() and stack is not None:
                return "setup" if stack.currentWidget() is getattr(w, "setup", None) else "chat"
        return None

    def probe() -> None:
        screen = first_screen()
        if screen is None and state["waited"] < SMOKE_TIMEOUT_MS:
            state["waited"] += 100
            QTimer.singleShot(100, probe)
            return
        ok = screen is not None and all(c["ok"] for c in checks.values())
        report = {"screen": screen, "platform": base.platformName(), "checks": checks, "ok": ok}
        print(SMOKE_PREFIX + json.dumps(report), flush=True)
        base.instance().setProperty("smoke_exit_code", 0 if ok else 3)
        for w in base.topLevelWidgets():
            w.close()                      # the app's own shutdown path (stops the engine thread)
        QTimer.singleShot(2000, base.instance().quit)   # in case a window refused to close

    class SmokeApplication(base):
        def exec(self):
            QTimer.singleShot(0, probe)
            code = super().exec()
            smoke = self.property("smoke_exit_code")
            return code if smoke in (None, 0) else smoke

    qtw.QApplication = SmokeApplication


def main() -> int:
    from engine.python_tool.sandbox import KERNEL_FLAG
    if sys.argv[1:2] == [KERNEL_FLAG]:
        from engine.python_tool.kernel_entry import main as kernel_main
        kernel_main(sys.argv[2:])
        return 0
    smoke = os.environ.get(SMOKE_ENV, "") not in ("", "0")
    if smoke:
        _install_first_screen_probe(run_checks())
    from app.__main__ import main as app_main
    return app_main()


if __name__ == "__main__":
    sys.exit(main())
