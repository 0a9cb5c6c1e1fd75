"""PythonTool: gpt-oss's built-in `python` tool for one chat, a stateful sandboxed Jupyter kernel.

    tool = PythonTool(chat_folder)
    out = tool.run("x = 6 * 7\nprint(x)")   # -> ToolOutput(text="42\n", images=[], error=None)
    tool.interrupt()                         # from another thread: the app's Stop
    tool.close()

The kernel starts on the first run and lives until close(); variables persist between calls.
Every limit hit becomes a sentence in the text the model reads, and in ToolOutput.error for the
user; a kernel that had to be killed is restarted on the spot and the text says so. Between calls
nothing of the code runs: processes it left are ended, its threads paused (the text says both), and
setuid/setgid bits it set in its folder are removed.
"""

from __future__ import annotations

import logging
import os
import queue
import stat
import sys
import threading
import time
from pathlib import Path

from engine.python_tool.folder import strip_setid
from engine.python_tool.kernel import KernelStartError, SandboxedKernel, _size
from engine.python_tool.limits import GiB, Limits
from engine.python_tool.output import RunCollector, ToolOutput
from engine.python_tool.sandbox import sandbox_problem

log = logging.getLogger(__name__)

DISPLAYED = "displayed"  # subfolder of the chat folder for images the code displayed
_SCAN_LIMIT = 5000       # PNGs looked at when finding those a run saved


