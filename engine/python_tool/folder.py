"""The host's side of a chat's folder, which the code owns: how much disk it takes (for the quota)
and stripping the setuid/setgid bits the code may have set. Both run only while nothing of the
code runs (between calls it is paused) or from the watchdog, and never follow a symlink the code
left: the host may be root."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

SETID = stat.S_ISUID | stat.S_ISGID
MIN_ENTRY = 4096  # what a file or folder costs the filesystem at least (an inode, a block)


def disk_usage(folder: Path, pids=()) -> int:
    """Bytes on disk of the folder's files (allocated blocks, each inode once, no symlink
    followed; every entry at least one 4 KiB block, so a million empty files is not free), plus the
    files that processes `pids` hold open after deleting them: a file removed while open keeps its
    space until it is closed."""
    seen: set[tuple[int, int]] = set()
    total = 0
    try:
        device = os.lstat(folder).st_dev
    except OSError:
        return 0
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in files + dirs:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue  # removed while we looked
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += max(st.st_blocks * 512, MIN_ENTRY)
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue  # ended, or not Linux
        for fd in fds:
            try:
                st = os.stat(f"/proc/{pid}/fd/{fd}")  # the open file itself, even deleted
            except OSError:
                continue
            if (stat.S_ISREG(st.st_mode) and st.st_nlink == 0 and st.st_dev == device
                    and (st.st_dev, st.st_ino) not in seen):
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def strip_setid(folder: Path) -> int:
    """Remove the setuid and setgid bits from every file and folder in folder (a setuid file the
    code left would run as its owner for whoever starts it on the host). -> how many were changed."""
    changed = 0
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in [*dirs, *files]:
            path = os.path.join(root, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)) and st.st_mode & SETID:
                changed += _chmod_no_follow(path, st, stat.S_IMODE(st.st_mode) & ~SETID)
    return changed


def _chmod_no_follow(path: str, seen: os.stat_result, mode: int) -> int:
    if not sys.platform.startswith("linux"):
        os.chmod(path, mode, follow_symlinks=False)  # lchmod exists on macOS
        return 1
    # An O_PATH descriptor of the very inode we looked at (never a symlink's target), changed
    # through /proc/self/fd: opening for reading would need read permission.
    fd = os.open(path, os.O_PATH | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (seen.st_dev, seen.st_ino):
            return 0
        os.chmod(f"/proc/self/fd/{fd}", mode)
        return 1
    finally:
        os.close(fd)
