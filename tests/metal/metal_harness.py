"""Run a Metal kernel body on the CPU: wrap it exactly as mx.fast.metal_kernel does, compile the
result with clang++ against metal_shim.h, and run the grid lane by lane (driver.cpp).

The wrapper mirrors MLX's `write_signature` (mlx/backend/metal/custom_kernel / fast.cpp): header
text, `template <...>` for the template arguments, `[[kernel]] void name(` then each input as
`const device|constant <type>* name [[buffer(i)]]` (constant when it has fewer than 8 elements, a
reference when 0-d), followed by `name_shape` / `name_strides` / `name_ndim` only when the body
mentions them, the outputs as `device <type>* name`, and the attributes the body mentions.

Memory is made hostile so bugs show: inputs sit between guard bands of NaN bytes (a read past an
edge yields NaN), outputs and threadgroup memory start as NaN bytes (an unwritten element or a read
before a barrier yields NaN), and writes into an output's guard bands are reported.

Compiled objects are cached by a hash of the complete generated source (and the host, since they
are built with -march=native: fma() must be the hardware instruction, not libm's slow emulation).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("METAL_SHIM_CACHE", Path(tempfile.gettempdir()) / "gptoss-metal-shim"))
GUARD = 4096  # bytes of NaN on each side of every buffer

MAX_CONSTANT_ARRAY_SIZE = 8  # MLX passes smaller inputs in the constant address space
# (attribute, type) in the order MLX checks them.
METAL_ATTRIBUTES = [
    ("dispatch_quadgroups_per_threadgroup", "uint"),
    ("dispatch_simdgroups_per_threadgroup", "uint"),
    ("dispatch_threads_per_threadgroup", "uint3"),
    ("grid_origin", "uint3"),
    ("grid_size", "uint3"),
    ("quadgroup_index_in_threadgroup", "uint"),
    ("quadgroups_per_threadgroup", "uint"),
    ("simdgroup_index_in_threadgroup", "uint"),
    ("simdgroups_per_threadgroup", "uint"),
    ("thread_execution_width", "uint"),
    ("thread_index_in_quadgroup", "uint"),
    ("thread_index_in_simdgroup", "uint"),
    ("thread_index_in_threadgroup", "uint"),
    ("thread_position_in_grid", "uint3"),
    ("thread_position_in_threadgroup", "uint3"),
    ("threadgroup_position_in_grid", "uint3"),
    ("threadgroups_per_grid", "uint3"),
    ("threads_per_grid", "uint3"),
    ("threads_per_simdgroup", "uint"),
    ("threads_per_threadgroup", "uint3"),
]
# How the driver's per-lane attributes answer each one (unsupported ones fail to compile, loudly).
ATTRIBUTE_VALUES = {
    "simdgroup_index_in_threadgroup": "a.simdgroup_index_in_threadgroup",
    "simdgroups_per_threadgroup": "a.simdgroups_per_threadgroup",
    "dispatch_simdgroups_per_threadgroup": "a.simdgroups_per_threadgroup",
    "thread_execution_width": "32u",
    "threads_per_simdgroup": "32u",
    "thread_index_in_simdgroup": "a.thread_index_in_simdgroup",
    "thread_index_in_threadgroup": "a.thread_index_in_threadgroup",
    "thread_position_in_grid": "a.thread_position_in_grid",
    "thread_position_in_threadgroup": "a.thread_position_in_threadgroup",
    "threadgroup_position_in_grid": "a.threadgroup_position_in_grid",
    "threadgroups_per_grid": "a.threadgroups_per_grid",
    "threads_per_grid": "a.threads_per_grid",
    "grid_size": "a.threads_per_grid",
    "threads_per_threadgroup": "a.threads_per_threadgroup",
    "dispatch_threads_per_threadgroup": "a.threads_per_threadgroup",
}

METAL_TYPES = {
    "float32": "float", "float16": "float16_t", "bfloat16": "bfloat16_t", "uint32": "uint32_t",
    "uint8": "uint8_t", "int32": "int32_t", "int64": "int64_t", "uint16": "uint16_t", "bool": "bool",
}
# bfloat16 arrays travel as uint16 bit patterns (NumPy has no bfloat16).
STORAGE = {"bfloat16": np.uint16}


class KernelError(RuntimeError):
    """The kernel failed to compile, diverged at a collective, or wrote out of bounds."""


@dataclass
class Arg:
    """An input array for the kernel; dtype names the Metal-side type ("bfloat16" for uint16 bits)."""

    array: np.ndarray
    dtype: str


def clang() -> str | None:
    """Path of clang++ (None when not installed)."""
    return shutil.which("clang++") or shutil.which("clang")


def to_bf16_bits(a: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (round to nearest even, as MLX does)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def from_bf16_bits(b: np.ndarray) -> np.ndarray:
    return (b.astype(np.uint32) << 16).view(np.float32)


_THREADGROUP_DECL = re.compile(
    r"(?m)^(\s*)threadgroup\s+([A-Za-z_][\w:<>, ]*?)\s+([A-Za-z_]\w*)\s*((?:\[[^\]]+\])+)\s*;")


def rewrite_threadgroup_storage(body: str) -> str:
    """`threadgroup T name[A][B];` -> a reference to storage shared by the group's lanes only."""
    counter = iter(range(1000))

    def repl(m: re.Match) -> str:
        indent, typ, name, dims = m.groups()
        t = f"{typ}{dims}"
        return (f"{indent}{typ} (&{name}){dims} = *reinterpret_cast<{typ}(*){dims}>("
                f"mtl_shim::threadgroup_slot({next(counter)}, sizeof({t})));")

    return _THREADGROUP_DECL.sub(repl, body)


