"""Work around a PySide6 6.12.0 bug: Signal.emit() returns True without taking a reference.

Each emit then steals one reference to True; on Python 3.11 (where True is not immortal) the
interpreter aborts with "bool_dealloc: deallocating True" once enough signals were emitted.
`emit()` below measures the bug once and, only if present, gives the stolen reference back.
"""
from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal


class _Probe(QObject):
    ping = Signal()


def _emit_steals_true() -> bool:
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(8):
        probe.ping.emit()
    return sys.getrefcount(True) - before <= -8


_STEALS = None


def emit(signal, *args) -> None:
    """signal.emit(*args), with the stolen reference to True returned when PySide6 has the bug."""
    global _STEALS
    if _STEALS is None:
        _STEALS = _emit_steals_true()
        if _STEALS:  # the probe itself stole 8
            for _ in range(8):
                ctypes.pythonapi.Py_IncRef(ctypes.py_object(True))
    result = signal.emit(*args)
    if _STEALS and result is True:
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(True))
