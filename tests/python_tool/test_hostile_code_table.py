"""Hostile code through the Python tool, one row per piece of code: what the probe of issue 24
threw at it (31 pieces) and every wall of docs/python_tool.md. Each row is the attack as the model would write it, run
for real in a real sandboxed kernel, and what must hold: the text the model gets back (and the
sentence for the user), a check made from the host that the attack had no effect there, and that
the next call in the same tool still answers (or the kernel restarted and said so).

Rows marked `shared` only probe: they run in one kernel per sandbox mode (a kernel start is ~0.7 s).
Rows marked `both` also run in the user-namespace sandbox a normal user gets, when the tests run
as root (there the default is the root sandbox, where the code runs as a uid of its own).
"""

from __future__ import annotations

import os
import re
import socket
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Callable

import psutil
import pytest

from engine.python_tool import Limits, PythonTool, read_image
from engine.python_tool.kernel import SandboxedKernel
from engine.python_tool.sandbox import ENTRY

LINUX = sys.platform.startswith("linux")
ROOT = os.geteuid() == 0
REPO = ENTRY.parents[2]
# Seatbelt (macOS) refuses with EPERM where Linux's namespaces make things absent or unreachable.
NOT_THERE = r"FileNotFoundError|PermissionError|Operation not permitted"
SECRETS = ("tax return", "secret-key-material", "secret-token-value")
PNG_1x1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082")
# The disk quota is a watchdog's (every 0.02 s while code runs): here code passes it by 2-26 MiB
# before it is stopped, so one file's cap is the bound it must stay under.
QUOTA, FILE_CAP = 24 << 20, 128 << 20
SHARED_LIMITS = {"file_size": 8 << 20, "tmp_size": 16 << 20}


@dataclass
class Scene:
    """What a row sees: the host's planted files, the tool, and the names its code may use ($name)."""

    base: Path
    tmp: Path
    tool: PythonTool
    names: dict = field(default_factory=dict)  # for the code: Python literals
    raw: dict = field(default_factory=dict)    # the same, as plain text (paths on the host)
    kernel_pid: int | None = None  # the kernel before the attack
    run_dir: str = ""
    extra: dict = field(default_factory=dict)
    wait_until: Callable = None    # conftest's: poll a condition with a deadline

    @property
    def chat(self) -> Path:
        return self.tool.workdir

    @property
    def inside(self) -> Path:
        """The sandbox's filesystem, seen from the host (through the kernel's /proc/PID/root)."""
        return Path(f"/proc/{self.tool._kernel.kernel_pid}/root")


@dataclass(frozen=True)
class Row:
    id: str
    code: str                      # the attack; $name is filled from the scene
    said: str                      # regex the model's text must match
    host: Callable[[Scene, object], None]  # what must hold on the host afterwards
    error: str | None = None       # regex the user's sentence must match; None: there is none; "*": either
    restarted: bool = False
    shared: bool = False
    both: bool = False
    linux: bool = False
    root: bool = False
    limits: dict = field(default_factory=dict)
    timeout: float | None = None
    prepare: Callable[[Scene], None] | None = None
    attack: Callable[[Scene, str], object] | None = None  # for what does not come through tool.run
    next: tuple[str, str] = ("print('next')", r"next\n$")  # a call after it, and its text


# ---------------------------------------------------------------- host-side checks

def absent_inside(*paths):
    """The paths do not exist in the sandbox, looked at from the host (the chat folder does)."""
    def check(scene, out):
        if not LINUX:
            return  # no /proc/PID/root: the text's error is the check there
        assert (scene.inside / str(scene.chat).lstrip("/")).is_dir(), "can't see into the sandbox"
        for path in paths:
            path = scene.raw.get(path, path) if isinstance(path, str) else path
            assert not os.path.lexists(scene.inside / str(path).lstrip("/")), f"{path} is in the sandbox"
    return check


def same_kernel(scene, out):
    assert scene.tool._kernel.kernel_pid == scene.kernel_pid and psutil.pid_exists(scene.kernel_pid)


