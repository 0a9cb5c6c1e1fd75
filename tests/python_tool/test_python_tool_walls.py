"""The walls of the Python tool, proved on a real sandboxed kernel: each attack gets a clear
error, and the next call in the same tool still works (or the kernel restarted and said so)."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

import psutil
import pytest

from engine.python_tool import read_image
from engine.python_tool.sandbox import ENTRY

LINUX = sys.platform.startswith("linux")
# Seatbelt (macOS) refuses with EPERM where Linux's namespaces make things absent or unreachable.
SEATBELT_NO = "Operation not permitted"
linux_only = pytest.mark.skipif(not LINUX, reason="a Linux wall (rlimit or private tmpfs); macOS has the watchdog")


def test_state_persists_between_calls(make_tool, sandbox_mode):
    tool = make_tool()
    first = tool.run("import math\nx = 6 * 7\nprint(x)")
    assert first.text == "42\n" and first.error is None and not first.restarted
    second = tool.run("math.sqrt(x * x)")
    assert second.text.strip() == "42.0"
    assert tool.run("undefined_name").error == "The code raised NameError: name 'undefined_name' is not defined"
    assert tool.run("print(x + 1)").text == "43\n"  # an exception doesn't cost the state


def test_no_network_internet_or_a_host_server(make_tool, sandbox_mode):
    # A real server on the host's loopback: the sandbox must not reach it.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted = []

    def accept():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not accepted:
            try:
                accepted.append(server.accept())
            except socket.timeout:
                pass

    watcher = threading.Thread(target=accept)
    watcher.start()
    tool = make_tool()
    tool.run("import socket\nx = 1")
    internet = tool.run("s = socket.socket(); s.settimeout(5); s.connect(('1.1.1.1', 443))")
    assert "Network is unreachable" in internet.error or SEATBELT_NO in internet.error
    host = tool.run(f"s = socket.socket(); s.settimeout(5); s.connect(('127.0.0.1', {port}))")
    assert host.error and ("ConnectionRefusedError" in host.error or SEATBELT_NO in host.error)
    dns = tool.run("socket.getaddrinfo('example.com', 80)")
    assert dns.error and "gaierror" in dns.error
    # And the host server really works: the same connect from outside the sandbox gets through.
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        watcher.join()
    assert len(accepted) == 1
    accepted[0][0].close()
    server.close()
    assert tool.run("print(x)").text == "1\n"


def test_writes_outside_the_folder_fail(make_tool, tmp_path, sandbox_mode):
    outside = tmp_path / "outside"
    outside.mkdir()
    tool = make_tool(folder=tmp_path / "chat")
    # A host folder that is not bound: it doesn't exist in the sandbox.
    hidden = tool.run(f"open({str(outside / 'x.txt')!r}, 'w').write('pwned')")
    assert hidden.error and ("FileNotFoundError" in hidden.error or "PermissionError" in hidden.error)
    # The tool's own package folder: only its entry script is bound there. Writing beside it fails
    # (a read-only root), or lands in the sandbox's private /tmp when the checkout lives under /tmp
    # (bubblewrap makes the mount point there): either way nothing reaches the host.
    beside = tool.run(f"open({str(ENTRY.parent / 'pwned.txt')!r}, 'w').write('pwned')")
    if beside.error:
        assert any(e in beside.error for e in ("Read-only file system", "PermissionError", SEATBELT_NO)), beside.error
    else:
        assert str(ENTRY).startswith("/tmp/"), "a write beside the entry script succeeded outside the private /tmp"
    assert not (outside / "x.txt").exists() and not (ENTRY.parent / "pwned.txt").exists()
    # The chat folder is writable and what is written there is on the host.
    assert tool.run("open('note.txt', 'w').write('kept')").error is None
    assert (tmp_path / "chat" / "note.txt").read_text() == "kept"
    if LINUX:  # there it is also the '/mnt/data' the model was trained to save to, and the cwd
        assert tool.run("import os\nprint(os.getcwd())").text == "/mnt/data\n"
        assert tool.run("open('/mnt/data/plot.txt', 'w').write('drive')").error is None
        assert (tmp_path / "chat" / "plot.txt").read_text() == "drive"


def test_home_and_its_ssh_keys_are_invisible(make_tool, tmp_path, monkeypatch, sandbox_mode):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    key = home / ".ssh" / "id_ed25519"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY----- secret-key-material")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GITHUB_TOKEN", "secret-token-value")
    tool = make_tool(folder=home / "chats" / "1")  # the chat folder inside that home
    by_tilde = tool.run("import os\nprint(open(os.path.expanduser('~/.ssh/id_ed25519')).read())")
    by_path = tool.run(f"print(open({str(key)!r}).read())")
    listing = tool.run(f"print(os.listdir({str(home)!r}))")
    env = tool.run("print(dict(os.environ))")
    for out in (by_tilde, by_path, listing, env):
        assert "secret" not in out.text
    assert by_tilde.error and by_path.error
    # Only the chat folder shows in the home: the sandbox has nothing else of it.
    assert listing.text.strip() == "['chats']" if LINUX else SEATBELT_NO in listing.error
    if os.path.isdir("/root/.ssh") or os.path.isdir(os.path.expanduser("~root")):
        root = tool.run("print(sorted(os.listdir('/root')) if os.path.isdir('/root') else 'no /root')")
        assert ".ssh" not in root.text


def test_a_fork_bomb_is_stopped_and_the_kernel_restarts(make_tool):
    tool = make_tool(processes=32)
    tool.run("x = 1")
    old_run_dir = str(tool._kernel.run_dir)  # in the command line of every process of that sandbox
    started = time.monotonic()
    bomb = tool.run("import os\nwhile True:\n    os.fork()")
    assert time.monotonic() - started < 10
    assert bomb.restarted
    assert "more than 32 processes" in bomb.error and "restarted" in bomb.text
    # When run() returns, every process of the old sandbox is gone: bwrap, kernel, the bomb's.
    assert _processes_mentioning(old_run_dir) == []
    after = tool.run("print(2 + 2)")
    assert after.text == "4\n" and not after.restarted


@linux_only
def test_allocating_50_gb_is_a_memory_error_and_state_survives(make_tool, sandbox_mode):
    tool = make_tool()
    tool.run("keep = 'still here'")
    big = tool.run("block = bytearray(50 * 2**30)")
    assert big.error.startswith("The code raised MemoryError") and "2 GiB" in big.error
    assert "at most 2 GiB of memory" in big.text and not big.restarted
    assert tool.run("print(keep)").text == "still here\n"


def test_printing_100_mb_is_cut_with_a_note(make_tool):
    tool = make_tool(timeout=120)
    out = tool.run("import sys\nfor i in range(100):\n    sys.stdout.write('y' * 2**20)\nprint('THE END')")
    assert out.error is None
    assert f"output truncated: {100 * 2**20 + 8:,} characters in all" in out.text  # + 'THE END\n'
    assert len(out.text) < tool.limits.output_chars + 200
    assert out.text.rstrip().endswith("THE END")  # the tail is kept: the model sees how it ended
    assert tool.run("print('ok')").text == "ok\n"


def test_an_endless_loop_times_out_and_state_survives(make_tool):
    tool = make_tool()
    tool.run("x = 'kept'")
    started = time.monotonic()
    loop = tool.run("while True:\n    pass", timeout=2)
    assert time.monotonic() - started < 10
    assert loop.error == "The code ran longer than the 2 s limit and was interrupted."
    assert "KeyboardInterrupt" in loop.text and not loop.restarted
    assert tool.run("print(x)").text == "kept\n"


def test_code_that_ignores_the_interrupt_gets_a_fresh_kernel(make_tool):
    tool = make_tool(interrupt_grace=2)
    tool.run("x = 1")
    stubborn = tool.run("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
                        timeout=2)
    assert stubborn.restarted and "did not stop when interrupted" in stubborn.error
    assert "variables and imports from earlier calls are gone" in stubborn.text
    assert "NameError" in tool.run("x").error  # really a new kernel
    assert tool.run("print(1 + 1)").text == "2\n"


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


@linux_only
def test_big_files_and_tmp_are_capped(make_tool):
    tool = make_tool(file_size=8 << 20, tmp_size=16 << 20)
    big_file = tool.run("open('big.bin', 'wb').write(b'0' * (9 << 20))")
    assert big_file.error and "File too large" in big_file.error
    full_tmp = tool.run("open('/tmp/fill.bin', 'wb').write(b'0' * (7 << 20))\n"
                        "open('/tmp/fill2.bin', 'wb').write(b'0' * (7 << 20))\n"
                        "open('/tmp/fill3.bin', 'wb').write(b'0' * (7 << 20))")
    assert full_tmp.error and "No space left on device" in full_tmp.error
    assert tool.run("print('alive')").text == "alive\n"


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
    # returns: test_python_tool_hostile.py; here close() comes while a call still runs it.)
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


def test_memory_spread_over_processes_is_caught_by_the_watchdog(make_tool):
    # Each process stays under its own RLIMIT_AS; together they pass the limit: the watchdog
    # (which is also what enforces memory on macOS, where RLIMIT_AS isn't) restarts the kernel.
    tool = make_tool(memory=256 << 20)
    hog = ("import subprocess, sys, time\n"
           "code = 'b = b\"x\" * (200 << 20); import time; time.sleep(60)'\n"
           "procs = [subprocess.Popen([sys.executable, '-c', code]) for _ in range(3)]\n"
           "time.sleep(60)")
    started = time.monotonic()
    out = tool.run(hog)
    assert time.monotonic() - started < 30
    assert out.restarted and "together used more than 0.375 GiB of memory" in out.error
    assert tool.run("print('back')").text == "back\n"


# The folder is shared with the host, which reads and writes in it: the code's symlinks there
# must not turn the host (maybe root) into its arm outside the sandbox.

def test_a_symlinked_display_folder_cannot_make_the_host_write_outside(make_tool, tmp_path):
    target = tmp_path / "host-only"
    target.mkdir()
    tool = make_tool(folder=tmp_path / "chat")
    tool.run(f"import os\nos.symlink({str(target)!r}, 'displayed')")
    shown = tool.run(f"from IPython.display import Image\nImage(data={PNG_1x1!r})")
    assert list(target.iterdir()) == []
    assert shown.images == [] and "could not be saved" in shown.text
    # A dangling symlink where the next image would go: the host doesn't follow it either.
    tool.run("os.remove('displayed')\nos.mkdir('displayed')\n"
             f"os.symlink({str(target / 'planted.png')!r}, 'displayed/image-1.png')")
    shown = tool.run(f"Image(data={PNG_1x1!r})")
    assert list(target.iterdir()) == []
    assert [p.name for p in shown.images] == ["image-2.png"]


def test_symlinks_to_host_files_are_not_reported_as_images(make_tool, tmp_path):
    secret = tmp_path / "photo.png"
    secret.write_bytes(PNG_1x1)
    tool = make_tool(folder=tmp_path / "chat")
    out = tool.run(f"import os\nos.symlink({str(secret)!r}, 'mine.png')\nos.symlink('/', 'everything')\n"
                   f"open('real.png', 'wb').write({PNG_1x1!r})")
    assert out.images == [tmp_path / "chat" / "real.png"]
    assert read_image(out.images[0], tmp_path / "chat") == PNG_1x1
    # Swapped for a symlink after the run, or a path out of the folder: read_image gives nothing.
    assert read_image(tmp_path / "chat" / "mine.png", tmp_path / "chat") is None
    assert read_image(secret, tmp_path / "chat") is None
    tool.run(f"os.remove('real.png')\nos.symlink({str(secret)!r}, 'real.png')")
    assert read_image(out.images[0], tmp_path / "chat") is None
    tool.run("open('fake.png', 'w').write('not a png')")
    assert read_image(tmp_path / "chat" / "fake.png", tmp_path / "chat") is None


@pytest.mark.skipif(os.geteuid() != 0, reason="the folder is handed to nobody only when we are root")
def test_handing_the_folder_to_nobody_does_not_follow_symlinks(make_tool, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "file").write_text("root's")
    tool = make_tool(folder=tmp_path / "chat")
    tool.run(f"import os\nos.symlink({str(victim)!r}, 'dir-link')\nos.symlink({str(victim / 'file')!r}, 'link')")
    tool.restart()
    assert tool.run("print(1)").text == "1\n"  # a new kernel: the folder was handed over again
    assert victim.stat().st_uid == 0 and (victim / "file").stat().st_uid == 0


def test_code_that_ends_its_kernel_gets_a_fresh_one(make_tool):
    tool = make_tool()
    tool.run("x = 1")
    out = tool.run("import os\nos._exit(3)")
    assert out.restarted and "the kernel died" in out.error
    assert "NameError" in tool.run("x").error
    assert tool.run("print('alive')").text == "alive\n"


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
