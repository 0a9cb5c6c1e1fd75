"""The sandbox commands as text: the bubblewrap argv (whose walls test_python_tool_walls.py proves
by running it) and the macOS Seatbelt profile, which can only run on a Mac: here we check that the
profile generated for a chat folder denies what it must and allows only what it must."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.python_tool import sandbox
from engine.python_tool.limits import Limits
from engine.python_tool.output import CappedText
from engine.python_tool.sandbox import SandboxSpec, bwrap_command, macos_profile, python_paths


def _spec(tmp_path, nobody=False, workdir=None):
    home = tmp_path / "Users" / "ada"
    return SandboxSpec(workdir=workdir or home / "Library" / "gpt-oss chat" / "chats" / "7",
                       run_dir=tmp_path / "run", python=Path(sys.executable), limits=Limits(),
                       read_only=python_paths(), home=home, as_nobody=nobody)


# ---------------------------------------------------------------- macOS profile

def _rules(profile: str) -> list[str]:
    """Top-level forms of an SBPL profile, comments dropped."""
    text = "\n".join(line for line in profile.splitlines() if not line.lstrip().startswith(";"))
    forms, depth, start, in_string = [], 0, None, False
    for i, ch in enumerate(text):
        if ch == '"' and text[i - 1] != "\\":
            in_string = not in_string
        if in_string:
            continue
        if ch == "(":
            if depth == 0:
                start = i
            depth += 1
        elif ch == ")":
            depth -= 1
            assert depth >= 0, "unbalanced parentheses"
            if depth == 0:
                forms.append(text[start:i + 1])
    assert depth == 0 and not in_string, "unbalanced profile"
    return forms


def _real(path) -> str:
    return str(Path(path).resolve())


def test_profile_denies_by_default_and_has_no_network_but_its_own_sockets(tmp_path):
    spec = _spec(tmp_path)
    rules = _rules(macos_profile(spec))
    assert rules[:2] == ["(version 1)", "(deny default)"]
    assert "(deny network*)" in rules
    network_allows = [r for r in rules if r.startswith("(allow") and "network" in r]
    assert network_allows, "the kernel's unix sockets must be allowed"
    for rule in network_allows:
        # Only unix sockets, only under the run folder: no ip, no tcp, no other socket path.
        assert "unix-socket" in rule and f'(subpath "{_real(spec.run_dir)}")' in rule
        assert " ip " not in rule and "tcp" not in rule and "remote ip" not in rule
    assert rules.index("(deny network*)") < rules.index(network_allows[0])  # later rules win


def test_profile_writes_only_in_the_chat_folder_and_run_folder(tmp_path):
    spec = _spec(tmp_path)
    rules = _rules(macos_profile(spec))
    writes = [r for r in rules if r.startswith("(allow") and "file-write" in r]
    subpaths = set()
    for rule in writes:
        subpaths |= set(re.findall(r'\(subpath "([^"]*)"\)', rule))
        literals = re.findall(r'\(literal "([^"]*)"\)', rule)
        assert all(lit.startswith("/dev/") for lit in literals)
        assert "regex" not in rule and "(allow file-write*)" != rule
    assert subpaths == {_real(spec.workdir), _real(spec.run_dir)}


def test_profile_hides_the_home_but_the_chat_folder_and_python(tmp_path):
    spec = _spec(tmp_path)
    rules = _rules(macos_profile(spec))
    deny_read = next(r for r in rules if r.startswith("(deny file-read*"))
    for hidden in (_real(spec.home), "/Users", "/Volumes", "/private/var/folders"):
        assert f'(subpath "{hidden}")' in deny_read
    # The home's contents stay hidden: after the denial, reading comes back only for these.
    after = rules[rules.index(deny_read) + 1:]
    reads = [r for r in after if r.startswith("(allow file-read")]
    assert "(allow file-read-metadata)" in reads  # names along paths, for realpath(); not contents
    data_reads = [r for r in reads if r != "(allow file-read-metadata)"]
    allowed = set().union(*(re.findall(r'\(subpath "([^"]*)"\)', r) for r in data_reads))
    assert allowed == {_real(spec.workdir), _real(spec.run_dir), *(_real(p) for p in spec.read_only)}
    home = _real(spec.home)
    ssh = Path(home) / ".ssh"
    assert not any(str(ssh) == a or str(ssh).startswith(a + "/") for a in allowed)


def test_profile_hides_the_start_folder_and_the_checkout_as_linux_does(tmp_path, monkeypatch):
    """Linux mounts only what the kernel needs; macOS reads everything but what the profile denies,
    so the folder the app was started from and a checkout on sys.path are denied by name, and of
    the checkout only the entry script (and a venv inside it, Python's own) comes back."""
    repo = sandbox.ENTRY.parents[2]
    start = tmp_path / "Users" / "ada" / "Documents"
    start.mkdir(parents=True)
    monkeypatch.chdir(start)
    monkeypatch.syspath_prepend(str(repo))
    read_only = python_paths()
    spec = dataclasses.replace(_spec(tmp_path), read_only=read_only, hidden=sandbox.hidden_paths(read_only))
    rules = _rules(macos_profile(spec))
    deny = next(r for r in rules if r.startswith("(deny file-read*"))
    assert f'(subpath "{_real(start)}")' in deny and f'(subpath "{_real(repo)}")' in deny
    after = rules[rules.index(deny) + 1:]
    allowed = set().union(*(re.findall(r'\(subpath "([^"]*)"\)', r) for r in after if r.startswith("(allow file-read*")))
    prefix = _real(sys.prefix)
    inside = {a for a in allowed if a == _real(repo) or a.startswith(_real(repo) + "/")}
    assert inside - {_real(sandbox.ENTRY)} <= {a for a in inside if a.startswith(prefix + "/")}
    assert not any(_real(repo / ".git").startswith(a + "/") or a == _real(repo / ".git") for a in allowed)
    assert not any(a == _real(start) or _real(start).startswith(a + "/") for a in allowed)


def test_the_kernel_reads_python_its_packages_and_its_entry_script_only():
    paths = python_paths()
    assert sandbox.ENTRY.resolve() in paths and sandbox.ENTRY.parent.resolve() not in paths
    import ipykernel
    import jupyter_client

    for module in (ipykernel, jupyter_client, sys.modules["os"]):
        where = Path(module.__file__).resolve()
        assert any(p == where or p in where.parents for p in paths), where


def test_profile_quotes_strange_folder_names(tmp_path):
    spec = _spec(tmp_path, workdir=tmp_path / 'chat "7") (allow default' / "x\\y")
    profile = macos_profile(spec)
    rules = _rules(profile)  # still balanced: the name could not close a rule
    assert "(allow default)" not in rules
    assert '\\"7\\") (allow default' in profile


@pytest.mark.skipif(not Path("/usr/bin/sandbox-exec").exists(), reason="sandbox-exec exists only on macOS")
def test_profile_runs_on_this_mac(tmp_path):
    spec = _spec(tmp_path, workdir=tmp_path / "chat")
    spec.workdir.mkdir(parents=True)
    spec.run_dir.mkdir()
    code = "open('ok.txt', 'w').write('1'); print(open('ok.txt').read())"
    done = subprocess.run(["/usr/bin/sandbox-exec", "-p", macos_profile(spec), sys.executable, "-c", code],
                          cwd=spec.workdir, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "1", done.stderr


# ---------------------------------------------------------------- bubblewrap argv

def test_bwrap_command_unshares_the_network_and_binds_no_home(tmp_path):
    spec = _spec(tmp_path, workdir=tmp_path / "chat")
    cmd = bwrap_command(spec)
    for flag in ("--unshare-net", "--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session"):
        assert flag in cmd
    assert "--unshare-user" in cmd and "--disable-userns" in cmd  # a normal user's sandbox
    assert cmd[cmd.index("--cap-drop") + 1] == "ALL" and "--cap-add" not in cmd
    assert cmd[cmd.index("--remount-ro") + 1] == "/"  # the root read-only once set up
    assert "--seccomp" in bwrap_command(dataclasses.replace(spec, seccomp_fd=9))
    sources = [cmd[i + 1] for i, a in enumerate(cmd) if a in ("--bind", "--ro-bind")]
    assert "/" not in sources and str(Path.home()) not in sources and "/etc" not in sources
    writable = [(cmd[i + 1], cmd[i + 2]) for i, a in enumerate(cmd) if a == "--bind"]
    assert writable == [(str(spec.run_dir),) * 2, (str(spec.workdir),) * 2, (str(spec.workdir), "/mnt/data")]
    # The chat folder is mounted last, so no read-only bind can cover it.
    last_ro = max(i for i, a in enumerate(cmd) if a == "--ro-bind")
    assert last_ro < cmd.index("--bind")


def test_bwrap_command_as_root_runs_the_code_as_nobody(tmp_path):
    cmd = bwrap_command(_spec(tmp_path, nobody=True, workdir=tmp_path / "chat"))
    assert "--unshare-user" not in cmd
    assert cmd[cmd.index("--cap-drop") + 1] == "ALL"
    # setuid/setgid to become nobody, SETPCAP to empty the bounding set first (kernel_entry.py)
    assert [cmd[i + 1] for i, a in enumerate(cmd) if a == "--cap-add"] == ["CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"]
    assert cmd[-2:] == ["65534", "65534"]  # the spec's uid; kernel.py gives each kernel its own
    assert {sandbox.sandbox_uid() for _ in range(5)} <= set(sandbox.SANDBOX_UIDS)


def test_sandbox_problem_says_what_to_install_without_bubblewrap(monkeypatch):
    if not sys.platform.startswith("linux"):
        pytest.skip("bubblewrap is the Linux sandbox")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    problem = sandbox.sandbox_problem.__wrapped__()
    assert problem == "The Python tool needs bubblewrap: install it (sudo apt install bubblewrap) and restart."


# ---------------------------------------------------------------- output cap

def test_capped_text_keeps_head_and_tail_and_counts_everything():
    capped = CappedText(100)
    pieces = [f"line {i}\n" for i in range(1000)]
    for piece in pieces:
        capped.add(piece)
    whole = "".join(pieces)
    text = capped.value()
    assert text.startswith(whole[:80]) and text.endswith(whole[-20:])
    assert f"{len(whole):,} characters in all, showing the first 80 and the last 20" in text
    small = CappedText(100)
    small.add("a" * 60)
    small.add("b" * 40)
    assert small.value() == "a" * 60 + "b" * 40  # exactly at the cap: nothing cut, no note


def test_a_frozen_app_is_its_own_kernel_and_the_sandbox_reads_only_the_app(monkeypatch, tmp_path):
    """Frozen (PyInstaller), the app's executable starts itself with KERNEL_FLAG instead of a
    script, and the only Python folder the sandbox lets it read is the app's own (the real frozen
    build runs code this way in tests/mac_app/test_linux_onedir.py)."""
    onedir = tmp_path / "dist" / "gpt-oss-chat"
    exe = onedir / "gpt-oss-chat"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(exe))
    assert sandbox.python_paths(str(exe)) == ((onedir.parent if sys.platform == "darwin" else onedir).resolve(),)
    spec = dataclasses.replace(_spec(tmp_path), python=exe, connection_fd=7)
    args = sandbox.entry_args(spec)
    assert args[:3] == [str(exe), sandbox.KERNEL_FLAG, "7"]  # the connection comes through a pipe
    assert str(sandbox.ENTRY) not in args
    # A real interpreter beside the frozen app still gets the script.
    other = sandbox.entry_args(dataclasses.replace(_spec(tmp_path), python=Path("/usr/bin/python3")))
    assert other[1] == str(sandbox.ENTRY)


def test_a_frozen_app_without_ipykernel_says_so_in_one_sentence(monkeypatch):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setitem(sys.modules, "ipykernel.kernelapp", None)   # as if left out of the bundle
    assert sandbox.sandbox_problem.__wrapped__() == sandbox.FROZEN
    monkeypatch.setattr(sys, "frozen", False)
    assert "pip install" in sandbox.sandbox_problem.__wrapped__()