def old_sandbox_gone(scene, out):
    """The restarted kernel's whole sandbox is gone: nothing names its run folder any more."""
    assert scene.tool._kernel is None or scene.tool._kernel.kernel_pid != scene.kernel_pid
    assert not [p for p in psutil.process_iter(["cmdline", "status"]) if p.info["status"] != psutil.STATUS_ZOMBIE
                and scene.run_dir in " ".join(p.info["cmdline"] or [])]


def kernel_status(scene) -> dict:
    with open(f"/proc/{scene.tool._kernel.kernel_pid}/status") as f:
        return dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)


def confined(scene, out):
    """The kernel, read from the host: a seccomp filter, no_new_privs, no capability at all."""
    if not LINUX:
        return
    fields = kernel_status(scene)
    assert fields["Seccomp"].strip() == "2" and fields["NoNewPrivs"].strip() == "1", fields
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(fields[cap], 16) == 0, (cap, fields[cap])
    if ROOT and scene.tool._kernel.as_nobody:
        assert int(fields["Uid"].split()[0]) not in (0, 65534)


def no_network(scene, out):
    """The sandbox's network namespace has a loopback only, and it is down."""
    if not LINUX:
        return
    with open(f"/proc/{scene.tool._kernel.kernel_pid}/net/dev") as f:
        interfaces = [line.split(":")[0].strip() for line in f.read().splitlines()[2:]]
    assert interfaces == ["lo"], interfaces
    assert os.readlink(f"/proc/{scene.tool._kernel.kernel_pid}/ns/net") != os.readlink("/proc/self/ns/net")


def nothing_written(*paths):
    def check(scene, out):
        for path in paths:
            path = Path(Template(path).substitute(scene.raw))
            assert not path.exists(), path
    return check


def every(*checks):
    def check(scene, out):
        for c in checks:
            c(scene, out)
    return check


