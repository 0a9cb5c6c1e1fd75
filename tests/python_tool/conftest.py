"""Fixtures for the Python tool: real sandboxed kernels (no mocks), skipped only when the sandbox
itself can't run on this machine, with the reason."""

from __future__ import annotations

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
