"""This process's resident memory, cheap enough to read every few milliseconds.

On Linux a ``/proc/self/status`` descriptor is kept open and read with ``pread``
(about 10 µs). It is the cheapest file that tells the pages of files from shared
memory: ``statm`` (1.3 µs) and psutil count both as "shared", and
``smaps_rollup`` walks every mapping. Without ``/proc`` (macOS, Windows) psutil
answers instead.
"""

from __future__ import annotations

import os
import re

_fd = -1
_process = None  # psutil.Process, when there is no /proc
# VmRSS - RssFile is anonymous plus shared memory (RssAnon + RssShmem); VmData +
# VmStk is statm's "data", what RLIMIT_DATA counts (and the main thread's stack).
_STATUS = re.compile(rb"VmRSS:\s*(\d+) kB.*?RssFile:\s*(\d+) kB.*?VmData:\s*(\d+) kB.*?VmStk:\s*(\d+) kB", re.DOTALL)


def _open_status() -> None:
    global _fd
    try:
        _fd = os.open("/proc/self/status", os.O_RDONLY)
    except OSError:
        _fd = -1
        return
    if _STATUS.search(os.pread(_fd, 4096, 0)) is None:  # a kernel older than 4.5: no RssFile
        os.close(_fd)
        _fd = -1


def _after_fork() -> None:
    # The kept descriptor names the parent's /proc entry, not the child's.
    global _process
    if _fd >= 0:
        os.close(_fd)
        _open_status()
    _process = None


_open_status()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def sample() -> tuple[int, int, int | None]:
    """(resident bytes, resident bytes not backed by a file, private writable bytes
    mapped), from one read.

    The second is what the memory cap counts: anonymous memory and shared memory
    (``mmap(-1, ...)``, ``multiprocessing.shared_memory``, mapped ``/dev/shm``
    files), which the out-of-memory killer charges to the kernel; pages of
    memory-mapped files (``np.memmap``, shared libraries) can be dropped by the
    kernel at any time. The third (``VmData`` plus the main thread's stack) is
    what ``RLIMIT_DATA`` stops; ``None`` without ``/proc``.
    """
    if _fd >= 0:
        match = _STATUS.search(os.pread(_fd, 4096, 0))
        if match is not None:
            rss, file, data, stack = (int(v) << 10 for v in match.groups())
            return rss, rss - file, data + stack
    global _process
    if _process is None:
        import psutil

        _process = psutil.Process()
    info = _process.memory_info()
    return info.rss, info.rss - getattr(info, "shared", 0), None


def rss_and_anon() -> tuple[int, int]:
    """(resident bytes, resident bytes not backed by a file): see :func:`sample`."""
    return sample()[:2]


def current_rss() -> int:
    """Resident memory of this process in bytes (what ``top`` shows as RES)."""
    return rss_and_anon()[0]


def vm_data() -> int | None:
    """``VmData``: the private writable memory mapped now, which is what
    ``RLIMIT_DATA`` counts; ``None`` without ``/proc``."""
    try:
        with open("/proc/self/status", "rb") as status:
            match = re.search(rb"^VmData:\s*(\d+) kB", status.read(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) * 1024 if match else None
