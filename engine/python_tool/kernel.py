"""One sandboxed Jupyter kernel: start it, talk to it, watch it, kill it.

A watchdog thread counts the sandbox's processes and their resident memory (every 0.1 s while code
runs, every second while the kernel waits) and the disk the chat's folder takes (every 0.02 s while
code runs). On Linux the rlimits are the hard walls (RLIMIT_NPROC stops a fork bomb, RLIMIT_AS a
huge allocation); the watchdog is what ends a bomb's leftovers, enforces memory where the OS won't
(macOS) and the folder's disk quota. Between calls nothing of the code runs: pause() ends every
process but the kernel and stops the kernel (SIGSTOP, all its threads); resume() continues it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from engine.python_tool.folder import disk_usage, strip_setid
from engine.python_tool.limits import Limits
from engine.python_tool.sandbox import (SandboxSpec, hidden_paths, python_paths, sandbox_command, sandbox_env,
                                        sandbox_uid)


class KernelStartError(RuntimeError):
    """The sandboxed kernel did not come up; str() is the sentence for the user."""


class SandboxedKernel:
    """A kernel process inside the sandbox and a client connected to it over unix sockets."""

    # Run the code as a nameless uid of its own (not root), which takes starting as root. None: exactly when we are root (root
    # ignores RLIMIT_NPROC). Tests set False to run the user-namespace sandbox that users get.
    drop_root: bool | None = None

    def __init__(self, workdir: Path, limits: Limits, python: str = sys.executable):
        self.workdir = workdir
        self.limits = limits
        self.python = Path(python)
        drop = os.geteuid() == 0 if self.drop_root is None else self.drop_root
        self.as_nobody = sys.platform.startswith("linux") and drop
        self.proc: subprocess.Popen | None = None
        self.client = None  # jupyter_client.BlockingKernelClient once started
        self.run_dir: Path | None = None
        self.log = b""  # the last 8 kB the kernel wrote to stderr, for start errors
        self.killed_because: str | None = None   # set by the watchdog before it kills
        self.first_pids: list[int] = []
        self.kernel_pid: int | None = None  # the host pid of the kernel process itself
        self._stop_watch = threading.Event()
        self.busy = threading.Event()  # set (through working()) while code runs: the watchdog looks closer
        self._nudge = threading.Event()  # wakes the watchdog at once when a call starts or on stop()
        self.disk_allowed = limits.disk_quota  # what the folder may hold in this call (see allow_disk)
        self._threads_seen: set[int] | None = None  # the kernel's thread ids at the last pause

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the sandbox and wait until the kernel answers. Raises KernelStartError."""
        # Imported here: the app imports this package at start-up, and jupyter_client is slow to load.
        from jupyter_client import BlockingKernelClient
        from jupyter_client.connect import write_connection_file

        read_only = python_paths(self.python)
        problem = unsuitable_folder(self.workdir, read_only)
        if problem:
            raise KernelStartError(problem)

        # A short path: unix socket names are limited to ~104 bytes (macOS's $TMPDIR is long).
        # The run folder is the host's (0700): the connection file, with the signing key, stays
        # in it; only its "sandbox" subfolder (the sockets) is shared with the kernel.
        self.run_dir = Path(tempfile.mkdtemp(prefix="pytool-", dir="/tmp")).resolve()
        shared = self.run_dir / "sandbox"
        shared.mkdir()
        connection = self.run_dir / "kernel.json"
        write_connection_file(str(connection), transport="ipc", ip=str(shared / "ipc"),
                              key=secrets.token_hex(32).encode())
        os.chmod(connection, 0o600)
        if sys.platform == "darwin":
            (shared / "home").mkdir()
            (shared / "tmp").mkdir()
        strip_setid(self.workdir)  # left by a kernel that ended before its call was swept
        uid = sandbox_uid()
        if self.as_nobody:
            # The code runs as a uid of its own (root would escape RLIMIT_NPROC): give it its
            # folders. Never through a symlink the code left there (lchown, no descent into links).
            for top in (shared, self.workdir):
                for folder, dirs, files in os.walk(top, followlinks=False):
                    for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
                        os.lchown(name, uid, uid)
        read_pipe, write_pipe = os.pipe()
        with open(connection, "rb") as f:
            os.write(write_pipe, f.read())  # a few hundred bytes: far below a pipe's buffer
        os.close(write_pipe)
        seccomp = None
        if sys.platform.startswith("linux"):
            from engine.python_tool.seccomp import filter_file

            seccomp = filter_file()
        spec = SandboxSpec(workdir=self.workdir.resolve(), run_dir=shared, python=self.python,
                           limits=self.limits, read_only=read_only,
                           home=Path.home(), as_nobody=self.as_nobody, uid=uid, connection_fd=read_pipe,
                           seccomp_fd=seccomp.fileno() if seccomp else None,
                           hidden=hidden_paths(read_only))
        self.killed_because = None
        try:
            self.proc = subprocess.Popen(sandbox_command(spec), env=sandbox_env(spec), cwd=str(spec.workdir),
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         pass_fds=[fd for fd in (read_pipe, spec.seccomp_fd) if fd is not None])
        finally:
            os.close(read_pipe)
            if seccomp:
                seccomp.close()
        threading.Thread(target=self._read_log, args=(self.proc,), daemon=True).start()
        self.client = BlockingKernelClient(connection_file=str(connection))
        self.client.load_connection_file()
        # No heartbeat: the kernel is paused between calls, and alive() asks the process anyway.
        self.client.start_channels(hb=False)
        deadline = time.monotonic() + self.limits.startup_timeout
        while True:
            try:
                self.client.wait_for_ready(timeout=1.0)
                break
            except RuntimeError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    why = self._last_log_line()
                    self.stop()
                    raise KernelStartError(f"The Python tool could not start its sandboxed kernel ({why}).")
        # The sandbox's init and the kernel: stop() waits for them, however the sandbox ended.
        self.first_pids = _descendants(self.proc.pid)
        # Linux: bubblewrap -> its init (pid 1 inside) -> the kernel. macOS: sandbox-exec execs it.
        self.kernel_pid = self.first_pids[-1] if sys.platform.startswith("linux") else self.proc.pid
        self._stop_watch = threading.Event()
        threading.Thread(target=self._watch, args=(self.proc, self._stop_watch), daemon=True).start()

    def working(self, busy: bool) -> None:
        """A call starts (True) or ended (False): the watchdog watches closely from now on."""
        if busy:
            self.busy.set()
            self._nudge.set()
        else:
            self.busy.clear()

    def stop(self) -> None:
        """Kill the whole sandbox (every process in it) and forget the connection."""
        self._stop_watch.set()
        self._nudge.set()
        if self.client is not None:
            self.client.stop_channels()
            self.client = None
        if self.proc is not None:
            _kill_tree(self.proc, self.first_pids)
            self.proc = None
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # ------------------------------------------------------------ between calls

    def pause(self) -> tuple[int, int]:
        """Nothing of the code may run between calls: stop every process of the sandbox (again and
        again until none is new, so a fork can't slip through), end all but the kernel, leave the
        kernel stopped with all its threads. -> (processes ended, threads of the kernel that are
        new since the last pause: started by the code of this call, or a library it imported)."""
        if not self.alive() or self.kernel_pid is None:
            return 0, 0
        keep = {self.proc.pid, *self.first_pids}
        init = self.first_pids[0] if sys.platform.startswith("linux") and len(self.first_pids) > 1 else None
        stopped: set[int] = set()
        for _ in range(100):
            fresh = [pid for pid in _descendants(self.proc.pid) if pid != init and pid not in stopped
                     and _running(pid)]
            if not fresh:
                break
            for pid in fresh:
                _signal(pid, signal.SIGSTOP)
            stopped.update(fresh)
        ended = [pid for pid in stopped if pid not in keep]
        for pid in ended:
            _signal(pid, signal.SIGKILL)
        if self.kernel_pid not in stopped:
            _signal(self.kernel_pid, signal.SIGSTOP)
        # When the call returns they are gone and the kernel stopped, not just signalled (signals
        # land asynchronously; a zombie runs nothing).
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and (any(_running(pid) for pid in ended) or not _stopped(self.kernel_pid)):
            time.sleep(0.002)
        # Counted by the host (the code could fake anything it reports itself). The first pause,
        # before any code ran, learns the kernel's own threads.
        threads = _threads(self.kernel_pid)
        new = threads - self._threads_seen if self._threads_seen is not None else set()
        self._threads_seen = threads
        return len(ended), len(new)

    def resume(self) -> None:
        """Continue the kernel for the next call."""
        if self.kernel_pid is not None and self.alive():
            _signal(self.kernel_pid, signal.SIGCONT)

    def disk_used(self) -> int:
        """Bytes the chat's folder takes, with the files the sandbox holds open after deleting them."""
        pids = _descendants(self.proc.pid) if self.proc is not None else []
        return disk_usage(self.workdir, pids)

    def allow_disk(self, used: int) -> None:
        """For the coming call: the folder may hold its quota, or what it holds if that is more
        (then the code can still delete files, not add)."""
        self.disk_allowed = max(self.limits.disk_quota, used)

    def interrupt(self) -> None:
        """Ask the kernel to raise KeyboardInterrupt in the running code (Jupyter's message mode:
        it works through the sandbox, where our signals would reach only bubblewrap)."""
        if self.client is not None:
            self.client.control_channel.send(self.client.session.msg("interrupt_request", {}))

    # ------------------------------------------------------------ the watchdog

    def _watch(self, proc: subprocess.Popen, stop: threading.Event) -> None:
        # Processes and memory every 0.1 s while code runs, every second while the kernel waits;
        # the disk every 0.02 s while code runs (at a few hundred MB/s, the overshoot stays far
        # below one file's cap), less often if the folder is slow to measure.
        next_tree = next_disk = 0.0
        while not stop.is_set():
            self._nudge.wait(0.02 if self.busy.is_set() else 1.0)
            self._nudge.clear()
            if stop.is_set():
                return
            now = time.monotonic()
            if self.busy.is_set() and now >= next_disk:
                used = disk_usage(self.workdir, _descendants(proc.pid))
                next_disk = now + 3 * (time.monotonic() - now)  # a third of a core at most
                if used > self.disk_allowed:
                    self.killed_because = (f"the chat's folder went over its disk quota of "
                                           f"{_size(self.limits.disk_quota)} (it held {_size(used)}; "
                                           "delete files in it to make room)")
            if not self.killed_because and now >= next_tree:
                next_tree = now + (0.1 if self.busy.is_set() else 0.0)
                tree = _descendants(proc.pid)
                rss = sum(_rss(pid) for pid in tree)
                # bwrap's init inside the namespace is not the code's, nor are zombies (processes
                # ended between calls, until the code's Popen reaps them).
                count = sum(_running(pid) for pid in tree) - (1 if sys.platform.startswith("linux") else 0)
                if count > self.limits.processes:
                    self.killed_because = (f"the code started more than {self.limits.processes} processes "
                                           "(a fork bomb?)")
                elif rss > self.limits.memory * 1.5:
                    self.killed_because = (f"the code's processes together used more than "
                                           f"{self.limits.memory * 1.5 / 2**30:g} GiB of memory")
            if self.killed_because:
                _kill_tree(proc)
                return

    def _read_log(self, proc: subprocess.Popen) -> None:
        # In chunks, not lines: the code can write one endless line to the raw file descriptor.
        for chunk in iter(lambda: proc.stdout.read1(4096), b""):
            self.log = (self.log + chunk)[-8192:]

    def _last_log_line(self) -> str:
        lines = [line for line in self.log.decode("utf-8", "replace").splitlines() if line.strip()]
        return lines[-1].strip() if lines else "no reply from the kernel"


