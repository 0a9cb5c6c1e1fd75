"""Issue 29 item 20: `scripts/run` after `scripts/test` re-installed the project (pip needs the network
for that) although the test install holds everything the app needs. scripts/setup_env.sh is run for
real, on a copy of the project whose .venv python only records what it is asked to do."""
import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def fake_project(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    (root / "scripts" / "setup_env.sh").write_text((ROOT / "scripts" / "setup_env.sh").read_text())
    (root / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    log = tmp_path / "python-calls.log"
    python = bin_dir / "python"
    python.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\n')
    python.chmod(0o755)
    (bin_dir / "activate").write_text("")
    return root, log


def source(root: Path, *args: str) -> None:
    subprocess.run(["bash", "-c", f'. scripts/setup_env.sh {" ".join(args)}'], cwd=root, check=True,
                   env={**os.environ, "PYTHON": "false"}, timeout=60)


def installs(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if "pip install" in line] if log.exists() else []


def test_run_after_test_does_not_install_again(tmp_path):
    root, log = fake_project(tmp_path)
    source(root, "test")                       # scripts/test: the first set-up, with the test extra
    assert len(installs(log)) == 1 and "[test]" in installs(log)[0]
    source(root)                               # scripts/run afterwards: offline, nothing to install
    assert len(installs(log)) == 1
    source(root, "test")                       # and scripts/test again: nothing either
    assert len(installs(log)) == 1


def test_a_changed_pyproject_installs_again_and_run_first_then_test_adds_the_extra(tmp_path):
    root, log = fake_project(tmp_path)
    source(root)                               # scripts/run first: the app alone
    assert len(installs(log)) == 1 and "[test]" not in installs(log)[0]
    source(root, "test")                       # the tests need their extra: one install
    assert len(installs(log)) == 2 and "[test]" in installs(log)[1]
    later = time.time() + 5
    os.utime(root / "pyproject.toml", (later, later))   # a dependency was added since
    source(root)
    assert len(installs(log)) == 3
