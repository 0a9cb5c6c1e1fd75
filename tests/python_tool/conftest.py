"""Fixtures for the Python tool: real sandboxed kernels (no mocks), skipped only when the sandbox
itself can't run on this machine, with the reason."""

from __future__ import annotations

import threading
import time

import pytest

from engine.python_tool import Limits, PythonTool, sandbox_problem
from engine.python_tool.kernel import SandboxedKernel


@pytest.fixture
def needs_sandbox():
    problem = sandbox_problem()
    if problem:
        pytest.skip(f"the sandbox can't run here: {problem}")


@pytest.fixture
def make_tool(tmp_path, needs_sandbox):
    """make_tool(**limits) -> a PythonTool on a fresh chat folder; closed after the test."""
    tools = []

    def make(folder=None, **limits):
        tool = PythonTool(folder or tmp_path / "chat", Limits(**{"timeout": 30.0, **limits}))
        tools.append(tool)
        return tool

    yield make
    for tool in tools:
        tool.close()


@pytest.fixture(params=["default", "user-namespace"])
def sandbox_mode(request, monkeypatch):
    """Run a test in the sandbox this process gets by default (as root: the code runs as nobody)
    and, when we are root, also in the user-namespace sandbox that a normal user gets."""
    import os

    if request.param == "user-namespace":
        if os.geteuid() != 0:
            pytest.skip("not root: the default run already is the user-namespace sandbox")
        monkeypatch.setattr(SandboxedKernel, "drop_root", False)
    return request.param


def wait_until(condition, timeout=20.0, what="the condition"):
    """Poll condition() until it is true; fail with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def run_in_background():
    """run_in_background(tool, code) -> a thread running tool.run(code); .result holds its output.
    For Stop tests: wait until the code has really started, then interrupt (no timer guessing)."""
    threads = []

    def start(tool, code):
        thread = threading.Thread(target=lambda: setattr(thread, "result", tool.run(code)), daemon=True)
        thread.start()
        threads.append(thread)
        return thread

    yield start
    for thread in threads:
        thread.join(timeout=30)


@pytest.fixture(name="wait_until")
def wait_until_fixture():
    return wait_until