def generate_source(name, input_names, output_names, body, header, inputs, output_dtypes, template):
    """The kernel text as MLX would generate it, plus the driver glue (source, call expression)."""
    shape_infos = [(f"{n}_shape" in body, f"{n}_strides" in body, f"{n}_ndim" in body) for n in input_names]
    attributes = [(a, t) for a, t in METAL_ATTRIBUTES if a in body]
    src = ["#include \"metal_shim.h\"", f"#line 1 \"{header[0]}\"", header[1]]
    if template:
        kinds = ["typename" if isinstance(v, str) else ("bool" if isinstance(v, bool) else "int")
                 for _, v in template]
        src.append("template <" + ", ".join(f"{k} {n}" for k, (n, _) in zip(kinds, template)) + ">")
    params, call, bufs = [], [], []
    for n, arg, info in zip(input_names, inputs, shape_infos):
        t = METAL_TYPES[arg.dtype]
        loc = "constant" if arg.array.size < MAX_CONSTANT_ARRAY_SIZE else "device"
        ref = "&" if arg.array.ndim == 0 else "*"
        params.append(f"  const {loc} {t}{ref} {n} [[buffer({len(bufs)})]]")
        call.append(f"*(const {t}*)bufs[{len(bufs)}]" if ref == "&" else f"(const {t}*)bufs[{len(bufs)}]")
        bufs.append(("in", arg))
        if arg.array.ndim > 0:
            for flag, suffix, ctype, value in (
                (info[0], "_shape", "int*", np.array(arg.array.shape, np.int32)),
                (info[1], "_strides", "int64_t*", np.array([s // arg.array.itemsize for s in arg.array.strides], np.int64)),
                (info[2], "_ndim", "int&", np.array(arg.array.ndim, np.int32)),
            ):
                if flag:
                    params.append(f"  const constant {ctype} {n}{suffix} [[buffer({len(bufs)})]]")
                    base = ctype.rstrip("*&")
                    call.append(f"*(const {base}*)bufs[{len(bufs)}]" if ctype.endswith("&") else f"(const {base}*)bufs[{len(bufs)}]")
                    bufs.append(("meta", Arg(value, "int32" if base == "int" else "int64")))
    for n, dt in zip(output_names, output_dtypes):
        params.append(f"  device {METAL_TYPES[dt]}* {n} [[buffer({len(bufs)})]]")
        call.append(f"({METAL_TYPES[dt]}*)bufs[{len(bufs)}]")
        bufs.append(("out", dt))
    for a, t in attributes:
        params.append(f"  {t} {a} [[{a}]]")
        call.append(ATTRIBUTE_VALUES[a])
    src.append(f"[[kernel]] void {name}(\n" + ",\n".join(params) + ") {")
    src.append(f"#line 1 \"{name}.metal\"")
    src.append(rewrite_threadgroup_storage(body))
    src.append("}")
    targs = ""
    if template:
        targs = "<" + ", ".join(METAL_TYPES[v] if isinstance(v, str) else str(int(v)) for _, v in template) + ">"
    src.append("namespace mtl_shim { struct LaneAttrs {\n"
               "  uint3 thread_position_in_grid, thread_position_in_threadgroup, threadgroup_position_in_grid;\n"
               "  uint3 threads_per_threadgroup, threads_per_grid, threadgroups_per_grid;\n"
               "  uint thread_index_in_threadgroup, thread_index_in_simdgroup, simdgroup_index_in_threadgroup;\n"
               "  uint simdgroups_per_threadgroup;\n}; void invoke_kernel(void**, const LaneAttrs&); }")
    src.append("void mtl_shim::invoke_kernel(void** bufs, const LaneAttrs& a) {\n  (void)a;\n"
               f"  {name}{targs}(" + ", ".join(call) + ");\n}")
    return "\n".join(src) + "\n", bufs


def _build(key: str, suffix: str, text: str, args: list[str]) -> Path:
    """Compile `text` once per content hash into CACHE/<key><suffix> (atomic rename)."""
    cc = clang()
    if cc is None:
        raise KernelError("clang is not installed (apt-get install clang)")
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / f"{key}{suffix}"
    if not out.exists():
        src = CACHE / f"{key}.cpp"
        src.write_text(text)
        tmp = CACHE / f"{key}.{os.getpid()}{suffix}"
        cmd = [cc, "-x", "c++", "-std=c++17", "-O2", "-march=native", "-fPIC", "-fvisibility=hidden", "-w", f"-I{HERE}", str(src), *args, "-o", str(tmp)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise KernelError("the kernel does not compile:\n" + r.stderr[-4000:])
        os.replace(tmp, out)
    return out


def compile_source(text: str) -> ctypes.CDLL:
    """Compile (or reuse the cached build of) one generated source, linked with the grid driver
    (itself compiled once); returns the loaded library."""
    shim = (HERE / "metal_shim.h").read_text()
    driver_text = (HERE / "driver.cpp").read_text()
    driver_key = hashlib.sha256((platform.node() + platform.machine() + shim + driver_text).encode()).hexdigest()[:24]
    driver = _build("driver-" + driver_key, ".o", driver_text, ["-c"])
    key = hashlib.sha256((shim + driver_key + text).encode()).hexdigest()[:24]
    lib = _build(key, ".so", text, ["-x", "none", str(driver), "-shared"])
    return ctypes.CDLL(str(lib))


def _guarded(nbytes: int) -> tuple[np.ndarray, int]:
    """A NaN-byte buffer with GUARD bytes either side; returns (buffer, offset of the payload)."""
    buf = np.full(nbytes + 2 * GUARD + 64, 0xFF, np.uint8)
    off = GUARD + (-buf.ctypes.data - GUARD) % 64  # payload 64-byte aligned, like a Metal buffer
    return buf, off


def run_kernel(name, input_names, output_names, body, header, inputs, output_shapes, output_dtypes,
               grid, threadgroup, template=(), shuffle_seed=0):
    """Run the kernel over the grid on the CPU; returns the outputs as NumPy arrays
    (bfloat16 outputs as float32). Raises KernelError for compile errors, divergent collectives
    and writes outside an output."""
    if any(g % t for g, t in zip(grid, threadgroup)) or (threadgroup[0] * threadgroup[1] * threadgroup[2]) % 32:
        raise KernelError(f"grid {grid} must be whole threadgroups of a multiple of 32 threads {threadgroup}")
    text, bufs = generate_source(name, input_names, output_names, body, header, inputs, output_dtypes, template)
    lib = compile_source(text)
    keep, ptrs, outs = [], [], []
    for kind, what in bufs:
        if kind == "out":
            shape = output_shapes[len(outs)]
            dt = np.dtype(STORAGE.get(what, what))
            nbytes = int(np.prod(shape)) * dt.itemsize
            buf, off = _guarded(nbytes)
            outs.append((buf, off, nbytes, shape, dt, what))
        else:
            a = np.ascontiguousarray(what.array)
            buf, off = _guarded(a.nbytes)
            buf[off:off + a.nbytes] = a.reshape(-1).view(np.uint8)
        keep.append(buf)
        ptrs.append(buf.ctypes.data + off)
    arr = (ctypes.c_void_p * len(ptrs))(*ptrs)
    err = ctypes.create_string_buffer(2048)
    rc = lib.mtl_run_grid(arr, (ctypes.c_int * 3)(*grid), (ctypes.c_int * 3)(*threadgroup),
                          ctypes.c_uint(shuffle_seed), err, 2048)
    if rc:
        raise KernelError(f"{name}: {err.value.decode()}")
    results = []
    for buf, off, nbytes, shape, dt, what in outs:
        if (buf[:off] != 0xFF).any() or (buf[off + nbytes:] != 0xFF).any():
            raise KernelError(f"{name}: wrote outside its output buffer")
        out = buf[off:off + nbytes].view(dt).reshape(shape).copy()
        results.append(from_bf16_bits(out) if what == "bfloat16" else out)
    return results


def run_launch(launch, inputs, body=None, header=None, shuffle_seed=0):
    """Run an engine.metal_kernels.launch.Launch with `inputs` (Args in the spec's order).
    body/header default to the shipped .metal text; tests pass mutated copies."""
    from engine.metal_kernels.launch import helpers_source, HELPERS_FILE

    spec = launch.spec
    return run_kernel(
        launch.kernel_name, spec.input_names, spec.output_names,
        spec.source() if body is None else body,
        (HELPERS_FILE, helpers_source() if header is None else header),
        inputs, launch.output_shapes, launch.output_dtypes, launch.grid, launch.threadgroup,
        launch.template, shuffle_seed)