def folder_bytes(folder: Path) -> int:
    seen, total = set(), 0
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in files:
            st = os.lstat(os.path.join(root, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def thread_states(scene) -> set[str]:
    pid = scene.tool._kernel.kernel_pid
    states = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            states.add(f.read().rsplit(")", 1)[1].split()[0])
    return states


def sandbox_running(scene) -> list[psutil.Process]:
    alive = []
    for p in psutil.Process(scene.tool._kernel.proc.pid).children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.Error:
            pass  # reaped while we looked
    return alive


# ---------------------------------------------------------------- row-specific preparation and checks

def host_server(scene):
    """A real server on the host's loopback, which really accepts a connect from outside."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    scene.extra["server"] = server
    scene.names["port"] = str(server.getsockname()[1])


def host_server_untouched(scene, out):
    server = scene.extra["server"]
    try:
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing from the sandbox is waiting
        with socket.create_connection(("127.0.0.1", int(scene.names["port"])), timeout=5):
            server.settimeout(5)
            server.accept()[0].close()  # and the server works
    finally:
        server.close()


def setuid_victim(scene):
    victim = scene.tmp / "host-tool"  # a host setuid file, reachable from the folder through a symlink
    victim.write_text("#!/bin/sh\n")
    victim.chmod(0o4755)
    scene.names["victim"] = repr(str(victim))


def setid_bits_stripped(scene, out):
    for name in ("sh-copy", "d", "d/e/f"):
        assert not os.lstat(scene.chat / name).st_mode & (stat.S_ISUID | stat.S_ISGID), name
    assert os.lstat(scene.chat / "sh-copy").st_mode & 0o777 == 0o755  # the rest of the mode is kept
    assert (scene.tmp / "host-tool").stat().st_mode & stat.S_ISUID  # never through a symlink


def entry_folder_only(scene, out):
    # Writing beside the entry script fails (read-only), or lands in the sandbox's private /tmp
    # when the checkout lives under /tmp (bubblewrap makes the mount point there).
    assert not (ENTRY.parent / "pwned.txt").exists()
    if out.error is not None:
        assert re.search(f"Read-only file system|{NOT_THERE}", out.error), out.error
        seen = ["kernel_entry.py"]
    else:
        assert str(ENTRY).startswith("/tmp/"), "a write beside the entry script succeeded outside the private /tmp"
        seen = ["kernel_entry.py", "pwned.txt"]  # inside the sandbox's own /tmp, which the host never sees
    if LINUX:
        assert sorted(os.listdir(scene.inside / str(ENTRY.parent).lstrip("/"))) == seen


def no_checkout_on_the_path(scene, out):
    """The kernel's environment, read from the host, puts nothing of the start folder or the
    checkout on its path (the venv may live inside the checkout, as scripts/test makes it)."""
    if not LINUX:
        return  # no /proc: the text's empty list is the check there
    with open(f"/proc/{scene.tool._kernel.kernel_pid}/environ", "rb") as f:
        env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
    venv = Path(sys.prefix).resolve()
    for p in map(Path, env.get(b"PYTHONPATH", b"").decode().split(os.pathsep)):
        if str(p) != ".":
            assert not p.is_relative_to(REPO) or p.is_relative_to(venv), p
            assert not p.is_relative_to(scene.base), p


def key_out_of_reach(scene, out):
    connection = Path(scene.tool._kernel.client.connection_file)
    info = scene.tool._kernel.client.get_connection_info()
    assert len(info["key"]) >= 32, "the channel is not signed"
    assert stat.S_IMODE(connection.stat().st_mode) == 0o600 and connection.stat().st_uid == os.geteuid()
    assert info["key"].decode() not in out.text
    if LINUX and ROOT and scene.tool._kernel.as_nobody:
        import subprocess  # nobody on the host (another chat's kernel, a daemon) can't read it either

        peek = subprocess.run(["cat", str(connection)], user=65534, capture_output=True, text=True)
        assert peek.returncode != 0 and "Permission denied" in peek.stderr


def unsigned_intruder(scene, code):
    """Any process of the sandbox's user could reach the kernel's sockets: send it code unsigned."""
    from jupyter_client import BlockingKernelClient

    kernel = scene.tool._kernel
    intruder = BlockingKernelClient(connection_file=kernel.client.connection_file)
    intruder.load_connection_file()
    intruder.session.key = b""
    logged = kernel.log.lower().count(b"invalid message")
    kernel.resume()  # between calls the kernel is paused: let it read the intruder's message
    intruder.start_channels()
    try:
        intruder.execute(code)
        # Either the code runs, or the kernel logs "Invalid message" (unsigned) and drops it.
        scene.wait_until(lambda: (scene.chat / "pwned").exists() or kernel.log.lower().count(b"invalid message") > logged,
                         what="the kernel to handle the intruder's message")
    finally:
        intruder.stop_channels()
    return scene.tool.run("import os\nprint(os.path.exists('pwned'))")


def nothing_runs_between_calls(scene, out):
    argv = scene.extra["argv"]
    assert not [p for p in psutil.process_iter(["cmdline", "status"]) if p.info["cmdline"] == argv
                and p.info["status"] != psutil.STATUS_ZOMBIE]
    if LINUX:
        assert thread_states(scene) == {"T"}  # every thread of the kernel stopped, the code's too


def sleeper(scene):
    # A duration nothing else uses: this test run's own (another copy of the suite may run).
    scene.extra["argv"] = ["sleep", f"299.{os.getpid()}"]
    scene.names["argv"] = repr(scene.extra["argv"])


def hand_over_again(scene, code):
    scene.tool.run(code)
    scene.tool.restart()  # a new kernel: the folder is handed to its uid again
    return scene.tool.run("print(1)")


def victim_dir(scene):
    victim = scene.tmp / "victim"
    victim.mkdir()
    (victim / "file").write_text("root's")
    scene.names["victim"] = repr(str(victim))


def display_target(scene):
    target = scene.tmp / "host-only"
    target.mkdir()
    scene.names["target"] = repr(str(target))
    scene.names["png"] = repr(PNG_1x1)


def target_empty(scene, out):
    assert list((scene.tmp / "host-only").iterdir()) == []
    for image in out.images:
        assert image.parent.parent == scene.chat and stat.S_ISREG(os.lstat(image).st_mode), image


def host_photo(scene):
    photo = scene.tmp / "photo.png"
    photo.write_bytes(PNG_1x1)
    scene.names["photo"] = repr(str(photo))
    scene.names["png"] = repr(PNG_1x1)


def only_real_images(scene, out):
    assert out.images == [scene.chat / "real.png"]
    assert read_image(out.images[0], scene.chat) == PNG_1x1
    # The UI reads images only through read_image: a symlink, a path out of the folder, a file
    # swapped for a symlink after the run, or a fake PNG give nothing.
    assert read_image(scene.chat / "mine.png", scene.chat) is None
    assert read_image(scene.tmp / "photo.png", scene.chat) is None
    scene.tool.run(f"os.remove('real.png')\nos.symlink({scene.names['photo']}, 'real.png')\n"
                   "open('fake.png', 'w').write('not a png')")
    assert read_image(out.images[0], scene.chat) is None
    assert read_image(scene.chat / "fake.png", scene.chat) is None


def syscall_number(name):
    def prepare(scene):
        pyseccomp = pytest.importorskip("pyseccomp")
        scene.names["nr"] = str(pyseccomp.resolve_syscall(pyseccomp.system_arch(), name))
    return prepare


# System calls a container runtime's default profile denies, each with arguments that succeed (or
# fail otherwise than EPERM) for an unprivileged process without the filter.
DENIED = {
    "unshare": "0x10000000",                    # CLONE_NEWUSER
    "setns": "-1, 0",                           # EBADF without the filter
    "keyctl": "0, -2, 1",                       # KEYCTL_GET_KEYRING_ID of the process keyring
    "add_key": 'b"user", b"k", b"v", 1, -2',
    "personality": "0x0040000",                 # ADDR_NO_RANDOMIZE
    "perf_event_open": "None, 0, -1, -1, 0",    # EFAULT without the filter
    "io_uring_setup": "1, ctypes.create_string_buffer(256)",
    "kcmp": "os.getpid(), os.getpid(), 0, 0, 0",
    "process_vm_readv": "os.getpid(), None, 0, None, 0, 0",
    "userfaultfd": "1",                         # UFFD_USER_MODE_ONLY
    "set_mempolicy": "0, None, 0",
    "ptrace": "0, 0, 0, 0",                     # PTRACE_TRACEME
    "clone3": "None, 0",
    "mount": 'b"none", b"/tmp", b"tmpfs", 0, None',
    "bpf": "0, None, 0",
}

SYSCALL_ROWS = [
    Row(f"syscall-{name}",
        "import ctypes, errno, os\nlibc = ctypes.CDLL(None, use_errno=True)\nctypes.set_errno(0)\n"
        f"r = libc.syscall($nr, {args})\n"
        "print(r, errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno()) if r < 0 else '-')",
        said=r"^-1 ENOSYS\n" if name == "clone3" else r"^-1 EPERM\n", host=confined, prepare=syscall_number(name),
        shared=True, both=True, linux=True)
    for name, args in DENIED.items()
]

ROWS = [
    # -------------------------------------------- the folder the app was started from, the checkout
    Row("start-folder-file", "print(open($secret).read())", said=NOT_THERE, error=NOT_THERE,
        host=absent_inside("start"), shared=True, both=True),
    Row("start-folder-listing", "import os\nprint(os.listdir($start))", said=NOT_THERE, error=NOT_THERE,
        host=absent_inside("start"), shared=True, both=True),
    Row("checkout-file", "print(open($pyproject).read()[:20])", said=NOT_THERE, error=NOT_THERE,
        host=absent_inside(REPO / "pyproject.toml"), shared=True, both=True),
    Row("checkout-git", "import os\np = $git\nprint(os.listdir(p) if os.path.isdir(p) else open(p).read())",
        said=NOT_THERE, error=NOT_THERE, host=absent_inside(REPO / ".git"), shared=True, both=True),
    Row("engine-package", "print(open($tool_py).read()[:20])", said=NOT_THERE, error=NOT_THERE,
        host=absent_inside(ENTRY.parent / "tool.py"), shared=True, both=True),
    Row("checkout-via-sys-path",
        "import os, sys\nprint([p for p in sys.path if os.path.exists(p) and (p.startswith($start) or "
        "(p.startswith($repo) and not p.startswith($venv)))])",
        said=r"^\[\]\n", host=no_checkout_on_the_path, shared=True, both=True),
    # -------------------------------------------- the home, keys, the environment
    Row("ssh-key-by-tilde", "import os\nprint(open(os.path.expanduser('~/.ssh/id_ed25519')).read())",
        said=NOT_THERE, error=NOT_THERE, host=absent_inside("ssh"), shared=True, both=True),
    Row("ssh-key-by-path", "print(open($key).read())", said=NOT_THERE, error=NOT_THERE,
        host=absent_inside("key"), shared=True, both=True),
    Row("home-listing", "import os\nprint(os.listdir($home))",
        said=r"^\['chats'\]\n$" if LINUX else NOT_THERE, error=None if LINUX else NOT_THERE,
        host=absent_inside("ssh", "start"), shared=True, both=True),
    Row("secret-environment", "import os\nprint(dict(os.environ))", said=r"'HOME': ",
        host=lambda s, o: b"secret-token-value" not in Path(f"/proc/{s.tool._kernel.kernel_pid}/environ").read_bytes(),
        shared=True, both=True, linux=True),
    Row("root-home", "import os\nprint(sorted(os.listdir('/root')) if os.path.isdir('/root') else 'no /root')",
        # Only what Python needs may show there (a pyenv Python lives in /root/.pyenv): never .ssh.
        said=r"^(no /root|\[(?!.*\.ssh).*\])\n", host=absent_inside("/root/.ssh"), shared=True, both=True,
        linux=True),
    Row("host-processes", "import os\nprint(len([p for p in os.listdir('/proc') if p.isdigit()]))",
        said=r"^[1-9]\n",  # bubblewrap's init, the kernel, and what the code runs: never the host's
        host=lambda s, o: os.readlink(f"/proc/{s.tool._kernel.kernel_pid}/ns/pid") != os.readlink("/proc/self/ns/pid"),
        shared=True, both=True, linux=True),
    # -------------------------------------------- writes outside the chat folder
    Row("write-host-folder", "open($outside_file, 'w').write('pwned')", said=NOT_THERE, error=NOT_THERE,
        host=nothing_written("$outside_file"), shared=True, both=True),
    Row("write-beside-entry", f"open({str(ENTRY.parent / 'pwned.txt')!r}, 'w').write('pwned')",
        said=r"", error="*", host=entry_folder_only, shared=True, both=True),
    Row("write-usr", "open($usr_file, 'w').write('pwned')", said="Read-only file system|PermissionError",
        error="Read-only file system|PermissionError", host=nothing_written("$usr_file"), shared=True, both=True,
        linux=True),
    Row("append-etc-passwd", "open('/etc/passwd', 'a').write('evil::0:0::/:/bin/sh\\n')",
        said="Read-only file system|PermissionError", error="Read-only file system|PermissionError",
        host=lambda s, o: "evil::" not in Path("/etc/passwd").read_text(), shared=True, both=True, linux=True),
    # -------------------------------------------- the network
    Row("internet", "import socket\ns = socket.socket(); s.settimeout(5); s.connect(('1.1.1.1', 443))",
        said="Network is unreachable|Operation not permitted", error="Network is unreachable|Operation not permitted",
        host=no_network, shared=True, both=True),
    Row("host-loopback", "import socket\ns = socket.socket(); s.settimeout(5); s.connect(('127.0.0.1', $port))",
        said="ConnectionRefusedError|Operation not permitted", error="ConnectionRefusedError|Operation not permitted",
        host=every(no_network, host_server_untouched), prepare=host_server, shared=True, both=True),
    Row("dns", "import socket\nsocket.getaddrinfo('example.com', 80)", said="gaierror", error="gaierror",
        host=no_network, shared=True, both=True),
    # -------------------------------------------- privileges
    Row("capabilities-and-seccomp", "print(open('/proc/self/status').read())",
        said=r"(?=(.|\n)*Seccomp:\t2\n)(?=(.|\n)*CapEff:\t0+\n)", host=confined, shared=True, both=True, linux=True),
    Row("unshare-r-id", "import subprocess\nr = subprocess.run(['unshare', '-r', 'id'], capture_output=True, "
        "text=True)\nprint(r.returncode, r.stdout, r.stderr)",
        said=r"^[1-9]\d* +unshare: ", host=confined, shared=True, both=True, linux=True),
    # In the user-namespace sandbox the code is uid 0 of its own namespace, without a capability.
    Row("become-root", "import os\nos.setuid(0)\nos.setgid(0)\nos.setgroups([0])",
        said="PermissionError", error="PermissionError", host=confined, shared=True, both=True, linux=True),
    *SYSCALL_ROWS,
    # -------------------------------------------- the Jupyter channel
    Row("read-the-kernel-key", "print(open($connection).read())", said=NOT_THERE, error=NOT_THERE,
        host=key_out_of_reach, shared=True, both=True),
    Row("find-a-connection-file",
        "import glob\nprint(glob.glob('/tmp/**/*.json', recursive=True) + glob.glob('/mnt/data/*.json'))",
        said=r"^\[\]\n", host=lambda s, o: not list(Path(s.tool._kernel.run_dir, "sandbox").rglob("*.json")),
        shared=True, both=True),
    Row("unsigned-intruder", "open('pwned', 'w').write('x')", said=r"^False\n", attack=unsigned_intruder,
        host=nothing_written(str(Path("$chat") / "pwned")), shared=True, both=True),
    # -------------------------------------------- memory, processes, time, output
    Row("allocate-50-gb", "keep = 'still here'\nblock = bytearray(50 * 2**30)", said="at most 2 GiB of memory",
        error=r"^The code raised MemoryError.*2 GiB", host=same_kernel, next=("print(keep)", r"^still here\n$"),
        shared=True, both=True, linux=True),
    Row("memory-over-processes",
        "import subprocess, sys, time\ncode = 'b = b\"x\" * (200 << 20); import time; time.sleep(60)'\n"
        "procs = [subprocess.Popen([sys.executable, '-c', code]) for _ in range(3)]\ntime.sleep(60)",
        said="restarted", error="together used more than 0.375 GiB of memory", restarted=True,
        host=old_sandbox_gone, limits={"memory": 256 << 20}),
    Row("fork-bomb", "import os\nwhile True:\n    os.fork()", said="restarted", error="more than 32 processes",
        restarted=True, host=old_sandbox_gone, limits={"processes": 32}),
    Row("print-100-mb", "import sys\nfor i in range(100):\n    sys.stdout.write('y' * 2**20)\nprint('THE END')",
        said=rf"output truncated: {100 * 2**20 + 8:,} characters in all(.|\n)*THE END\n$",
        host=every(same_kernel, lambda s, o: len(o.text) < s.tool.limits.output_chars + 200), shared=True),
    Row("endless-loop", "x_loop = 'kept'\nwhile True:\n    pass", said="KeyboardInterrupt",
        error=r"^The code ran longer than the 2 s limit and was interrupted\.$", timeout=2,
        host=every(same_kernel, lambda s, o: not LINUX or thread_states(s) == {"T"}),
        next=("print(x_loop)", r"^kept\n$"), shared=True),
    Row("loop-ignoring-sigint",
        "x = 1\nimport signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
        said="variables and imports from earlier calls are gone", error="did not stop when interrupted",
        restarted=True, timeout=2, limits={"interrupt_grace": 2}, host=old_sandbox_gone,
        next=("print('x' in globals())", r"^False\n$")),
    Row("end-its-own-kernel", "x = 1\nimport os\nos._exit(3)", said="restarted", error="the kernel died",
        restarted=True, host=old_sandbox_gone, next=("print('x' in globals())", r"^False\n$")),
    # -------------------------------------------- work that outlives the call
    Row("background-thread",
        "import threading, time\nticks = [0]\ndef spin():\n    while True:\n        ticks[0] += 1\n"
        "threading.Thread(target=spin, daemon=True).start()\nprint('started')",
        said=r"^started\n\n\[A background thread started by this code \(or a library it used\) was paused; it "
             r"resumes during the next call\.\]$",
        host=lambda s, o: not LINUX or thread_states(s) == {"T"},
        # The thread was paused, not lost; told once (the next call started none); waits for a tick.
        next=("before = ticks[0]\nend = time.monotonic() + 30\n"
              "while ticks[0] == before and time.monotonic() < end:\n    time.sleep(0.01)\nprint(ticks[0] > before)",
              r"^True\n$"),
        both=True),
    Row("background-process", "import subprocess\nchild = subprocess.Popen($argv)\nprint('started')",
        said=r"^started\n\n\[A background process started by this code was ended when the call returned\.\]$",
        prepare=sleeper, host=nothing_runs_between_calls, both=True),
    Row("background-process-tree",
        "import subprocess, sys\n"
        "code = 'import os, time\\nfor i in range(3):\\n    if os.fork() == 0:\\n        time.sleep(60)\\n"
        "        os._exit(0)\\ntime.sleep(60)'\np = subprocess.Popen([sys.executable, '-c', code])\nx = 1",
        said=r"\[(A background process|\d background processes) started by this code (was|were) ended when the "
             r"call returned\.\]$",
        host=lambda s, o: s.wait_until(lambda: len(sandbox_running(s)) == 2, what="the background processes to end"),
        limits={"processes": 16}, next=("print(x)", r"^1\n$")),
    # -------------------------------------------- the disk
    Row("fill-disk-4-mib-files",
        "for i in range(100):\n    open(f'fill-{i}.bin', 'wb').write(b'1' * (4 << 20))",  # 400 MB at most
        said="delete files", error=r"disk quota of 24 MiB", restarted=True,
        host=lambda s, o: folder_bytes(s.chat) <= QUOTA + FILE_CAP, limits={"disk_quota": QUOTA, "file_size": FILE_CAP},
        # Over the quota, the next call can still delete files, and then write again.
        next=("import glob, os\nfor f in glob.glob('fill-*'):\n    os.remove(f)\n"
              "open('small.bin', 'wb').write(b'2' * (1 << 20))\nprint('room')", r"room\n$")),
    Row("many-empty-files", "import os\nfor i in range(5000):\n    open(f'empty-{i}', 'w').close()",
        said="delete files", error="disk quota", restarted=True, limits={"disk_quota": 4 << 20},  # 1,024 entries
        host=lambda s, o: len(os.listdir(s.chat)) < 5000),
    Row("files-deleted-while-open",
        "import os\nkept = []\nfor i in range(100):\n    f = open(f'h{i}', 'wb')\n    os.remove(f'h{i}')\n"
        "    f.write(b'1' * (4 << 20)); f.flush(); kept.append(f)",
        said="delete files", error="disk quota", restarted=True, limits={"disk_quota": QUOTA, "file_size": FILE_CAP},
        host=old_sandbox_gone),  # and with it the hidden files' space
    Row("file-past-its-cap", "open('big.bin', 'wb').write(b'0' * (9 << 20))", said="File too large",
        error="File too large", host=lambda s, o: (s.chat / "big.bin").stat().st_size <= 8 << 20,
        shared=True, linux=True),
    Row("fill-tmp", "\n".join(f"open('/tmp/fill-{i}-$pid.bin', 'wb').write(b'0' * (7 << 20))" for i in range(3)),
        said="No space left on device", error="No space left on device",
        host=nothing_written("/tmp/fill-0-$pid.bin", "/tmp/fill-1-$pid.bin"), shared=True, linux=True),
    # -------------------------------------------- setuid files, symlinks the host might follow
    Row("setuid-setgid-files",
        "import os, shutil, sys\nshutil.copy(sys.executable, 'sh-copy'); os.chmod('sh-copy', 0o6755)\n"
        "os.makedirs('d/e'); os.chmod('d', 0o2777)\nopen('d/e/f', 'w').close(); os.chmod('d/e/f', 0o4711)\n"
        "os.symlink($victim, 'link')\nprint(oct(os.stat('sh-copy').st_mode))",
        said=r"^0o106755\n$",  # the code could set them, inside; they don't outlive the call
        prepare=setuid_victim, host=setid_bits_stripped),
    Row("symlinked-display-folder",
        "import os\nos.symlink($target, 'displayed')\nfrom IPython.display import Image\nImage(data=$png)",
        said="could not be saved", prepare=display_target, host=target_empty),
    Row("dangling-symlink-for-the-next-image",
        "import os\nos.mkdir('displayed')\nos.symlink($target + '/planted.png', 'displayed/image-1.png')\n"
        "from IPython.display import Image\nImage(data=$png)",
        said=r"saved as displayed/image-2\.png", prepare=display_target, host=target_empty),
    Row("symlinks-as-images",
        "import os\nos.symlink($photo, 'mine.png')\nos.symlink('/', 'everything')\n"
        "n = open('real.png', 'wb').write($png)",
        said=r"^\(no output\)$", prepare=host_photo, host=only_real_images, shared=True),
    Row("symlinks-for-the-hand-over",
        "import os\nos.symlink($victim, 'dir-link')\nos.symlink($victim + '/file', 'link')",
        said=r"^1\n$", attack=hand_over_again, prepare=victim_dir, root=True,
        host=lambda s, o: (s.tmp / "victim").stat().st_uid == 0 and (s.tmp / "victim" / "file").stat().st_uid == 0),
]


def _params():
    for row in ROWS:
        yield pytest.param(row, "default", id=row.id)
        if row.both:
            yield pytest.param(row, "user-namespace", id=f"{row.id}-userns")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The host the code must not reach: a home with a key, a start folder with a secret."""
    base = tmp_path_factory.mktemp("host")
    home = base / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY----- secret-key-material")
    (home / "Documents").mkdir()
    (home / "Documents" / "secret.txt").write_text("tax return")
    (base / "outside").mkdir()
    return base


@pytest.fixture(scope="module")
def shared_tools():
    tools = {}
    yield tools
    for tool in tools.values():
        tool.close()


@pytest.mark.parametrize("row, mode", list(_params()))
def test_hostile_code(row, mode, world, shared_tools, tmp_path, monkeypatch, needs_sandbox, wait_until):
    if row.linux and not LINUX:
        pytest.skip("a Linux wall (bubblewrap, seccomp, /proc)")
    if row.root and not ROOT:
        pytest.skip("only root hands the folder to the kernel's uid")
    if mode == "user-namespace":
        if not ROOT:
            pytest.skip("not root: the default run already is the user-namespace sandbox")
        monkeypatch.setattr(SandboxedKernel, "drop_root", False)
    home, start = world / "home", world / "home" / "Documents"
    # Started from ~/Documents with the checkout on sys.path (scripts/run, PYTHONPATH, `python -m app`).
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GITHUB_TOKEN", "secret-token-value")
    monkeypatch.chdir(start)
    monkeypatch.syspath_prepend(str(start))
    monkeypatch.syspath_prepend(str(REPO))
    if row.shared:
        if mode not in shared_tools:
            shared_tools[mode] = PythonTool(home / "chats" / f"shared-{mode}", Limits(timeout=30.0, **SHARED_LIMITS))
        tool = shared_tools[mode]
    else:
        tool = PythonTool(home / "chats" / f"{row.id}-{mode}", Limits(**{"timeout": 30.0, **row.limits}))
    try:
        assert tool.start() is None
        scene = Scene(base=world, tmp=tmp_path, tool=tool, kernel_pid=tool._kernel.kernel_pid,
                      run_dir=str(tool._kernel.run_dir), wait_until=wait_until)
        paths = {
            "secret": start / "secret.txt", "start": start, "home": home, "ssh": home / ".ssh",
            "key": home / ".ssh" / "id_ed25519", "pyproject": REPO / "pyproject.toml", "git": REPO / ".git",
            "tool_py": ENTRY.parent / "tool.py", "repo": REPO, "venv": Path(sys.prefix).resolve(),
            "outside_file": world / "outside" / f"{row.id}-{mode}.txt", "chat": tool.workdir,
            "usr_file": Path("/usr") / f"pwned-{os.getpid()}.txt", "connection": tool._kernel.client.connection_file}
        scene.raw = {k: str(v) for k, v in paths.items()} | {"pid": str(os.getpid())}
        scene.names = {k: repr(str(v)) for k, v in paths.items()} | {"pid": str(os.getpid())}
        if row.prepare:
            row.prepare(scene)
        code = Template(row.code).substitute(scene.names)
        out = row.attack(scene, code) if row.attack else tool.run(code, timeout=row.timeout)

        assert re.search(row.said, out.text), (row.said, out.text)
        assert not any(secret in out.text for secret in SECRETS), out.text
        if row.error is None:
            assert out.error is None, out.error
        elif row.error != "*":
            assert out.error and re.search(row.error, out.error), (row.error, out.error)
        assert out.restarted == row.restarted
        assert row.host(scene, out) is not False, "the host-side check failed"
        follow = tool.run(row.next[0])
        assert re.search(row.next[1], follow.text) and not follow.restarted, follow.text
    finally:
        if not row.shared:
            tool.close()