class PythonTool:
    """One chat's Python. Call run() from one thread; interrupt() and close() from any."""

    def __init__(self, workdir: str | Path, limits: Limits | None = None, python: str = sys.executable):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.limits = limits or Limits()
        self.python = python
        self._kernel: SandboxedKernel | None = None
        self._interrupt = threading.Event()
        self._lock = threading.Lock()  # one run at a time
        self._closed = False
        self._ended_because: str | None = None  # why the kernel was ended from outside, for the next run

    # ------------------------------------------------------------ public

    def start(self) -> str | None:
        """Start the kernel now (it takes a few seconds), e.g. while the user reads the code in the
        consent dialog. -> None when it runs, else the sentence saying why it can't."""
        with self._lock:
            out = self._ensure_kernel()
            return out.error if out else None

    def run(self, code: str, timeout: float | None = None) -> ToolOutput:
        """Run code in this chat's kernel; never raises for anything the code does."""
        with self._lock:
            self._interrupt.clear()
            restarted_note = self._restart_note(self._ended_because) if self._ended_because else ""
            self._ended_because = None
            if self._kernel is not None and not self._kernel.alive():
                restarted_note = self._restart_note(self._kernel.killed_because or "it stopped between calls")
                self._kernel.stop()
                self._kernel = None
            failed = self._ensure_kernel()
            if failed:
                return failed
            used = self._kernel.disk_used()
            self._kernel.allow_disk(used)
            if used > self.limits.disk_quota:
                restarted_note = (restarted_note + "\n" if restarted_note else "") + (
                    f"[The chat's folder holds {_size(used)}, over its disk quota of "
                    f"{_size(self.limits.disk_quota)}: delete files in it before writing more.]")
            self._kernel.resume()
            self._kernel.working(True)
            try:
                out = self._execute(code, self.limits.timeout if timeout is None else timeout)
            except Exception as e:  # noqa: BLE001 - a broken connection must not take the app down
                log.exception("python tool: run failed")
                self._kernel.stop()
                self._kernel = None
                return _failure(f"The Python tool lost its kernel ({e}); the next call starts a new one.")
            finally:
                if self._kernel is not None:
                    self._kernel.working(False)
            out.text += self._between_calls()
            if restarted_note:
                out.text = restarted_note + "\n" + out.text
                out.restarted = out.restarted or "restarted" in restarted_note
            return out

    def _between_calls(self) -> str:
        """Stop everything of the code until the next call and sweep its folder; -> the note for
        the model (and the user, who sees the same text in the tool step) on what the code left
        running: processes are ended, threads paused with the kernel."""
        ended, threads = self._kernel.pause() if self._kernel is not None else (0, 0)
        strip_setid(self.workdir)  # nothing of the code runs now: no race with it
        return "".join("\n" + note for note in (_left_running(threads, "thread"), _left_running(ended, "process"))
                       if note)

    def _ensure_kernel(self) -> ToolOutput | None:
        """A running kernel (started if needed) -> None, or the failure to report. Holds _lock."""
        if self._closed:
            return _failure("The Python tool is closed for this chat.")
        if self._kernel is not None:
            return None
        problem = sandbox_problem(self.python)
        if problem:
            return _failure(problem)
        kernel = SandboxedKernel(self.workdir, self.limits, self.python)
        try:
            kernel.start()
        except Exception as e:  # noqa: BLE001 - whatever it is, the app lives on
            kernel.stop()
            if not isinstance(e, KernelStartError):
                log.exception("python tool: kernel start failed")
                e = f"The Python tool could not start its sandboxed kernel ({e})."
            return _failure(str(e))
        kernel.pause()  # nothing runs until the first call
        self._kernel = kernel
        return None

    def interrupt(self) -> None:
        """Stop the running code (KeyboardInterrupt; a restart if it won't stop). Thread-safe."""
        self._interrupt.set()

    def restart(self, reason: str | None = None) -> None:
        """Forget every variable: a fresh kernel on the next run. Files in the folder stay. With a
        reason, the next run's text tells the model why its variables are gone."""
        self._interrupt.set()
        with self._lock:
            if self._kernel is not None:
                self._kernel.stop()
                self._kernel = None
                self._ended_because = reason

    @property
    def has_kernel(self) -> bool:
        """Whether a kernel is up (it holds memory: ~60-100 MB, more with what the code made)."""
        kernel = self._kernel
        return kernel is not None and kernel.alive()

    def close(self) -> None:
        """Stop the kernel and every process it started. Safe to call twice, from any thread."""
        self._closed = True
        self.restart()

    @property
    def running(self) -> bool:
        return self._lock.locked()

    def __enter__(self) -> "PythonTool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ one run

    def _execute(self, code: str, timeout: float) -> ToolOutput:
        kernel = self._kernel
        before = _png_snapshot(self.workdir)
        collector = RunCollector(self.limits.output_chars, self.workdir, DISPLAYED)
        msg_id = kernel.client.execute(code, store_history=True, allow_stdin=False, stop_on_error=True)
        why_interrupted, restart_reason = self._wait(kernel, msg_id, collector, timeout)
        if restart_reason:
            self._kernel.stop()
            self._kernel = None
        text, error = collector.value(), None
        if why_interrupted == "timeout":
            error = f"The code ran longer than the {timeout:g} s limit and was interrupted."
        elif why_interrupted == "stopped":
            error = "The code was stopped."
        elif collector.exception:
            error = f"The code raised {collector.exception}"
            if collector.exception.startswith("MemoryError"):
                error += f" (the Python tool may use {self.limits.memory / GiB:g} GiB of memory)"
        if error and why_interrupted:
            text += f"\n[{error}]"
        elif error and "MemoryError" in error:
            text += f"\n[The Python tool may use at most {self.limits.memory / GiB:g} GiB of memory.]"
        if restart_reason:
            note = self._restart_note(restart_reason)
            text += "\n" + note
            error = note.strip("[]")
        saved = [p for p in _png_snapshot(self.workdir, before) if p not in collector.displayed]
        return ToolOutput(text=text if text.strip() else "(no output)", images=collector.displayed + saved,
                          error=error, restarted=restart_reason is not None)

    def _wait(self, kernel: SandboxedKernel, msg_id: str, collector: RunCollector, timeout: float):
        """Collect the run's output until it ends, interrupting it at the deadline or on Stop.
        -> (why it was interrupted or None, why the kernel must be restarted or None)."""
        deadline = time.monotonic() + timeout
        interrupted_at = why_interrupted = replied_at = None
        while True:
            now = time.monotonic()
            if interrupted_at is None and (self._interrupt.is_set() or now > deadline):
                why_interrupted = "stopped" if self._interrupt.is_set() else "timeout"
                kernel.interrupt()
                interrupted_at = now
            if interrupted_at is not None and now > interrupted_at + self.limits.interrupt_grace:
                return why_interrupted, ("it did not stop when interrupted" if why_interrupted == "stopped" else
                                         f"the code ran past the {timeout:g} s limit and did not stop when interrupted")
            if not kernel.alive():
                return why_interrupted, kernel.killed_because or "the kernel died (the code ended it, or memory ran out)"
            try:
                msg = kernel.client.get_iopub_msg(timeout=0.1)
            except queue.Empty:
                # The end is the idle status on iopub; if a flood of output made ZMQ drop it, the
                # execute_reply on the shell channel still says the run is over. The reply can come
                # well before a flood's last output (the kernel's iopub thread lags, more so on a
                # loaded machine): only 2 s of silence after it ends the wait.
                replied_at = replied_at or (_replied(kernel, msg_id) and now)
                if replied_at and now > replied_at + 2.0:
                    return why_interrupted, None
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["header"]["msg_type"] == "status" and msg["content"].get("execution_state") == "idle":
                if not replied_at:
                    _drain_shell(kernel, msg_id)
                return why_interrupted, None
            collector.message(msg)

    @staticmethod
    def _restart_note(reason: str) -> str:
        return (f"[The Python kernel was restarted because {reason}: variables and imports from earlier "
                "calls are gone; files in the working folder are kept.]")


