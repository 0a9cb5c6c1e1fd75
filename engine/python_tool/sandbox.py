"""The walls around the kernel: which command starts it, per platform.

Linux: bubblewrap. The sandbox's filesystem starts EMPTY (and is made read-only once set up) and
only what the kernel needs is bound into it read-only: system folders, the interpreter with its
standard library, the site-packages that hold the kernel's packages, and the entry script; never
the folder the app was started from, a checkout on sys.path, or the home. Then the chat's folder
read-write and the folder of the kernel's sockets. So the user's home, ~/.ssh, other chats and the
model files simply do not exist inside. New network, pid, ipc and uts namespaces: no network at
all, only a loopback that reaches nothing of the host. /tmp and /dev/shm are small private tmpfs.
A seccomp filter (seccomp.py) denies what a container runtime denies; no capability is left.
macOS: sandbox-exec with a generated deny-by-default profile (see macos_profile()).

The kernel talks to the app over ZMQ *ipc* (unix sockets in the run folder), not TCP: a kernel
in its own network namespace can't reach the host's loopback, while a unix socket is a file and
crosses namespaces through the bind mount. The macOS profile allows exactly those sockets. The
messages are signed with a random key that reaches the kernel through an inherited pipe, never
through a file the sandbox can read.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from engine.python_tool.limits import Limits

ENTRY = Path(__file__).with_name("kernel_entry.py")
# The frozen app is its own kernel: started with this flag it runs kernel_entry.main, no window.
KERNEL_FLAG = "--python-tool-kernel"
NOBODY = 65534
# As root, each kernel runs as a uid (and gid) of its own, with no name, never `nobody`: RLIMIT_NPROC
# counts per user, so a fork bomb in one chat can't starve another chat's kernel (or a daemon that
# runs as nobody), and no other process on the host shares the kernel's user. Above the ranges
# container tools hand out (systemd-nspawn's end at 0x6FFF0000), below systemd's reserved 0x80000000.
SANDBOX_UIDS = range(0x7E000000, 0x7F000000)
DATA_DRIVE = "/mnt/data"  # the chat folder's second name inside the Linux sandbox

# Linux system folders the interpreter and its C libraries read; missing ones are skipped.
_SYSTEM_DIRS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]
# Single files from /etc: name lookups, the dynamic linker, time zone. Never the whole /etc
# (shadow, ssh host keys, credentials of services).
_ETC = ["passwd", "group", "nsswitch.conf", "hosts", "ld.so.cache", "ld.so.conf", "ld.so.conf.d",
        "localtime", "timezone", "mime.types", "alternatives", "fonts"]


@dataclass(frozen=True)
class SandboxSpec:
    """Everything the command depends on, so that building it is a pure function (and testable)."""

    workdir: Path       # the chat's folder: the only place the code can write that outlives it
    run_dir: Path       # the kernel's sockets (and, on macOS, HOME and TMPDIR); never the connection file
    python: Path        # the interpreter that has ipykernel
    limits: Limits
    read_only: tuple[Path, ...]  # what Python needs besides the system
    home: Path          # the user's home, hidden (macOS; on Linux nothing unbound is visible)
    as_nobody: bool = False           # root: the code runs as `uid` (see SANDBOX_UIDS), not as root
    uid: int = NOBODY
    connection_fd: int | None = None  # a pipe holding the connection file's JSON (key included)
    seccomp_fd: int | None = None     # the BPF program for bubblewrap (Linux)
    hidden: tuple[Path, ...] = ()     # macOS: folders to deny besides the home (the start folder, sys.path)


def sandbox_uid() -> int:
    """A fresh uid for one root-mode kernel (a random one in SANDBOX_UIDS: two kernels alive at once
    share one with a chance of about one in 16 million)."""
    import secrets

    return SANDBOX_UIDS[secrets.randbelow(len(SANDBOX_UIDS))]


def python_paths(python: str | os.PathLike = sys.executable) -> tuple[Path, ...]:
    """What the kernel's Python must read, and nothing more: each prefix's bin/ and lib/ (the
    interpreter, its standard library, a venv's site-packages) and a venv's pyvenv.cfg, the
    site-packages folders that hold ipykernel and what it needs, and the entry script alone. Never
    the folder the app was started from or a checkout on sys.path (they are not site folders), the
    home folder itself, an ancestor of it, or /."""
    home = Path.home().resolve()
    exe = Path(os.path.realpath(python))
    if is_frozen_app(python):
        # The app's own files only: the onedir folder on Linux, Contents/ (MacOS, Frameworks,
        # Resources) on macOS; never the folder the app was unpacked beside.
        return (exe.parent.parent if sys.platform == "darwin" else exe.parent,)
    candidates = [ENTRY, exe.parent]
    for prefix in {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), exe.parent.parent}:
        # "Python" is a framework build's library (macOS).
        candidates += [prefix / name for name in ("bin", "lib", "lib64", "pyvenv.cfg", "Python")]
    if exe == Path(os.path.realpath(sys.executable)):
        candidates += _kernel_site_dirs()  # another interpreter's packages are under its prefix
    chosen: list[Path] = []
    for path in candidates:
        if not os.path.exists(path):
            continue
        path = path.resolve()
        if path == Path("/") or path == home or path in home.parents:
            continue
        if any(path == c or c in path.parents for c in chosen):
            continue
        chosen = [c for c in chosen if path not in c.parents] + [path]
    return tuple(chosen)


@lru_cache(maxsize=1)
def _kernel_site_dirs() -> tuple[Path, ...]:
    """The interpreter's own site-packages and every folder holding ipykernel or a package it
    needs, found through the packages' metadata (a user site, a --system-site-packages venv)."""
    import site
    from importlib import metadata

    found = {Path(p) for p in site.getsitepackages() if os.path.isdir(p)}
    try:
        from packaging.requirements import Requirement
    except ImportError:
        Requirement = None
    seen, todo = set(), ["ipykernel", "jupyter_client"]
    while todo:
        name = todo.pop().lower().replace("-", "_")
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found.add(Path(dist.locate_file("")))
        for line in (dist.requires or []) if Requirement else []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return tuple(sorted(found))


def hidden_paths(read_only: tuple[Path, ...]) -> tuple[Path, ...]:
    """Folders the kernel must not read that a deny-by-default filesystem (Linux) hides anyway
    but macOS's read-everything-but profile would show: the start folder and every sys.path
    folder that is not one of Python's own (read_only)."""
    found = []
    for p in [os.getcwd(), *sys.path]:
        if not p or not os.path.isdir(p):
            continue
        path = Path(p).resolve()
        # Denied before the carve-outs (later rules win): a checkout holding the entry script is
        # hidden all the same, the script itself comes back.
        if path == Path("/") or any(path == r or r in path.parents for r in read_only):
            continue
        if path not in found:
            found.append(path)
    return tuple(found)


def sandbox_env(spec: SandboxSpec) -> dict[str, str]:
    """A clean environment: nothing of the app's (tokens, paths) leaks into the kernel."""
    if sys.platform == "darwin":
        home, tmp = spec.run_dir / "home", spec.run_dir / "tmp"
    else:
        home, tmp = Path("/tmp/home"), Path("/tmp")
    extra = [str(p) for p in spec.read_only if p.is_dir() and not _is_prefix(p, spec.python)]
    env = {
        "PATH": os.pathsep.join([str(Path(spec.python).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(home), "TMPDIR": str(tmp), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "IPYTHONDIR": str(home / ".ipython"), "MPLCONFIGDIR": str(home / ".matplotlib"),
        "XDG_CACHE_HOME": str(home / ".cache"), "JUPYTER_RUNTIME_DIR": str(home / ".jupyter"),
        "PYTHONDONTWRITEBYTECODE": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        # Fewer malloc arenas and BLAS threads: each reserves address space counted by RLIMIT_AS.
        "MALLOC_ARENA_MAX": "2", "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    if extra:
        env["PYTHONPATH"] = os.pathsep.join(extra)
    return env


def _is_prefix(path: Path, python: Path) -> bool:
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    prefixes.add(Path(os.path.realpath(python)).parent.parent)
    return any(path == p or p in path.parents for p in prefixes)


def is_frozen_app(python: str | os.PathLike) -> bool:
    """Whether `python` is this frozen (PyInstaller) app itself rather than a Python interpreter."""
    return bool(getattr(sys, "frozen", False)) and os.path.realpath(python) == os.path.realpath(sys.executable)


def entry_args(spec: SandboxSpec) -> list[str]:
    lim = spec.limits
    entry = KERNEL_FLAG if is_frozen_app(spec.python) else str(ENTRY)
    args = [str(spec.python), entry, str(spec.connection_fd),
            str(lim.memory), str(lim.processes), str(lim.file_size)]
    if spec.as_nobody:
        args += [str(spec.uid), str(spec.uid)]
    return args


# ---------------------------------------------------------------- Linux: bubblewrap

def bwrap_command(spec: SandboxSpec, bwrap: str = "bwrap") -> list[str]:
    """The bwrap argv that starts the kernel. Later mounts win, so the chat folder comes last."""
    cmd = [bwrap, "--die-with-parent", "--new-session",  # new session: no TIOCSTI into our terminal
           "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
           "--hostname", "sandbox", "--cap-drop", "ALL"]
    if spec.as_nobody:
        # No user namespace: the entry needs setuid to become nobody and SETPCAP to empty the
        # bounding set first; after setuid it holds no capability at all.
        cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    else:
        cmd += ["--unshare-user", "--disable-userns"]
    if spec.seccomp_fd is not None:
        cmd += ["--seccomp", str(spec.seccomp_fd)]
    for d in _SYSTEM_DIRS:
        if os.path.islink(d):
            cmd += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            cmd += ["--ro-bind", d, d]
    for name in _ETC:
        if os.path.exists(f"/etc/{name}"):
            cmd += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    cmd += ["--proc", "/proc", "--dev", "/dev"]
    size = str(spec.limits.tmp_size)
    cmd += ["--perms", "1777", "--size", size, "--tmpfs", "/tmp",
            "--perms", "1777", "--size", size, "--tmpfs", "/dev/shm"]
    binds = [("--ro-bind", path) for path in spec.read_only]
    binds += [("--bind", spec.run_dir), ("--bind", spec.workdir)]
    # bwrap makes missing parents of a mount point 0700 and root's: nobody couldn't pass them.
    made: set[Path] = set()
    for _, path in binds:
        for parent in reversed(path.parents):
            if parent != Path("/") and parent not in made and str(parent) not in ("/tmp", "/dev"):
                made.add(parent)
                cmd += ["--perms", "0755", "--dir", str(parent)]
    for kind, path in binds:
        cmd += [kind, str(path), str(path)]
    # gpt-oss was told "The drive at '/mnt/data' can be used to save and persist user files":
    # here it can, it is the chat folder again (and the working directory).
    cmd += ["--perms", "0755", "--dir", "/mnt", "--bind", str(spec.workdir), DATA_DRIVE]
    # The root itself read-only: the only writable places are the mounts meant to be.
    cmd += ["--remount-ro", "/"]
    return cmd + ["--chdir", DATA_DRIVE, "--"] + entry_args(spec)


# ---------------------------------------------------------------- macOS: sandbox-exec

def _sb(path: Path | str) -> str:
    """A path as an SBPL string literal (profiles match real paths: /tmp is /private/tmp)."""
    real = os.path.realpath(path)
    return '"' + real.replace("\\", "\\\\").replace('"', '\\"') + '"'


def macos_profile(spec: SandboxSpec) -> str:
    """A deny-by-default Seatbelt profile: no network (only the kernel's own unix sockets), writes
    only in the chat folder and the run folder, no reading of the home folder (beyond the chat
    folder and Python's own files), of other users' homes, external volumes or other apps' temp
    files. Child processes inherit it. Later rules win, so carve-outs follow the denials."""
    work, run = _sb(spec.workdir), _sb(spec.run_dir)
    readable = " ".join(f"(subpath {_sb(p)})" for p in spec.read_only)
    # As on Linux, where they are simply not mounted: the folder the app was started from and
    # the sys.path folders that are not Python's own (a checkout), wherever they are.
    hidden = "".join(f" (subpath {_sb(p)})" for p in spec.hidden)
    return "\n".join([
        "(version 1)",
        "(deny default)",
        "(allow process-fork process-exec)",
        "(allow signal process-info* (target same-sandbox))",
        "(allow sysctl-read user-preference-read mach-host*)",
        "(allow ipc-posix-sem ipc-posix-shm)",  # multiprocessing's locks and shared memory
        '(allow mach-lookup (global-name "com.apple.system.opendirectoryd.libinfo")'  # getpwuid
        ' (global-name "com.apple.system.notification_center"))',                  # time zones
        '(allow iokit-open (iokit-registry-entry-class "RootDomainUserClient"))',
        ";; network: none, except the unix sockets of this kernel's own connection",
        "(deny network*)",
        "(allow system-socket (socket-domain AF_UNIX))",
        f"(allow network-bind network-inbound (local unix-socket (subpath {run})))",
        f"(allow network-outbound (remote unix-socket (subpath {run})))",
        ";; reading: the system yes; the home folder, other homes, volumes, temp files of others no",
        "(allow file-read*)",
        f'(deny file-read* (subpath {_sb(spec.home)}) (subpath "/Users") (subpath "/Volumes")'
        f' (subpath "/private/var/folders") (subpath "/private/tmp") (subpath "/private/var/root"){hidden})',
        # Names along the way stay visible (realpath, stat), never contents or listings.
        '(allow file-read-metadata)',
        f"(allow file-read* (subpath {work}) (subpath {run}) {readable})",
        ";; writing: the chat folder and the run folder only",
        f"(allow file-write* (subpath {work}) (subpath {run}))",
        '(allow file-write-data file-ioctl (literal "/dev/null") (literal "/dev/zero") (literal "/dev/tty"))',
        "",
    ])


def sandbox_exec_command(spec: SandboxSpec) -> list[str]:
    return ["/usr/bin/sandbox-exec", "-p", macos_profile(spec)] + entry_args(spec)


# ---------------------------------------------------------------- both

def sandbox_command(spec: SandboxSpec) -> list[str]:
    """The argv that starts the sandboxed kernel on this platform."""
    if sys.platform == "darwin":
        return sandbox_exec_command(spec)
    return bwrap_command(spec, shutil.which("bwrap") or "bwrap")


FROZEN = ("This build of the app was made without the Python tool's kernel (ipykernel), so the tool is off; "
          "download the app again, or run it from source (see docs/python_tool.md).")


@lru_cache(maxsize=1)
def sandbox_problem(python: str = sys.executable) -> str | None:
    """None when the sandbox can run here with that interpreter, else one sentence saying why not
    and what to do."""
    try:
        # The frozen app runs its kernel from its own bundle (KERNEL_FLAG), so these must be in it.
        import ipykernel.kernelapp  # noqa: F401
        import jupyter_client  # noqa: F401
        import psutil  # noqa: F401
    except ImportError:
        if is_frozen_app(python):
            return FROZEN
        return "The Python tool needs ipykernel, jupyter-client and psutil: pip install ipykernel jupyter-client psutil."
    if sys.platform == "darwin":
        probe = ["/usr/bin/sandbox-exec", "-p", "(version 1)(allow default)(deny network*)", "/usr/bin/true"]
        if not os.path.exists(probe[0]):
            return "macOS's sandbox-exec is missing, so the Python tool can't run code safely here."
    elif sys.platform.startswith("linux"):
        bwrap = shutil.which("bwrap")
        if not bwrap:
            return "The Python tool needs bubblewrap: install it (sudo apt install bubblewrap) and restart."
        probe = [bwrap, "--unshare-net", "--unshare-pid", "--ro-bind", "/", "/", "--dev", "/dev",
                 "--proc", "/proc"]
        probe += [] if os.geteuid() == 0 else ["--unshare-user"]
        probe += ["true"]
        from engine.python_tool.seccomp import seccomp_problem

        problem = seccomp_problem()
        if problem:
            return problem
    else:
        return "The Python tool runs code only on macOS and Linux, where it can be sandboxed."
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"The sandbox for the Python tool could not start ({e}); the tool is off."
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no reason given"])[-1]
        return (f"The sandbox for the Python tool could not start ({why}); user namespaces may be "
                "disabled on this system (sysctl kernel.unprivileged_userns_clone=1).")
    return None
