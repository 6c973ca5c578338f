"""This process's resident memory, cheap enough to read every few milliseconds.

On Linux a ``/proc/self/statm`` descriptor is kept open and read with ``pread``
(about 1.5 µs; psutil takes about 10). Without ``/proc`` (macOS, Windows) psutil
answers instead.
"""

from __future__ import annotations

import os
import re

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_fd = -1
_process = None  # psutil.Process, when there is no /proc


def _open_statm() -> None:
    global _fd
    try:
        _fd = os.open("/proc/self/statm", os.O_RDONLY)
    except OSError:
        _fd = -1


def _after_fork() -> None:
    # The kept descriptor names the parent's /proc entry, not the child's.
    global _process
    if _fd >= 0:
        os.close(_fd)
        _open_statm()
    _process = None


_open_statm()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def sample() -> tuple[int, int, int | None]:
    """(resident bytes, resident bytes not backed by a file, private writable bytes
    mapped), from one read.

    The second is what the memory cap counts: pages of memory-mapped files
    (``np.memmap``, shared libraries) can be dropped by the kernel at any time.
    The third (``VmData`` plus the main thread's stack) is what ``RLIMIT_DATA``
    stops; ``None`` without ``/proc``.
    """
    if _fd >= 0:
        fields = os.pread(_fd, 128, 0).split()
        resident = int(fields[1])
        return resident * _PAGE, (resident - int(fields[2])) * _PAGE, int(fields[5]) * _PAGE
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
