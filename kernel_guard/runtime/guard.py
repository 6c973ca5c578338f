"""``Guard``: run one block of code under :class:`Limits`, then put everything back."""

from __future__ import annotations

import errno
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Literal, cast

from ..errors import GuardDiskLimit, GuardMemoryError, GuardOutputLimit, GuardTimeout
from ..sizes import format_bytes, format_shape
from . import interrupt, library_oom, memcap
from .children import UserLimitForChildren
from .disk import DiskWatch
from .interrupt import Interrupter, is_guard_code
from .limits import Limits, RunReport
from .output import OutputCap
from .recursion import DepthChange, DepthLimit, safe_max_depth
from .rss import rss_and_anon
from .watchdog import Watch, Watchdog, kept

# Limits a platform cannot fully enforce, as said in RunReport.notices.
NO_SIGNALS = ("timeout: this platform has no POSIX signals, so a cell waiting in a blocking call "
              "(time.sleep, I/O, a long C call) is stopped only when the call returns")
NO_RLIMIT = ("max_mem: this platform has no RLIMIT_DATA that counts mmap, so memory is checked every "
             "10-50 ms and one large allocation can pass the cap before the cell is stopped")

_running: Guard | None = None


class Guard:
    """A context manager that runs its block under ``limits``.

    Use it on the main thread, around the code of one cell and nothing else (the
    handler raises in whatever Python code runs inside the block)::

        with Guard(Limits(max_mem=2 << 30, timeout=60)) as guard:
            exec(code, namespace)
        guard.report.peak_rss

    ``on_sample(rss)`` is called from the watchdog thread about once a second.
    After the block (whatever happened: success, an error, ``KeyboardInterrupt``)
    every rlimit, signal handler, trace function, recursion limit and stream is
    back to what it was, and :attr:`report` holds a :class:`RunReport`; it is set
    even when entering failed. A ``timeout``, ``max_mem`` or ``max_disk`` off the main
    thread raises ``RuntimeError``.

    Guards nest on one thread: a Guard entered while another runs narrows it for its
    block, which runs under the tighter of both limits (the earlier deadline, the
    lower memory cap and ``RLIMIT_DATA``, the lower recursion limit, the output and
    disk left); its errors are raised inside the inner block, and on leaving it the
    outer limits are exactly as before.

    Without ``max_depth``, a recursion limit set higher than the C stack holds
    (``sys.setrecursionlimit(100_000)`` in an earlier cell) is lowered for the
    block, with a notice. Limits the platform cannot fully enforce are named in
    ``report.notices``.
    """

    def __init__(self, limits: Limits, *, on_sample: Callable[[int], None] | None = None):
        self.limits = limits
        self.on_sample = on_sample
        self.report: RunReport | None = None
        self.depth_change: DepthChange | None = None
        self.notices: list[str] = []
        self._reset()

    def _reset(self) -> None:
        self._outer: Guard | None = None  # the Guard this one runs inside
        self._cap: int | None = None  # the memory cap in force: the lower of this one's and the outer's
        self._interrupter: Interrupter | None = None
        self._watch: Watch | None = None
        self._watchdog: Watchdog | None = None
        self._own_watchdog: Watchdog | None = None  # started for this block alone
        self._depth: DepthLimit | None = None
        self._output: OutputCap | None = None
        self._rlimit: tuple[int, int] | None = None
        self._rlimit_armed = False
        self._children: UserLimitForChildren | None = None
        # What _arm changed, undone last first. Each undo is pushed before its step runs
        # (every undo is harmless for a step that did not happen), so that an interrupt
        # in the middle of a step still gets it undone.
        self._undo = ExitStack()
        self._disk: DiskWatch | None = None

    # -- entering --------------------------------------------------------------------

    def __enter__(self) -> Guard:
        global _running
        outer = _running
        if any(guard is self for guard in _chain(outer)):
            raise RuntimeError("kernel_guard: this Guard is already running; use a new Guard for a nested block")
        if outer is not None and outer._interrupter is not None and outer._interrupter.ident != threading.get_ident():
            raise RuntimeError("kernel_guard: a Guard is already running in another thread; "
                               "guarded blocks nest only on the thread of the outer one")
        limits = self.limits
        self.report = None
        self.depth_change = None
        self.notices = []
        if (limits.timeout is not None or limits.max_mem is not None or limits.max_disk is not None) and (
            threading.current_thread() is not threading.main_thread()
        ):
            self.report = RunReport(peak_rss=rss_and_anon()[0], elapsed=0.0)
            raise RuntimeError(
                "kernel_guard: timeout, max_mem and max_disk need signals, which only the main thread receives"
            )
        self._outer = outer
        _running = self
        try:
            self._arm(_caller_frame())
        except BaseException as error:
            try:
                self._restore()
            finally:
                _running = outer
                self.report = RunReport(
                    peak_rss=rss_and_anon()[0], elapsed=0.0,
                    limit_hit="memory" if isinstance(error, GuardMemoryError) else None,
                    depth_notice=_text(self.depth_change), notices=self.notices, depth_change=self.depth_change,
                )
                self._reset()
            raise
        return self

    def _arm(self, boundary) -> None:
        limits, outer = self.limits, self._outer
        outer_watch = outer._watch if outer is not None else None
        cap = self._cap = _lower(limits.max_mem, outer_watch.cap if outer_watch is not None else None)
        if cap is not None:
            memcap.warm_up_blas()  # before the rlimit: OpenBLAS's first call needs room
            used = rss_and_anon()[1]
            if used >= cap:
                raise GuardMemoryError(
                    f"the kernel already uses {format_bytes(used)}, over the {format_bytes(cap)} "
                    "memory cap: free some memory (del large objects) or raise the cap"
                )
        if limits.timeout is not None and interrupt.SIGNAL is None:
            self.notices.append(NO_SIGNALS)
        if limits.max_mem is not None and not memcap.ENABLED:
            self.notices.append(NO_RLIMIT)
        undo = self._undo.callback
        if outer is not None:
            undo(self._watch_outer)  # last
        interrupter = self._interrupter = Interrupter(boundary)
        if limits.max_disk is not None:
            try:
                self._disk = DiskWatch(limits.max_disk)
                undo(self._disk_last_look)
            except OSError as error:  # the working directory was removed, or cannot be opened
                self.notices.append(f"max_disk: the free space of the working directory cannot be read "
                                    f"({error.strerror}), so the cell runs without a disk limit")
        disk = self._disk
        if outer_watch is not None and outer_watch.disk is not None and (
                disk is None or outer_watch.disk.allowed - outer_watch.disk.added() < disk.allowed):
            if disk is not None:  # the outer one leaves less: it alone is watched
                disk.close()
                self._disk = None
            disk = outer_watch.disk
        watch = self._watch = Watch(interrupter, cap=cap, timeout=limits.timeout, on_sample=self.on_sample,
                                    disk=disk, outer=outer_watch)
        watchdog = self._watchdog = outer._watchdog if outer is not None else kept()
        if watchdog is None:
            watchdog = self._watchdog = self._own_watchdog = Watchdog()
            undo(watchdog.stop)
            watchdog.start()  # its thread exists before the rlimit
        signals = cap is not None or disk is not None or (limits.timeout is not None or (
            outer_watch is not None and outer_watch.timeout is not None)) or (
            limits.max_output is not None and threading.current_thread() is threading.main_thread())
        if signals:
            undo(interrupter.uninstall)
            interrupter.install()
        in_force = sys.getrecursionlimit()
        if limits.max_depth is not None and (outer is None or limits.max_depth < in_force):
            self._depth = DepthLimit(limits.max_depth)
        elif limits.max_depth is None and outer is None and in_force > safe_max_depth():  # set in an earlier cell
            self._depth = DepthLimit(in_force, given=False)
        if self._depth is not None:
            undo(self._depth.restore)
            self._depth.apply()
            self.depth_change = self._depth.change
        if limits.max_output is not None:
            self._output = OutputCap(limits.max_output, interrupter.stop if signals else None)
            undo(self._output.restore)
            self._output.apply()
        if cap is not None:  # last: nothing of ours allocates after it
            undo(lambda: memcap.restore(self._rlimit))
            armed = memcap.arm(cap, rss_and_anon()[1])
            if armed is not None:
                self._rlimit, watch.trip = armed
                if not any(guard._children for guard in _chain(outer)):  # else they give the user's already
                    self._children = UserLimitForChildren(self._rlimit)
                    undo(self._children.restore)
                    self._children.apply()
            elif outer_watch is not None:  # the outer rlimit is the lower: its trip holds
                watch.trip = outer_watch.trip
            self._rlimit_armed = armed is not None or (outer is not None and outer._rlimit_armed)
        interrupter.armed = True
        watch.begin()
        undo(watchdog.unwatch)  # first: once it returns, no signal comes for this block
        watchdog.watch(watch)

    # -- leaving ----------------------------------------------------------------------

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        global _running
        memcap.restore(self._rlimit)  # first: a kernel left at its limit fails every later cell
        self._rlimit = None
        interrupter = cast(Interrupter, self._interrupter)  # (armed by __enter__)
        interrupter.armed = False
        watch = cast(Watch, self._watch)
        elapsed = time.monotonic() - watch.start_time
        try:
            self._restore()
        finally:
            _running = self._outer
            now = time.monotonic()
            watch.record(now, rss_and_anon()[0])
            if self._outer is not None:  # what the inner block used, the outer one used too
                outer_watch = cast(Watch, self._outer._watch)  # (the outer block is running)
                outer_watch.peak = max(outer_watch.peak, watch.peak)
            error = self._translate(exc) if exc is not None else interrupter.undelivered()
            self.report = RunReport(
                peak_rss=watch.peak, elapsed=elapsed, limit_hit=self._limit_hit(error or exc),
                samples=watch.samples, depth_notice=_text(self.depth_change), notices=self.notices,
                depth_change=self.depth_change,
            )
            self._reset()
        if error is not None:
            raise error.with_traceback(tb) from None
        return False

    def _restore(self) -> None:
        """Undo every step of ``_arm``, last first; each undo runs even if another
        fails (a KeyboardInterrupt can land anywhere)."""
        self._undo.close()

    def _watch_outer(self) -> None:
        """The watchdog goes back to the block this one ran inside."""
        if self._watchdog is not None and self._outer is not None and self._outer._watch is not None:
            self._watchdog.watch(self._outer._watch)

    def _disk_last_look(self) -> None:
        """What the cell took since the last sample counts too (a writer that ended in
        one call), unless the cell was stopped already; then the descriptor of the
        working directory is closed."""
        disk = self._disk
        if disk is None:  # the outer block's disk limit was the tighter: it is watched alone
            return
        interrupter = cast(Interrupter, self._interrupter)  # (armed by __enter__)
        try:
            error = None if "stop" in interrupter.raised else disk.error(disk.added())
            if error is not None:
                interrupter.stop(error)
        finally:
            disk.close()

    def _translate(self, exc: BaseException) -> GuardMemoryError | GuardDiskLimit | None:
        """The exception to raise instead of ``exc``, if any; trims guard frames from
        the end of the traceback of the guard's own exceptions."""
        if isinstance(exc, (GuardTimeout, MemoryError, GuardOutputLimit, GuardDiskLimit, KeyboardInterrupt)):
            _trim_guard_frames(exc.__traceback__)
        interrupter = cast(Interrupter, self._interrupter)  # (armed by __enter__)
        cap = cast(int, self._cap)  # (read when the rlimit was armed: there is a cap)
        if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC and self._disk is not None
                and isinstance(interrupter.stop_error, GuardDiskLimit)):  # full before the signal came
            return interrupter.stop_error
        if isinstance(exc, MemoryError) and not isinstance(exc, GuardMemoryError) and self._rlimit_armed:
            return GuardMemoryError(_over_the_cap(exc, cap, rss_and_anon()[1]))
        refused = library_oom.refused_allocation(exc) if self._rlimit_armed else None
        if refused is not None:  # torch's allocator hit the cap: a RuntimeError of its own
            library, size = refused
            return GuardMemoryError(_over_the_cap(exc, cap, rss_and_anon()[1], size, library))
        return None

    def _limit_hit(self, exc: BaseException | None) -> str | None:
        seen = set(self._interrupter.raised) if self._interrupter else set()
        if self._output and self._output.meter.hit:
            seen.add("output")
        return next((name for name, kind in _HITS if isinstance(exc, kind) or name in seen), None)


