"""Custom Metal kernels for gpt-oss's MXFP4 experts, always optional.

`fused_experts(x, idx, weights, ew)` returns the experts' combined output [N, D] from two fused
kernels, or None whenever they are off, and engine.moe then runs its plain-MLX path:
- not on Metal (Linux, CPU stream) or GPT_OSS_KERNELS=mlx;
- in auto mode, more tokens than build.GEMV_MAX_TOKENS (a prefill) while PREFILL_KERNELS is False:
  our sorted-pair GEMM kernels are verified but not yet measured against MLX's sorted gather_qmm on
  a Mac (bench/kernels.py does that); until they win there, prefill stays on MLX;
- sizes the kernels don't take (hidden or intermediate not a multiple of 32);
- the first-use self-test failed or a kernel did not compile: one log line, then off for the session.

GPT_OSS_KERNELS=auto (default) | metal (every kernel, prefill GEMMs included, without the self-test
gate) | mlx (never).
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


def fused_experts(x, idx, weights, ew, limit: float = 7.0):
    """x [N, D], idx [N, K] expert ids, weights [N, K] router weights -> [N, D], or None when the
    custom kernels are off (the caller then runs engine.moe.experts_mlx)."""
    m = mode()
    if m == "mlx" or _off_reason is not None:
        return None
    if not metal_available():
        _log_once("custom Metal kernels off: Metal is not available here; using MLX's gather_qmm")
        return None
    from . import launch as L
    from .build import DTYPE_NAMES, GEMV_MAX_TOKENS, experts_metal

    n_tok, hidden = x.shape
    top_k = idx.shape[1]
    inter = ew.down_blocks.shape[-1] * 8
    if x.dtype not in DTYPE_NAMES or (m == "auto" and n_tok > GEMV_MAX_TOKENS and not PREFILL_KERNELS):
        return None
    why = L.check_shapes(n_tok, top_k, hidden, inter)
    if why is not None:
        _log_once(f"custom Metal kernels not used: {why}")
        return None
    if m == "auto":
        key = (DTYPE_NAMES[x.dtype], hidden, inter, top_k)
        with _lock:
            if key not in _tested:
                from .selftest import self_test

                problem = self_test(hidden, inter, top_k, x.dtype, limit)
                if problem is not None:
                    _switch_off(problem)
                    return None
                _tested.add(key)
    return experts_metal(x, idx, weights, ew, limit)
