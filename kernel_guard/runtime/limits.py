"""What a guarded cell may use, and what it did use."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from .recursion import DepthChange


@dataclass(frozen=True)
class Limit:
    """One limit of a guarded cell: everything the runtime and the magic say of it.

    The magic's option (``--max-mem``), the ``c.KernelGuard`` trait, the fields of
    :class:`Limits` and of the extension's resolved limits, and the status and
    summary lines are all made from these rows.

    ``name``: the field, the trait and (with ``-``) the option. ``kind``: how it is
    typed and shown: "memory" (a size or a percentage), "size" (bytes), "seconds"
    or "count". ``noun``: its name in messages ("memory cap"). ``hit``: what
    :attr:`RunReport.limit_hit` says when it stops a cell. ``least``/``allowed``:
    the check of :class:`Limits` and its words. ``help``: the option's help (``%%``
    for ``%``); ``config_help`` and ``default``: the trait's. ``zero_is_off``: 0 is
    shown as no limit. ``when_off``: the status line's words without it (default
    "no" and the noun). ``in_summary``: "always" (also when off), "if set", or
    "apart" (the summary has a line of its own for it).
    """

    name: str
    kind: str
    noun: str
    hit: str
    allowed: str
    least: Callable[[float], bool]
    help: str
    config_help: str
    default: str | None = None
    zero_is_off: bool = False
    when_off: Callable[[], str] | None = None
    in_summary: str = "if set"

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    def is_on(self, value) -> bool:
        return value is not None and (bool(value) or not self.zero_is_off)


# In the order the magic's help and the status line list them. A new limit of one of
# these kinds touches three files: a row here and a field of ``Limits`` and of
# ``TypedLimits`` below, its component in a module of its own (arm and undo), and the
# step arming it in guard.py.
LIMITS = (
    Limit("max_mem", "memory", "memory cap", "memory", "more than 0", lambda v: v > 0,
          "cap on the kernel's total resident memory while the cell runs; past it the "
          "cell gets GuardMemoryError (a MemoryError). SIZE: bytes, or a number with "
          "K, M, G, T (powers of 1024; KB, KiB, GB, GiB, lower case accepted), or a "
          "percentage such as 80%% of the memory this kernel can really get.",
          "Default --max-mem: a SIZE (4G, 512MiB, 80%) or None for no cap while a guarded cell runs.",
          default="90%", in_summary="apart"),
    Limit("timeout", "seconds", "timeout", "timeout", "a finite number more than 0", lambda v: 0 < v < math.inf,
          "wall-clock limit for the cell; past it the cell stops with GuardTimeout, "
          "also in time.sleep and in loops that catch Exception.",
          "Default --timeout in seconds, or None.", in_summary="always"),
    Limit("max_depth", "count", "recursion limit", "recursion", "at least 1", lambda v: v >= 1,
          "recursion limit for the cell (as sys.setrecursionlimit); a value the stack "
          "cannot hold is lowered to a safe one, with a notice. Past it: RecursionError.",
          "Default --max-depth, or None.", when_off=lambda: f"recursion limit {sys.getrecursionlimit():,}"),
    Limit("max_output", "size", "output cap", "output", "at least 0", lambda v: v >= 0,
          "cap on the bytes of text (stdout + stderr, UTF-8) the cell may print; "
          "past it the cell stops with GuardOutputLimit.",
          "Default --max-output SIZE, or None.", zero_is_off=True),
    Limit("max_disk", "size", "disk limit", "disk", "at least 0", lambda v: v >= 0,
          "bytes the cell may add to the filesystem of the working directory; past it, or "
          "when that filesystem gets below 1%% or 256 MiB free (the lower), the cell stops "
          "with GuardDiskLimit (an OSError), with room left to save the notebook.",
          "Default --max-disk SIZE, or None."),
)


@dataclass
class Limits:
    """The limits of one guarded cell; ``None`` leaves that resource alone.

    ``max_mem``: bytes of resident memory for the whole process (not an increment),
    anonymous and shared memory, not counting pages of memory-mapped files. ``timeout``: seconds of wall-clock
    time. ``max_depth``: the recursion limit, in ``sys.setrecursionlimit``'s sense.
    ``max_output``: bytes of text (UTF-8) written to ``sys.stdout`` and ``sys.stderr``
    (and to fds 1 and 2 where ipykernel captures them). ``max_disk``: bytes the cell
    may take from the filesystem of the working directory, which is also kept at
    least 1% or 256 MiB (the lower) free. Each is a row of :data:`LIMITS`.
    """

    max_mem: int | None = None
    timeout: float | None = None
    max_depth: int | None = None
    max_output: int | None = None
    max_disk: int | None = None

    def __post_init__(self) -> None:
        for limit in LIMITS:
            _require(limit, getattr(self, limit.name))


@dataclass(frozen=True)
class TypedLimits:
    """The limits as a user types them (``%%guard --max-mem 80%``, ``c.KernelGuard``):
    sizes stay text until the extension resolves them into :class:`Limits`."""

    max_mem: str | None = None
    timeout: float | None = None
    max_depth: int | None = None
    max_output: str | None = None
    max_disk: str | None = None


def _require(limit: Limit, value) -> None:
    if value is None:
        return
    kinds = (int, float) if limit.kind == "seconds" else int
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise TypeError(f"{limit.name} must be a number, not {type(value).__name__}")
    if not limit.least(value):
        raise ValueError(f"{limit.name} must be {limit.allowed}, not {value!r}")


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
