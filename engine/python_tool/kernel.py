"""One sandboxed Jupyter kernel: start it, talk to it, watch it, kill it.

A watchdog thread counts the sandbox's processes and their resident memory every 0.1 s. On Linux
the rlimits are the hard walls (RLIMIT_NPROC stops a fork bomb, RLIMIT_AS a huge allocation);
the watchdog is what ends a bomb's leftovers and enforces memory where the OS won't (macOS).
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from jupyter_client import BlockingKernelClient
from jupyter_client.connect import write_connection_file

from engine.python_tool.limits import Limits
from engine.python_tool.sandbox import NOBODY, SandboxSpec, python_paths, sandbox_command, sandbox_env


class KernelStartError(RuntimeError):
    """The sandboxed kernel did not come up; str() is the sentence for the user."""


class SandboxedKernel:
    """A kernel process inside the sandbox and a client connected to it over unix sockets."""

    def __init__(self, workdir: Path, limits: Limits, python: str = sys.executable):
        self.workdir = workdir
        self.limits = limits
        self.python = Path(python)
        self.as_root = sys.platform.startswith("linux") and os.geteuid() == 0
        self.proc: subprocess.Popen | None = None
        self.client: BlockingKernelClient | None = None
        self.run_dir: Path | None = None
        self.log = collections.deque(maxlen=40)  # the kernel's last stderr lines, for start errors
        self.killed_because: str | None = None   # set by the watchdog before it kills
        self._stop_watch = threading.Event()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the sandbox and wait until the kernel answers. Raises KernelStartError."""
        # A short path: unix socket names are limited to ~104 bytes (macOS's $TMPDIR is long).
        self.run_dir = Path(tempfile.mkdtemp(prefix="pytool-", dir="/tmp")).resolve()
        connection = self.run_dir / "kernel.json"
        write_connection_file(str(connection), transport="ipc", ip=str(self.run_dir / "ipc"))
        if sys.platform == "darwin":
            (self.run_dir / "home").mkdir()
            (self.run_dir / "tmp").mkdir()
        if self.as_root:
            # The code runs as nobody (root would escape RLIMIT_NPROC): give it its folders.
            for path in [self.run_dir, *self.run_dir.rglob("*"), self.workdir, *self.workdir.rglob("*")]:
                os.lchown(path, NOBODY, NOBODY)
        spec = SandboxSpec(workdir=self.workdir.resolve(), run_dir=self.run_dir, python=self.python,
                           limits=self.limits, read_only=python_paths(self.python),
                           home=Path.home(), as_root=self.as_root)
        self.killed_because = None
        self.proc = subprocess.Popen(sandbox_command(spec), env=sandbox_env(spec), cwd=str(spec.workdir),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        threading.Thread(target=self._read_log, args=(self.proc,), daemon=True).start()
        self.client = BlockingKernelClient(connection_file=str(connection))
        self.client.load_connection_file()
        self.client.start_channels()
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
        self._stop_watch = threading.Event()
        threading.Thread(target=self._watch, args=(self.proc, self._stop_watch), daemon=True).start()

    def stop(self) -> None:
        """Kill the whole sandbox (every process in it) and forget the connection."""
        self._stop_watch.set()
        if self.client is not None:
            self.client.stop_channels()
            self.client = None
        if self.proc is not None:
            _kill_tree(self.proc)
            self.proc = None
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def interrupt(self) -> None:
        """Ask the kernel to raise KeyboardInterrupt in the running code (Jupyter's message mode:
        it works through the sandbox, where our signals would reach only bubblewrap)."""
        if self.client is not None:
            self.client.control_channel.send(self.client.session.msg("interrupt_request", {}))

    # ------------------------------------------------------------ the watchdog

    def _watch(self, proc: subprocess.Popen, stop: threading.Event) -> None:
        try:
            root = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while not stop.wait(0.1):
            try:
                tree = root.children(recursive=True)
                rss = sum(_rss(p) for p in tree)
            except psutil.Error:
                continue
            # bwrap's own two processes are not the code's.
            count = len(tree) - (1 if sys.platform.startswith("linux") else 0)
            if count > self.limits.processes:
                self.killed_because = (f"the code started more than {self.limits.processes} processes "
                                       "(a fork bomb?)")
            elif rss > self.limits.memory * 1.5:
                self.killed_because = f"the code used more than {self.limits.memory / 2**30:g} GiB of memory"
            if self.killed_because:
                _kill_tree(proc)
                return

    def _read_log(self, proc: subprocess.Popen) -> None:
        for line in iter(proc.stdout.readline, b""):
            self.log.append(line.decode("utf-8", "replace").rstrip())

    def _last_log_line(self) -> str:
        lines = [line for line in self.log if line.strip()]
        return lines[-1] if lines else "no reply from the kernel"


def _rss(p: psutil.Process) -> int:
    try:
        return p.memory_info().rss
    except psutil.Error:
        return 0


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the sandbox. On Linux killing bubblewrap is enough (--die-with-parent, then the pid
    namespace dies with its init); the explicit kills cover macOS, where there is no namespace."""
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        children = []
    for p in [proc, *children]:
        try:
            os.kill(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
