"""The memory cap's first line: ``RLIMIT_DATA`` set as an increment.

``RLIMIT_DATA`` counts the private writable memory a process maps (``VmData``),
so a soft limit of ``VmData + (cap - used - margin)`` makes any mapping past the
cap fail at once: a 3 GB ``np.ones`` raises MemoryError in 0.1 ms without one
page touched, and growing lists or bytearrays fail at the first chunk too many.
File mappings (``np.memmap``) are not counted, unlike with ``RLIMIT_AS``, which
also charges every thread's 64 MiB malloc arena.

Only the soft limit is changed: a lowered hard limit could never be raised back.
Linux only: macOS does not count ``mmap`` in ``RLIMIT_DATA``, so there the
watchdog alone enforces the cap.

The rlimit sits :data:`RESERVE` above the point where the watchdog stops a cell
whose mapped memory grows (``trip``). A cell that fills the last bytes under the
rlimit with small objects leaves CPython no memory to unwind the MemoryError:
with a ``with`` block or an ``except``/``finally`` body far enough into a frame,
CPython 3.11-3.13 then loops forever (see ``_run_guarded`` in
``kernel_guard/extension/core.py``). Stopped by the watchdog's signal at
``trip``, the cell unwinds with the reserve still free; the rlimit itself stops
single large mappings, whose failure leaves the reserve free as well.
"""

from __future__ import annotations

import sys

from .rss import sample, vm_data

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]  # (checked for None before each use)

# Room kept between where the rlimit stops new mappings and the cap itself, for the
# memory the watchdog sees grow without new mappings (pages of earlier mappings
# being touched) and for raising the error.
MARGIN = 128 * 1024 * 1024
# Memory kept mappable above ``trip`` (taken from the margin) for unwinding.
RESERVE = 32 * 1024 * 1024
ENABLED = resource is not None and sys.platform.startswith("linux")
_blas_warm = False


def headroom(cap: int, used: int) -> int:
    """How much more may be mapped: the cap less what is used and the margin,
    but never less than half of what is left when the cap is close."""
    room = cap - used
    return max(room - MARGIN, room // 2)


def reserve(cap: int, used: int) -> int:
    """How far above the headroom the rlimit goes: :data:`RESERVE`, or less so
    that at least half of the margin stays below the cap."""
    return min(RESERVE, (cap - used - headroom(cap, used)) // 2)


def arm(cap: int, used: int) -> tuple[tuple[int, int], int] | None:
    """Lower the soft ``RLIMIT_DATA`` so that at most the headroom and the reserve
    can be mapped.

    Returns the limits to give back to :func:`restore` and ``trip``: the mapped
    memory (:func:`~kernel_guard.runtime.rss.sample`'s third value) at which the
    watchdog stops the cell; ``None`` when nothing was changed (not Linux, or the
    current limit is already tighter).
    """
    if not ENABLED:
        return None
    mapped, data = vm_data(), sample()[2]
    if mapped is None or data is None:
        return None
    old = resource.getrlimit(resource.RLIMIT_DATA)
    soft, hard = old
    extra = reserve(cap, used)
    new = mapped + headroom(cap, used) + extra
    if hard != resource.RLIM_INFINITY:
        new = min(new, hard)
    if soft != resource.RLIM_INFINITY and soft <= new:
        return None
    resource.setrlimit(resource.RLIMIT_DATA, (new, hard))
    return old, data + (new - mapped) - extra  # the mapped data also counts the stack


def restore(old: tuple[int, int] | None) -> None:
    if old is not None:
        resource.setrlimit(resource.RLIMIT_DATA, old)


def warm_up_blas() -> None:
    """Let OpenBLAS allocate its buffers now: its first call under a tight
    ``RLIMIT_DATA`` prints "Memory allocation still failed" and ends the process.

    numpy is imported if the kernel has not done so yet, since a guarded cell that
    imports it would otherwise make that first call under the limit. A 128x128
    product is the smallest that takes OpenBLAS's buffered path.
    """
    global _blas_warm
    if _blas_warm:
        return
    _blas_warm = True
    try:
        import numpy
    except ImportError:
        return
    a = numpy.ones((256, 256))
    a @ a
