"""Custom Metal kernels for gpt-oss's MXFP4 experts, always optional.

`choose_experts(dtype, hidden, inter, top_k, limit, reference)` is called once, when the model is
built. It returns the experts function to use for every call (the kernels for decode, `reference`
for the rest) or None, and the model then runs the plain-MLX `reference` everywhere:
- not on Metal (Linux, CPU stream) or GPT_OSS_KERNELS=mlx;
- sizes the kernels don't take (hidden or intermediate not a multiple of 32) or a dtype they lack;
- the self-test against `reference` failed or a kernel did not compile: one log line, then off
  for the session.
In auto mode more tokens than build.GEMV_MAX_TOKENS (a prefill) go to `reference` while
PREFILL_KERNELS is False: our sorted-pair GEMM kernels are verified but not yet measured against
MLX's sorted gather_qmm on a Mac (bench/kernels.py does that); until they win there, prefill stays
on MLX.

GPT_OSS_KERNELS=auto (default) | metal (every kernel, prefill GEMMs included, without the self-test
gate) | mlx (never). Read when the model is built, never per call.
The .metal sources are verified on the CPU by tests/metal (see docs/metal_kernels.md).

# N tokens, K experts per token, E experts, D hidden, I expert intermediate
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)

ENV_VAR = "GPT_OSS_KERNELS"
MODES = ("auto", "metal", "mlx")
PREFILL_KERNELS = False  # flip once a Mac measurement shows the GEMMs beat sorted gather_qmm
SELF_TEST_TOKENS = (1, 3, 64)

_lock = threading.Lock()
_off_reason: str | None = None  # set once: the kernels are off for this session
_tested: set[tuple] = set()  # (dtype, D, I, K) that passed the self-test
_logged = False


def mode() -> str:
    """The GPT_OSS_KERNELS setting (unknown values mean auto, with a log line)."""
    value = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if value not in MODES:
        _log_once(f"{ENV_VAR}={value!r} is not one of {', '.join(MODES)}; using auto")
        return "auto"
    return value


def _log_once(message: str, level: int = logging.INFO) -> None:
    global _logged
    if not _logged:
        _logged = True
        log.log(level, message)


def _switch_off(reason: str) -> None:
    global _off_reason
    _off_reason = reason
    log.warning("custom Metal kernels switched off for this session: %s; using MLX's gather_qmm", reason)


def reset_session() -> None:
    """Forget self-test results and the off switch (tests; a fresh start)."""
    global _off_reason, _logged
    with _lock:
        _off_reason = None
        _logged = False
        _tested.clear()


def metal_available() -> bool:
    try:
        import mlx.core as mx

        return bool(mx.metal.is_available()) and mx.default_device() == mx.gpu
    except Exception:  # no MLX, or an MLX without the metal module
        return False


def choose_experts(dtype, hidden: int, inter: int, top_k: int, limit: float, reference):
    """Decide once, at load: an experts function f(x [N, D], idx [N, K], weights [N, K], ew, limit)
    -> [N, D] that uses the kernels, or None when they are off (use `reference`, engine.moe's
    plain-MLX experts, which the first-use self-test also compares the kernels against)."""
    m = mode()
    if m == "mlx" or _off_reason is not None:
        return None
    if not metal_available():
        _log_once("custom Metal kernels off: Metal is not available here; using MLX's gather_qmm")
        return None
    from . import launch as L
    from .build import DTYPE_NAMES, GEMV_MAX_TOKENS, experts_metal

    why = L.check_shapes(1, top_k, hidden, inter)
    if dtype not in DTYPE_NAMES or why is not None:
        _log_once(f"custom Metal kernels not used: {why or f'no kernels for {dtype}'}")
        return None
    if m == "auto":
        key = (DTYPE_NAMES[dtype], hidden, inter, top_k)
        with _lock:
            if key not in _tested:
                from .selftest import self_test

                problem = self_test(hidden, inter, top_k, dtype, limit, reference)
                if problem is not None:
                    _switch_off(problem)
                    return None
                _tested.add(key)
    prefill_kernels = PREFILL_KERNELS or m == "metal"

    def experts_kernels(x, idx, weights, ew, limit):
        if x.shape[0] > GEMV_MAX_TOKENS and not prefill_kernels:
            return reference(x, idx, weights, ew, limit)
        return experts_metal(x, idx, weights, ew, limit)

    return experts_kernels
