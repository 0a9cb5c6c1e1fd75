"""Runs INSIDE the sandbox as a plain script (stdlib + ipykernel only): read the connection (its
signing key included) from an inherited pipe, give up root, set the resource limits, then become
the Jupyter kernel. Everything the model's code starts inherits them.

usage: python kernel_entry.py CONNECTION_FD MEMORY PROCESSES FILE_SIZE [UID GID]
   or: APP --python-tool-kernel CONNECTION_FD ...   (the frozen app, packaging/bundle_entry.py)
"""

import os
import resource
import signal
import sys


def _limit(name: str, value: int) -> None:
    kind = getattr(resource, name, None)
    if kind is None:
        return
    try:
        resource.setrlimit(kind, (value, value))
    except (ValueError, OSError):
        # macOS refuses some limits (RLIMIT_AS is not enforced there): the host watchdog covers them.
        pass


def _read_connection(fd: int) -> bytes:
    """The connection file's JSON, from the pipe the app wrote it to (no file the code could read)."""
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def _empty_bounding_set() -> None:
    """Drop every capability from the bounding set (needs CAP_SETPCAP, which bubblewrap left us),
    so that nothing the code runs can ever regain one."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    for cap in range(last + 1):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), f"could not drop capability {cap} from the bounding set")


def _clear_capabilities() -> None:
    """capset() with empty sets: after setuid the inheritable set is the one left to clear."""
    import ctypes

    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()                  # effective, permitted, inheritable x 2 words
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.capset(header, data) != 0:
        raise OSError(ctypes.get_errno(), "could not clear the capability sets")


def _private_copy(connection: bytes) -> str:
    """The kernel reads its connection from a file: a 0600 one in the sandbox's private /tmp,
    removed as soon as the kernel has read it."""
    import tempfile

    fd, path = tempfile.mkstemp(prefix="kernel-", suffix=".json")
    with os.fdopen(fd, "wb") as f:
        f.write(connection)
    return path


def main(argv: list) -> None:
    connection = _read_connection(int(argv[0]))
    memory, processes, file_size = int(argv[1]), int(argv[2]), int(argv[3])
    if len(argv) > 5:
        # Started as root (CI, containers): root escapes RLIMIT_NPROC, so the code runs as a uid of
        # its own (sandbox.SANDBOX_UIDS), never shared with another chat or a daemon.
        _empty_bounding_set()
        os.setgroups([])
        os.setgid(int(argv[5]))
        os.setuid(int(argv[4]))
    if sys.platform.startswith("linux"):
        _clear_capabilities()
    if sys.platform.startswith("linux"):
        _limit("RLIMIT_AS", memory)
        # Linux counts threads here; the kernel has about ten, hence the room.
        _limit("RLIMIT_NPROC", processes * 2)
    _limit("RLIMIT_FSIZE", file_size)
    _limit("RLIMIT_CORE", 0)
    # A file over RLIMIT_FSIZE should be an OSError in the code, not a signal that kills the kernel.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    from ipykernel.kernelapp import IPKernelApp

    connection_file = _private_copy(connection)
    options = [
        "-f", connection_file,
        "--HistoryManager.enabled=False",  # no sqlite history file, nothing written outside /tmp
        "--IPKernelApp.log_level=ERROR",
        # Copy every message: the first big zero-copy one (a flood of output) starts pyzmq's
        # garbage-collector threads, which the host would take for threads the code left running.
        f"--Session.copy_threshold={2**62}",
    ]
    if sys.platform == "darwin":
        # No --die-with-parent there: the kernel exits by itself when the app is gone.
        options.append(f"--IPKernelApp.parent_handle={os.getppid()}")
    app = IPKernelApp.instance()
    app.initialize(options)
    os.unlink(connection_file)  # read: the key now lives only in the kernel's memory
    app.start()


if __name__ == "__main__":
    # This folder is sys.path[0] when run as a script: its module names must not shadow anything.
    sys.path.pop(0)
    main(sys.argv[1:])
