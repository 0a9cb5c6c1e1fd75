"""The seccomp filter of the Linux sandbox: the system calls a container runtime's default profile
(Docker's, moby/profiles seccomp/default.json) denies to a container without added capabilities,
denied here too, for the kernel and everything it starts (bubblewrap's `--seccomp FD`).

Built with libseccomp (the library Docker, Podman and systemd use) through pyseccomp, its ctypes
binding, rather than as hand-written BPF: libseccomp knows each architecture's system call numbers,
handles the x32 ABI and kills calls made through another architecture's entry (i386 `int 0x80` on
x86_64), which a hand-written denylist gets wrong easily. Debian's python3-seccomp binds only the
system Python, not a venv's or the frozen app's. A denylist, not Docker's allowlist: what Python and
its libraries call tomorrow still works, and what is denied is what lets code leave or attack the
sandbox (namespaces, mounts, the kernel's keyrings, BPF, other processes' memory, io_uring).
"""

from __future__ import annotations

import errno
import os
import tempfile

# Each is answered EPERM, as Docker does.
DENIED = (
    # new namespaces and joining others ("unshare -r" would give the code root in a new user namespace)
    "unshare", "setns",
    # mounts, old and new API
    "mount", "umount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr",
    # kernel modules, kexec, reboot, swap, accounting, quotas, clocks
    "init_module", "finit_module", "delete_module", "create_module", "query_module", "get_kernel_syms",
    "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd",
    "settimeofday", "stime", "clock_settime", "clock_adjtime", "adjtimex",
    # the kernel's keyrings are not namespaced
    "add_key", "request_key", "keyctl",
    # tracing and other processes' memory
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "process_madvise",
    "perf_event_open", "bpf", "userfaultfd", "lookup_dcookie", "fanotify_init",
    # NUMA policy, raw I/O ports, old ABIs, file handles that bypass paths
    "mbind", "set_mempolicy", "get_mempolicy", "move_pages", "migrate_pages", "ioperm", "iopl", "vm86",
    "vm86old", "uselib", "ustat", "sysfs", "_sysctl", "nfsservctl", "name_to_handle_at",
    "open_by_handle_at", "syslog", "vhangup", "personality",
    # io_uring runs I/O outside seccomp's view (Docker stopped allowing it in 2023)
    "io_uring_setup", "io_uring_enter", "io_uring_register",
)
# clone3 passes its flags in memory, where seccomp can't look: ENOSYS makes libc fall back to
# clone, whose namespace flags are checked below (Docker does the same).
NEW_NAMESPACES = 0x10000000 | 0x00020000 | 0x20000000 | 0x40000000 | 0x04000000 | 0x08000000 | 0x02000000
# CLONE_NEWUSER, NEWNS, NEWPID, NEWNET, NEWUTS, NEWIPC, NEWCGROUP


def seccomp_problem() -> str | None:
    """None when the filter can be built here, else the sentence saying what to install."""
    try:
        import pyseccomp  # noqa: F401
    except (ImportError, RuntimeError, OSError):  # RuntimeError: the binding found no libseccomp
        return ("The Python tool's sandbox needs libseccomp and its binding: install libseccomp2 "
                "(sudo apt install libseccomp2) and pip install pyseccomp.")
    return None


def filter_file():
    """An unlinked temporary file holding the BPF program, at offset 0, for `bwrap --seccomp FD`."""
    import pyseccomp as sc

    rules = sc.SyscallFilter(sc.ALLOW)
    for name in DENIED:
        _add(rules, sc.ERRNO(errno.EPERM), name)
    _add(rules, sc.ERRNO(errno.ENOSYS), "clone3")
    for bit in _bits(NEW_NAMESPACES):
        _add(rules, sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, bit, bit))
    out = tempfile.TemporaryFile()
    rules.export_bpf(out)
    out.seek(0)
    os.set_inheritable(out.fileno(), True)
    return out


def _add(rules, action, name, *args) -> None:
    try:
        rules.add_rule(action, name, *args)
    except (OSError, ValueError, RuntimeError):
        pass  # a call this architecture or this libseccomp doesn't know: nothing to deny


def _bits(mask: int):
    return [1 << i for i in range(mask.bit_length()) if mask >> i & 1]
