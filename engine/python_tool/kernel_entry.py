"""Runs INSIDE the sandbox as a plain script (stdlib + ipykernel only): give up root, set the
resource limits, then become the Jupyter kernel. Everything the model's code starts inherits them.

usage: python kernel_entry.py CONNECTION_FILE MEMORY PROCESSES FILE_SIZE [UID GID]
   or: APP --python-tool-kernel CONNECTION_FILE ...   (the frozen app, packaging/bundle_entry.py)
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


def main(argv: list) -> None:
    connection_file, memory, processes, file_size = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    if len(argv) > 5:
        # Started as root (CI, containers): root escapes RLIMIT_NPROC, so the code runs as nobody.
        os.setgroups([])
        os.setgid(int(argv[5]))
        os.setuid(int(argv[4]))
    if sys.platform.startswith("linux"):
        _limit("RLIMIT_AS", memory)
        # Linux counts threads here; the kernel has about ten, hence the room.
        _limit("RLIMIT_NPROC", processes * 2)
    _limit("RLIMIT_FSIZE", file_size)
    _limit("RLIMIT_CORE", 0)
    # A file over RLIMIT_FSIZE should be an OSError in the code, not a signal that kills the kernel.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    from ipykernel.kernelapp import IPKernelApp

    options = [
        "-f", connection_file,
        "--HistoryManager.enabled=False",  # no sqlite history file, nothing written outside /tmp
        "--IPKernelApp.log_level=ERROR",
    ]
    if sys.platform == "darwin":
        # No --die-with-parent there: the kernel exits by itself when the app is gone.
        options.append(f"--IPKernelApp.parent_handle={os.getppid()}")
    IPKernelApp.launch_instance(argv=options)


if __name__ == "__main__":
    # This folder is sys.path[0] when run as a script: its module names must not shadow anything.
    sys.path.pop(0)
    main(sys.argv[1:])
