"""What one chat's Python may use. The defaults suit a 16 GB Mac that also holds the 20b model."""

from __future__ import annotations

from dataclasses import dataclass

GiB = 1 << 30
MiB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Walls of one kernel. Times in seconds, sizes in bytes, output in characters."""

    # gpt-oss was told in training that python "will time out after 120.0 seconds".
    timeout: float = 120.0
    # After an interrupt, how long the code has to stop before the whole kernel is restarted.
    interrupt_grace: float = 5.0
    memory: int = 2 * GiB          # address space of each process (Linux), resident total (watchdog)
    processes: int = 64            # processes alive in the sandbox at once, the kernel included
    file_size: int = 1 * GiB       # largest file the code may write
    disk_quota: int = 1 * GiB      # all the chat folder may hold (the code can pass it by one file's cap at most)
    tmp_size: int = 256 * MiB      # the sandbox's private /tmp and /dev/shm (memory-backed)
    output_chars: int = 10_000     # text sent back to the model; the rest is cut with a note
    startup_timeout: float = 60.0  # the kernel's first reply (2 shared cores can be slow)