def tool_description(limits: Limits | None = None) -> str:
    """The python tool's description for the system message, in the words gpt-oss was trained on
    (openai-harmony's), with this tool's real limits: the folder, the timeout, no internet."""
    limits = limits or Limits()
    return ("Use this tool to execute Python code in your chain of thought. The code will not be shown to "
            "the user. This tool should be used for internal reasoning, but not for code that is intended "
            "to be visible to the user (e.g. when creating plots, tables, or files).\n\n"
            "When you send a message containing Python code to python, it will be executed in a stateful "
            "Jupyter notebook environment. python will respond with the output of the execution or time "
            f"out after {limits.timeout:.1f} seconds. The current working directory can be used to save "
            "and persist user files. Internet access for this session is disabled.")


def _left_running(count: int, kind: str) -> str:
    """The note on what the code left running, or ''. Threads of a library count too (numpy's
    BLAS pool, once, when it is imported): the sentence says so, or the model would look for
    a thread it never started."""
    if not count:
        return ""
    what = f"A background {kind}" if count == 1 else f"{count} background {kind}{'es' if kind == 'process' else 's'}"
    was = "was" if count == 1 else "were"
    if kind == "process":
        return f"[{what} started by this code {was} ended when the call returned.]"
    resume = "it resumes" if count == 1 else "they resume"
    return f"[{what} started by this code (or a library it used) {was} paused; {resume} during the next call.]"


def _failure(sentence: str) -> ToolOutput:
    return ToolOutput(text=f"[{sentence}]", error=sentence)


def _replied(kernel: SandboxedKernel, msg_id: str) -> bool:
    """Whether the execute_reply to msg_id is waiting on the shell channel (read without waiting)."""
    try:
        while True:
            reply = kernel.client.get_shell_msg(timeout=0)
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                return True
    except queue.Empty:
        return False


def _drain_shell(kernel: SandboxedKernel, msg_id: str) -> None:
    """Read this run's execute_reply (it follows the idle status) so replies don't pile up."""
    deadline = time.monotonic() + 2.0
    while kernel.client is not None and time.monotonic() < deadline:
        try:
            reply = kernel.client.get_shell_msg(timeout=0.2)
        except queue.Empty:
            continue
        if reply.get("parent_header", {}).get("msg_id") == msg_id:
            return


def _png_snapshot(folder: Path, before: dict | None = None):
    """{png path: (mtime, size)} of the regular files (never symlinks, which the code could point
    at the user's files) under folder, not descending into linked folders; with `before`, the
    PNGs new or changed since then, sorted."""
    now = {}
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in files:
            if not name.lower().endswith(".png") or len(now) >= _SCAN_LIMIT:
                continue
            path = Path(root) / name
            try:
                st = path.lstat()
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                now[path] = (st.st_mtime_ns, st.st_size)
    if before is None:
        return now
    return sorted(p for p, sig in now.items() if before.get(p) != sig)
