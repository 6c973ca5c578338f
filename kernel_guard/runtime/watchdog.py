"""The watchdog thread: memory samples, the memory cap past the rlimit, the deadline.

While a guarded block runs, the thread reads the resident memory every 10 to 50 ms
(a ``pread`` of ``/proc/self/status``, about 10 µs), keeps the peak and a bounded
series of samples, hands one sample a second to ``on_sample`` (the crash journal),
and tells the cell's thread when the memory is over the cap, when its mapped memory
reached the rlimit's reserve (``memcap``), or when the deadline has passed. It wakes
exactly at the deadline, so a timeout is late by the time the cell's thread takes to
see the signal (under 1 ms in ``time.sleep``; up to the interpreter's 5 ms switch
interval in a busy loop, for the watchdog needs the GIL too).

The rlimit stops memory that is newly mapped; the watchdog catches what grows
without new mappings (pages of an earlier ``np.empty`` being written) at the
next sample. Each wake-up costs about 75 µs of CPU here (mostly the kernel's), so
the watchdog sleeps :data:`MAX_INTERVAL` while memory stands still and shortens
the sleep, down to :data:`MIN_INTERVAL`, to reach the cap in at least two samples
at the pace memory is growing.

A :class:`Watch` is what one guarded block is watched for; a :class:`Watchdog` is
the thread. By default each Guard starts its own thread and joins it at the end.
After :func:`keep` (the extension calls it on load) one thread serves every Guard
until :func:`release`: between blocks it waits on a lock with no timeout, so it
costs no CPU, and a guarded cell no thread start and join.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import cast

from ..sizes import format_bytes
from .disk import DiskWatch
from .interrupt import RESEND, Interrupter
from .limits import MAX_SAMPLES
from .rss import sample

MIN_INTERVAL = 0.01
MAX_INTERVAL = 0.05
# A disk fills faster than memory (GB/s into a page cache or a tmpfs, each write a
# syscall the signal waits for): samples come this close while it runs out.
DISK_MIN_INTERVAL = 0.0005
SAMPLE_EVERY = 1.0  # seconds between calls of on_sample


class Watch:
    """One guarded block as the watchdog sees it: its limits, its memory readings.

    ``trip``: the mapped memory (:func:`~kernel_guard.runtime.rss.sample`'s third
    value) at which the cell is stopped, when the rlimit is armed. ``outer``: the
    watch of the block this one runs inside, whose deadline holds if it is earlier.
    """

    def __init__(
        self,
        interrupter: Interrupter,
        *,
        cap: int | None,
        timeout: float | None,
        on_sample: Callable[[int], None] | None,
        disk: DiskWatch | None = None,
        outer: Watch | None = None,
    ):
        self.interrupter = interrupter
        self.cap = cap
        self.trip: int | None = None
        self.timeout = timeout
        self.on_sample = on_sample
        self.disk = disk
        self.outer = outer
        self.start_time = time.monotonic()
        self.deadline: float | None = None
        self.peak = 0
        self.samples: list[tuple[float, int]] = []
        self._stride = 1  # keep one read in this many, doubled when the list is full
        self._reads = 0
        self._next_on_sample = 0.0
        self._interval = MIN_INTERVAL if disk is not None else MAX_INTERVAL  # learn a writer's pace soon
        self._last: tuple[float, int, int | None, int | None] | None = None  # (time, anon, data, disk) last read
        self._stops_seen = 0  # the interrupter's stops_raised at the last read
        self._disk_rate = 0.0  # bytes a second the disk filled between the last two reads
        self._disk_late = 0.0  # how much later than planned reads came lately (a loaded machine)
        self._next_send = {"timeout": 0.0, "memory": 0.0, "reserve": 0.0, "stop": 0.0}

    def begin(self) -> None:
        """The cell starts now: the deadline counts from here; the first sample."""
        self.start_time = now = time.monotonic()
        if self.timeout is not None:
            self.deadline = now + self.timeout
        outer = self.outer
        if outer is not None and outer.deadline is not None and (
                self.deadline is None or outer.deadline < self.deadline):
            self.deadline, self.timeout = outer.deadline, outer.timeout  # said in the message: the outer one
        self.record(now, sample()[0])

    def record(self, now: float, rss: int) -> None:
        """Add one reading to the peak and, thinned, to the samples."""
        self.peak = max(self.peak, rss)
        self._reads += 1
        if self._reads % self._stride == 0:
            self.samples.append((max(0.0, now - self.start_time), rss))
            if len(self.samples) >= MAX_SAMPLES:
                del self.samples[1::2]
                self._stride *= 2

    def wait(self) -> float:
        """Seconds until the next reading is due."""
        wait = self._interval
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left > 0:  # past it: the interval paces the re-sends
                wait = min(wait, left)
        return wait

    def tick(self) -> None:
        now = time.monotonic()
        rss, anon, data = sample()
        self.record(now, rss)
        added = self.disk.added() if self.disk is not None else None
        if self.cap is not None or added is not None:
            self._pace(now, anon, data, added)
        if self.on_sample is not None and now >= self._next_on_sample:
            self._next_on_sample = now + SAMPLE_EVERY
            try:
                self.on_sample(rss)
            except Exception:  # the journal must never stop the watchdog
                pass
        interrupter = self.interrupter
        in_reserve = self.trip is not None and data is not None and data >= self.trip
        if not in_reserve:
            interrupter.reserve = False  # freed again: nothing to stop
        if not interrupter.armed:
            return
        if added is not None and interrupter.stops_raised != self._stops_seen:
            self._stops_seen = interrupter.stops_raised  # what it wrote before it saw the error is no news
            cast(DiskWatch, self.disk).told(added)  # (only a disk watch gives ``added``)
        elif added is not None and interrupter.stop_error is None:
            # The next look comes after the interval, as late as looks came lately, and may
            # wait for the GIL a switch interval; the cell sees the signal after its call.
            horizon = self._interval + self._disk_late + 2 * sys.getswitchinterval()
            error = cast(DiskWatch, self.disk).error(added, self._disk_rate, horizon)
            if error is not None:
                self._next_send["stop"] = now + RESEND  # stop() sends the first signal
                interrupter.stop(error)
        if self.deadline is not None and now >= self.deadline:
            self._send("timeout", now, f"the cell ran longer than its {self.timeout:g} s timeout")
        elif self.cap is not None and anon > self.cap:
            self._send("memory", now, f"the cell's memory reached {format_bytes(anon)}, "
                                      f"over its {format_bytes(self.cap)} cap")
        elif in_reserve:
            self._send("reserve", now, "")
        elif interrupter.stop_error is not None:  # not raised yet: the signal found guard code
            self._send("stop", now, "")

    def _pace(self, now: float, anon: int, data: int | None, added: int | None) -> None:
        """Set the next sleep so that memory (or disk use) growing at its last pace
        reaches the cap (the trip, the disk limit) no sooner than two samples from now."""
        last, self._last = self._last, (now, anon, data, added)
        if last is None or now <= last[0]:
            return
        if added is not None and last[3] is not None:
            self._disk_rate = (added - last[3]) / (now - last[0])
            self._disk_late = max(self._disk_late * 0.9, now - last[0] - self._interval)
        interval = MAX_INTERVAL
        allowed = self.disk.allowed if self.disk is not None else None
        for value, before, limit, shortest in ((anon, last[1], self.cap, MIN_INTERVAL),
                                               (data, last[2], self.trip, MIN_INTERVAL),
                                               (added, last[3], allowed, DISK_MIN_INTERVAL)):
            if limit is not None and value is not None and before is not None and value > before:
                rate = (value - before) / (now - last[0])
                interval = min(interval, max(shortest, (limit - value) / rate / 2))
        self._interval = interval

    def _send(self, reason: str, now: float, message: str) -> None:
        """Send at once, then again every RESEND seconds while it lasts, or at the
        next tick if the last signal arrived while guard code ran."""
        if now >= self._next_send[reason] or self.interrupter.missed:
            self._next_send[reason] = now + RESEND
            self.interrupter.deliver(reason, message)


class Watchdog:
    """The thread that ticks the :class:`Watch` it is given; with none it waits,
    blocked, for :meth:`watch` or :meth:`stop`."""

    def __init__(self) -> None:
        self._watch: Watch | None = None
        self._lock = threading.Lock()  # held while a tick runs: unwatch() waits for it
        self._wake = threading.Lock()  # released to wake the thread before its time
        self._wake.acquire()
        self._stopping = False
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kernel_guard watchdog", daemon=True)

    def start(self) -> None:
        """Start the thread and wait until it runs: its stack, its malloc arena and
        its first allocations all happen before a Guard arms the rlimit."""
        self._thread.start()
        self._started.wait()

    def alive(self) -> bool:
        return not self._stopping and self._thread.is_alive()

    def watch(self, watch: Watch) -> None:
        with self._lock:
            self._watch = watch
        self.wake()

    def unwatch(self) -> None:
        """Stop watching; once this returns, no tick of the old watch runs (and so
        no signal is sent for it)."""
        with self._lock:
            self._watch = None

    def wake(self) -> None:
        """Make the thread look again now (a new watch, a new deadline)."""
        try:
            self._wake.release()
        except RuntimeError:  # already released: it wakes anyway
            pass

    def stop(self) -> None:
        self._stopping = True
        self.wake()
        self._thread.join()

    def _run(self) -> None:
        sample()
        self._started.set()
        while not self._stopping:
            try:
                self._wait()
                self._tick()
            except MemoryError:  # the cell took the last byte under the rlimit: next time
                time.sleep(MIN_INTERVAL)

    def _wait(self) -> None:
        watch = self._watch
        if watch is None:
            self._wake.acquire()
        else:
            self._wake.acquire(True, watch.wait())

    def _tick(self) -> None:
        # Kept small: a MemoryError unwinds through this ``with``; see ``_run_guarded``
        # in extension/core.py.
        with self._lock:
            watch = self._watch
            if watch is not None and not self._stopping:
                watch.tick()


_kept: Watchdog | None = None


def keep() -> None:
    """Start one watchdog thread for every following Guard, until :func:`release`."""
    global _kept
    if _kept is None or not _kept.alive():
        _kept = Watchdog()
        _kept.start()


def release() -> None:
    """Stop the thread :func:`keep` started (if any) and wait for it to end."""
    global _kept
    dog, _kept = _kept, None
    if dog is not None:
        dog.stop()


def kept() -> Watchdog | None:
    """The thread :func:`keep` started, if it still runs (not after a fork)."""
    return _kept if _kept is not None and _kept.alive() else None
