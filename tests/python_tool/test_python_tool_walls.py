"""The Python tool's behaviour around its walls on a real sandboxed kernel: state across calls,
Stop, images, close(), the kernel's own user, unusable Pythons and folders. The attacks on the
walls themselves are rows of test_hostile_code_table.py."""

from __future__ import annotations

import os
import re
import sys
import time

import psutil
import pytest

from engine.python_tool.sandbox import ENTRY

LINUX = sys.platform.startswith("linux")


def test_state_persists_between_calls(make_tool, sandbox_mode):
    tool = make_tool()
    first = tool.run("import math\nx = 6 * 7\nprint(x)")
    assert first.text == "42\n" and first.error is None and not first.restarted
    second = tool.run("math.sqrt(x * x)")
    assert second.text.strip() == "42.0"
    assert tool.run("undefined_name").error == "The code raised NameError: name 'undefined_name' is not defined"
    assert tool.run("print(x + 1)").text == "43\n"  # an exception doesn't cost the state


def test_stop_from_another_thread_interrupts_the_run(make_tool, tmp_path, run_in_background, wait_until):
    tool = make_tool(folder=tmp_path / "chat")
    tool.run("import time\nx = 5")
    started = time.monotonic()
    runner = run_in_background(tool, "open('started', 'w').close()\ntime.sleep(60)")
    wait_until(lambda: (tmp_path / "chat" / "started").exists(), what="the code to start")
    tool.interrupt()
    runner.join(timeout=20)
    out = runner.result
    assert time.monotonic() - started < 10
    assert out.error == "The code was stopped." and "KeyboardInterrupt" in out.text
    assert tool.run("print(x)").text == "5\n"


PNG_1x1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082")


def test_saved_and_displayed_images_are_reported(make_tool, tmp_path):
    tool = make_tool(folder=tmp_path / "chat")
    saved = tool.run(f"open('plot.png', 'wb').write({PNG_1x1!r})\nopen('data.csv', 'w').write('a,b')")
    assert saved.images == [tmp_path / "chat" / "plot.png"]
    unchanged = tool.run("print('no new image')")
    assert unchanged.images == []
    shown = tool.run(f"from IPython.display import Image, display\ndisplay(Image(data={PNG_1x1!r}))")
    assert len(shown.images) == 1 and shown.images[0].read_bytes() == PNG_1x1
    assert shown.images == [tmp_path / "chat" / "displayed" / "image-1.png"]
    assert "[image displayed, saved as displayed/image-1.png]" in shown.text
    # A new tool on the same folder (the app restarted) doesn't overwrite what was shown before.
    tool.close()
    again = make_tool(folder=tmp_path / "chat").run(f"display(Image(data={PNG_1x1!r}))")
    assert again.error and "NameError" in again.error  # a new kernel: display wasn't imported
    again = make_tool(folder=tmp_path / "chat").run(
        f"from IPython.display import Image\nImage(data={PNG_1x1!r})")  # as a cell's result
    assert again.images == [tmp_path / "chat" / "displayed" / "image-2.png"]


def test_close_ends_every_process_of_the_sandbox(make_tool, run_in_background, wait_until):
    tool = make_tool()
    # A duration nothing else on the machine uses, and only sleepers that are new: another
    # program's `sleep 300` is not the sandbox's. (Left after a call, it is ended when the call
    # returns: the background-process rows of test_hostile_code_table.py; here close() comes
    # while a call still runs it.)
    argv = ["sleep", f"299.{os.getpid()}"]  # this test run's own: another copy of the suite may run
    before = {p.pid for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == argv}
    tool.run("x = 1")
    run_dir = str(tool._kernel.run_dir)
    assert len(_processes_mentioning(run_dir)) >= 2  # bubblewrap and the kernel
    running = run_in_background(tool, f"import subprocess, time\np = subprocess.Popen({argv!r})\ntime.sleep(60)")

    def sleepers():
        return [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == argv and p.pid not in before]
    wait_until(sleepers, what="the sleeper to start")
    started = sleepers()
    tool.close()
    running.join(timeout=20)
    assert _processes_mentioning(run_dir) == []
    for p in started:
        assert not p.is_running() or p.status() == psutil.STATUS_ZOMBIE
    assert tool.run("1").error == "The Python tool is closed for this chat."


def _processes_mentioning(text: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline", "status"]):
        if text in " ".join(p.info["cmdline"] or []) and p.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(p)
    return found


def test_a_python_without_ipykernel_is_one_clear_sentence(needs_sandbox, tmp_path):
    import subprocess

    from engine.python_tool import PythonTool

    bare = "/usr/bin/python3"
    if not os.path.exists(bare) or subprocess.run([bare, "-c", "import ipykernel"], capture_output=True).returncode == 0:
        pytest.skip("needs a Python without ipykernel at /usr/bin/python3")
    with PythonTool(tmp_path / "chat", python=bare) as tool:
        out = tool.run("print(1)")
    assert out.error == ("The Python tool could not start its sandboxed kernel "
                         "(ModuleNotFoundError: No module named 'ipykernel').")
    assert out.text == f"[{out.error}]" and "Traceback" not in out.text


def test_a_folder_holding_python_or_the_home_is_refused(needs_sandbox, tmp_path, monkeypatch):
    from engine.python_tool import PythonTool

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for folder, what in ((home, home), (ENTRY.parent.parent, ENTRY.parent.parent)):
        with PythonTool(folder) as tool:
            out = tool.run("print(1)")
        assert out.error.startswith(f"The folder {folder.resolve()} can't be the Python tool's working folder")
        assert out.error.endswith("Give each chat a folder of its own.") and not out.restarted
    assert home.stat().st_uid == os.getuid()  # nothing was handed over


@pytest.mark.skipif(not LINUX or os.geteuid() != 0, reason="a user's kernels run as that user (in a user namespace)")
def test_as_root_each_chat_runs_as_a_user_of_its_own(make_tool, tmp_path):
    # Not `nobody` for all: RLIMIT_NPROC counts per user, so a fork bomb in one chat (or a daemon
    # running as nobody) would leave another chat's kernel unable to start a thread.
    uids = []
    for chat in ("a", "b"):
        status = make_tool(folder=tmp_path / chat).run("print(open('/proc/self/status').read())").text
        uids.append(int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1)))
    assert uids[0] != uids[1] and not {0, 65534} & set(uids)
    assert (tmp_path / "a").stat().st_uid == uids[0]  # the folder is handed to that user
