"""What a guarded cell may use, and what it did use."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .recursion import DepthChange


@dataclass
class Limits:
    """The limits of one guarded cell; ``None`` leaves that resource alone.

    ``max_mem``: bytes of resident memory for the whole process (not an increment),
    anonymous and shared memory, not counting pages of memory-mapped files. ``timeout``: seconds of wall-clock
    time. ``max_depth``: the recursion limit, in ``sys.setrecursionlimit``'s sense.
    ``max_output``: bytes of text (UTF-8) written to ``sys.stdout`` and ``sys.stderr``
    (and to fds 1 and 2 where ipykernel captures them). ``max_disk``: bytes the cell
    may take from the filesystem of the working directory, which is also kept at
    least 1% or 256 MiB (the lower) free.
    """

    max_mem: int | None = None
    timeout: float | None = None
    max_depth: int | None = None
    max_output: int | None = None
    max_disk: int | None = None

    def __post_init__(self) -> None:
        _require("max_mem", self.max_mem, int, "more than 0", lambda v: v > 0)
        _require("timeout", self.timeout, (int, float), "a finite number more than 0",
                 lambda v: 0 < v < math.inf)
        _require("max_depth", self.max_depth, int, "at least 1", lambda v: v >= 1)
        _require("max_output", self.max_output, int, "at least 0", lambda v: v >= 0)
        _require("max_disk", self.max_disk, int, "at least 0", lambda v: v >= 0)


def _require(name: str, value, kinds, what: str, ok) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if not ok(value):
        raise ValueError(f"{name} must be {what}, not {value!r}")


@dataclass
class RunReport:
    """What the guard saw of one cell.

    ``peak_rss``: the highest resident memory seen (bytes, memory-mapped files
    included). ``limit_hit``: ``"memory"``, ``"timeout"``, ``"recursion"``,
    ``"output"``, ``"disk"`` or ``None``. ``samples``: ``(seconds since the start, resident
    bytes)`` from the watchdog, at most :data:`MAX_SAMPLES` (thinned evenly on long
    cells). ``depth_notice``: the one-line notice when ``max_depth`` (or the
    recursion limit in force) was changed to a value the stack holds, and
    ``depth_change`` the same as data. ``notices``:
    one line for each limit this platform could not fully enforce.
    """

    peak_rss: int
    elapsed: float
    limit_hit: str | None = None
    samples: list[tuple[float, int]] = field(default_factory=list)
    depth_notice: str | None = None
    notices: list[str] = field(default_factory=list)
    depth_change: DepthChange | None = None


MAX_SAMPLES = 2000