_PAGE = os.sysconf("SC_PAGE_SIZE")


def _size(n: int) -> str:
    """Bytes as people read them: 24 MiB, 1.04 GiB."""
    return f"{n / 2**30:.3g} GiB" if n >= 2**30 else f"{n / 2**20:.3g} MiB"


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _descendants(pid: int) -> list[int]:
    """Every process below pid. On Linux from /proc/P/task/T/children, which costs a few reads for
    a small tree, where psutil's scan of all processes costs tens of ms on a busy machine."""
    if not os.path.exists(f"/proc/{pid}/task"):
        import psutil

        try:
            return [p.pid for p in psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            return []
    found, stack = [], [pid]
    while stack:
        parent = stack.pop()
        try:
            for tid in os.listdir(f"/proc/{parent}/task"):
                with open(f"/proc/{parent}/task/{tid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
                found += kids
                stack += kids
        except OSError:
            continue  # it ended while we looked
    return found


def unsuitable_folder(workdir: Path, read_only: tuple[Path, ...]) -> str | None:
    """Why workdir can't be a chat's folder, or None. It becomes writable by the code (and, as
    root, is handed to the kernel's uid): it must not be /, the home, hold Python or the app, or lie in them."""
    folder = workdir.resolve()
    home = Path.home().resolve()
    inside = [p for p in read_only if p == folder or folder in p.parents or p in folder.parents]
    if folder == Path("/") or folder == home or folder in home.parents or inside:
        what = inside[0] if inside else (home if folder != Path("/") else folder)
        return (f"The folder {folder} can't be the Python tool's working folder: the code could change "
                f"{what} there. Give each chat a folder of its own.")
    return None


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        pass
    import psutil

    try:
        return psutil.Process(pid).memory_info().rss
    except psutil.Error:
        return 0


def _kill_tree(proc: subprocess.Popen, wait_for: list[int] = ()) -> None:
    """SIGKILL the sandbox and wait (up to 5 s) until none of its processes runs any more, nor
    those of wait_for (seen earlier: never signalled, their pids may have been reused). On Linux
    killing bubblewrap is enough (--die-with-parent, then the pid namespace dies with its init,
    which exits only after every process in it); the explicit kills cover macOS."""
    pids = [proc.pid, *_descendants(proc.pid)]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_running(pid) for pid in [*pids[1:], *wait_for]):
        time.sleep(0.02)


def _threads(pid: int) -> set[int]:
    """The ids of pid's threads (empty when it is gone)."""
    try:
        return {int(tid) for tid in os.listdir(f"/proc/{pid}/task")}
    except FileNotFoundError:
        if sys.platform.startswith("linux"):
            return set()
    import psutil

    try:
        return {t.id for t in psutil.Process(pid).threads()}
    except psutil.Error:
        return set()


def _stopped(pid: int) -> bool:
    """Whether every thread of pid is stopped (or it is gone)."""
    try:
        states = []
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                states.append(f.read().rsplit(")", 1)[1].split()[0])
        return all(state in ("T", "t", "Z", "X") for state in states)
    except (OSError, IndexError):
        if sys.platform.startswith("linux"):
            return True  # gone
    import psutil

    try:
        return psutil.Process(pid).status() in (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return True


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        if sys.platform.startswith("linux"):
            return False  # gone
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