# RunReport.limit_hit: the first whose exception stopped the cell or that reached it otherwise.
_HITS = (("timeout", GuardTimeout), ("memory", GuardMemoryError), ("recursion", RecursionError),
         ("output", GuardOutputLimit), ("disk", GuardDiskLimit))


def _chain(guard: Guard | None):
    """``guard`` and the Guards it runs inside."""
    while guard is not None:
        yield guard
        guard = guard._outer


def _text(change: DepthChange | None) -> str | None:
    return None if change is None else str(change)


def _lower(mine: int | None, theirs: int | None) -> int | None:
    return theirs if mine is None else mine if theirs is None else min(mine, theirs)


def _over_the_cap(exc: BaseException, cap: int, used: int, size: int | None = None, library: str | None = None) -> str:
    """Why the rlimit refused an allocation, with its size when numpy (or ``library``,
    giving ``size``) says it. The rlimit stops allocations short of the cap: say so,
    or the numbers look wrong."""
    reserve = f"kernel_guard keeps up to {format_bytes(memcap.MARGIN)} free below the cap to stop the cell cleanly"
    if size is None:
        size = getattr(exc, "_total_size", None)  # numpy's _ArrayMemoryError
    if not isinstance(size, int):
        detail = f" ({exc})" if str(exc) else ""
        return (f"the cell ran out of room under its {format_bytes(cap)} memory cap{detail}: "
                f"the kernel holds {format_bytes(used)}, and {reserve}")
    dtype, shape = getattr(exc, "dtype", None), getattr(exc, "shape", None)
    parts = [str(dtype)] if dtype is not None else []
    if shape:
        parts.append(f"shape {format_shape(shape)}")
    what = f" ({', '.join(parts)})" if parts else ""
    what += f" in {library}" if library else ""
    grown = (f"an array of {format_bytes(size)}{what} would take the kernel "
             f"from {format_bytes(used)} to {format_bytes(used + size)}")
    if used + size > cap:
        return f"{grown}, over its {format_bytes(cap)} cap"
    return f"{grown}, too close to its {format_bytes(cap)} cap: {reserve}"


def _caller_frame():
    """The frame running the ``with`` statement (``contextlib.ExitStack`` skipped)."""
    frame = sys._getframe(1)
    while frame is not None and (
        frame.f_globals.get("__name__") == "contextlib" or is_guard_code(frame.f_code)
    ):
        frame = frame.f_back
    return frame


def _trim_guard_frames(tb) -> None:
    """Cut the signal handler (or the counting ``write``) off the end of a traceback."""
    last_other = None
    while tb is not None:
        if not is_guard_code(tb.tb_frame.f_code):
            last_other = tb
        tb = tb.tb_next
    if last_other is not None:
        last_other.tb_next = None
