"""``max_disk``: what a cell may add to the filesystem of the working directory.

The watchdog reads the free space of that filesystem (``os.fstatvfs`` of a
descriptor of the working directory taken when the cell starts, about 1.3 µs)
at each of its samples, and has the cell stopped with
:class:`~kernel_guard.errors.GuardDiskLimit` when the cell has used more than
``max_disk`` of it, or when the free space fell below the floor: 1% of the
filesystem or 256 MiB, whichever is lower, so that the notebook can still be
saved. Like memory, the samples come closer together as the free space runs
out faster, and as a writer can fill a fast disk (a tmpfs, a page cache) faster
than a thread of Python can look, the cell is stopped once the free space, at
the pace it falls, could pass the floor before the next look. The space counted is the
filesystem's, so other processes writing there meanwhile count too; space freed by the cell
gives room back. A cell that
starts below the floor is stopped only if it takes more.

What the cell wrote stays on disk: the guard never deletes a file.
"""

from __future__ import annotations

import os

from ..errors import GuardDiskLimit
from ..sizes import format_bytes

FLOOR_SHARE = 0.01
FLOOR_MAX = 256 * 1024 * 1024


def floor(total: int) -> int:
    """The free space kept on a filesystem of ``total`` bytes, whatever ``max_disk`` says."""
    return min(int(total * FLOOR_SHARE), FLOOR_MAX)


class DiskWatch:
    """The free space of the filesystem holding ``path``, against ``max_disk`` and the floor."""

    def __init__(self, max_disk: int, path: str = "."):
        self.path = os.path.abspath(path)
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            stats = os.fstatvfs(self._fd)
        except OSError:
            self.close()
            raise
        self.floor = floor(stats.f_blocks * stats.f_frsize)
        self.start = stats.f_bavail * stats.f_frsize  # free (for a non-root user) when the cell started
        self.max_disk = max_disk
        # The most the cell may take: its own limit, or what leaves the floor free.
        self.allowed = max(0, min(max_disk, self.start - self.floor))
        self._stopped_at: int | None = None  # what the cell had taken when it was last stopped

    def added(self) -> int:
        """Bytes the filesystem's free space fell by since the cell started (negative: freed);
        0 when it cannot be read (the watchdog must go on)."""
        try:
            stats = os.fstatvfs(self._fd)
        except OSError:
            return 0
        return self.start - stats.f_bavail * stats.f_frsize

    def error(self, added: int, rate: float = 0.0, horizon: float = 0.0) -> GuardDiskLimit | None:
        """The error that stops the cell, once it took more than ``max_disk``, or when the
        free space, falling ``rate`` bytes a second, could pass the floor within
        ``horizon`` seconds (until the next look has been made and acted on)."""
        if self._stopped_at is not None and added <= self._stopped_at:
            return None  # told already; again only if the cell goes on taking more
        error = self._error(added, rate, horizon)
        if error is not None:
            self._stopped_at = added
        return error

    def _error(self, added: int, rate: float, horizon: float) -> GuardDiskLimit | None:
        where = f"the filesystem of {self.path}"
        if added > self.max_disk:
            return GuardDiskLimit(f"the cell added {format_bytes(added)} to {where}, "
                                  f"over its {format_bytes(self.max_disk)} disk limit")
        ahead = max(0.0, rate) * horizon  # what may be gone before the next look is acted on
        if added > 0 and added + ahead > self.start - self.floor:
            free = format_bytes(max(0, self.start - added))
            pace = f", falling {format_bytes(int(rate))}/s" if ahead else ""
            return GuardDiskLimit(f"{where} is down to {free} free{pace}: the cell was stopped to keep "
                                  f"{format_bytes(self.floor)} free so that the notebook can still be saved")
        return None

    def told(self, added: int) -> None:
        """The cell got the error and had taken ``added`` by then: stop it again only if
        it takes more."""
        self._stopped_at = added

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
