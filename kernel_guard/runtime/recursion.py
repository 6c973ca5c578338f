"""``max_depth``: a recursion limit for the cell that the C stack can hold.

On Python 3.11 pure-Python recursion uses no C stack, but recursion through C
code does: ``map``, ``sorted(key=...)``, ``functools.lru_cache``, ``__repr__``,
``__init__``, ``__getattr__`` ... Measured with an 8 MiB stack, such recursion
ends the process with SIGSEGV after 150 (pickle) to 1750 (``sorted`` with a key)
bytes of C stack per unit of the recursion limit. A limit is safe when that worst
case fits: :data:`BYTES_PER_LEVEL` per unit, plus what the kernel already holds.

On Linux the main thread's stack grows on demand up to the soft ``RLIMIT_STACK``,
read at each growth, and the kernel leaves at least 128 MiB free below it. So for
a ``max_depth`` above what the stack holds, the guard first raises the soft stack
limit to :data:`STACK_GOAL` for the cell, and only then lowers the depth.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from types import FrameType
from typing import cast

from ..sizes import format_bytes

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]  # (checked for None before each use)

BYTES_PER_LEVEL = 2048
STACK_GOAL = 64 * 1024 * 1024
_RAISE_STACK = resource is not None and sys.platform.startswith("linux")
_WINDOWS_STACK = 1024 * 1024


def _stack_size() -> int:
    if resource is None:
        return _WINDOWS_STACK
    soft = resource.getrlimit(resource.RLIMIT_STACK)[0]
    return STACK_GOAL if soft == resource.RLIM_INFINITY else soft


def safe_max_depth() -> int:
    """The highest recursion limit the current C stack holds for recursion
    through C code, with a reserve for the frames below the cell."""
    stack = _stack_size()
    reserve = min(1024 * 1024, stack // 4)
    return (stack - reserve) // BYTES_PER_LEVEL


def _frame_depth() -> int:
    depth, frame = 0, cast("FrameType | None", sys._getframe())
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    return depth


@dataclass(frozen=True)
class DepthChange:
    """The recursion limit a block ran under when it is not the one asked for.

    ``given``: ``requested`` is a ``max_depth``; else the limit in force from an
    earlier cell. ``why``: the reason, in words.
    """

    requested: int
    limit: int
    given: bool
    why: str

    @property
    def lowered(self) -> bool:
        return self.limit < self.requested

    def __str__(self) -> str:
        if not self.lowered:
            return f"max_depth {self.requested:,} raised to {self.limit:,}: {self.why}"
        if self.given:
            return f"max_depth {self.requested:,} lowered to {self.limit:,}: {self.why}"
        return f"the recursion limit in force, {self.requested:,}, lowered to {self.limit:,} for the cell: {self.why}"


class DepthLimit:
    """Set the recursion limit for one cell (clamped, with a notice) and put it back.

    ``given=False``: ``requested`` is the limit already in force, not a ``max_depth``.
    """

    def __init__(self, requested: int, *, given: bool = True):
        self.requested = requested
        self.given = given
        self.change: DepthChange | None = None
        self._old_limit: int | None = None
        self._old_stack: tuple[int, int] | None = None

    def apply(self) -> None:
        requested = self.requested
        safe = safe_max_depth()
        if requested > safe and _RAISE_STACK and threading.current_thread() is threading.main_thread():
            safe = self._grow_stack() or safe
        limit = min(requested, safe)
        if limit < requested:
            self.change = DepthChange(requested, limit, self.given, (
                f"deeper recursion through C code (map, sorted, __repr__, ...) would overflow the "
                f"{format_bytes(_stack_size())} C stack and end the process"))
        depth = _frame_depth()
        if limit < depth + 50:
            limit = depth + 50
            self.change = DepthChange(requested, limit, self.given,
                                      f"the code running the cell is already {depth} frames deep")
        self._old_limit = sys.getrecursionlimit()
        sys.setrecursionlimit(limit)

    def _grow_stack(self) -> int | None:
        soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
        goal = STACK_GOAL if hard == resource.RLIM_INFINITY else min(hard, STACK_GOAL)
        if soft == resource.RLIM_INFINITY or soft >= goal:
            return None
        resource.setrlimit(resource.RLIMIT_STACK, (goal, hard))
        self._old_stack = (soft, hard)
        return safe_max_depth()

    def restore(self) -> None:
        if self._old_limit is not None:
            sys.setrecursionlimit(self._old_limit)
            self._old_limit = None
        if self._old_stack is not None:
            resource.setrlimit(resource.RLIMIT_STACK, self._old_stack)
            self._old_stack = None
