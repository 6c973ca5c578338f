"""The watchdog thread: memory samples, the memory cap past the rlimit, the deadline.

Every 10 to 50 ms it reads the resident memory (a ``pread`` of
``/proc/self/statm``, about 1.5 µs), keeps the peak and a bounded series of
samples, hands one sample a second to ``on_sample`` (the crash journal), and tells
the cell's thread when the memory is over the cap or the deadline has passed. It
wakes exactly at the deadline, so a timeout is late by the time the cell's thread
takes to see the signal (under 1 ms in ``time.sleep``; up to the interpreter's
5 ms switch interval in a busy loop, for the watchdog needs the GIL too).

The rlimit stops memory that is newly mapped; the watchdog catches what grows
without new mappings (pages of an earlier ``np.empty`` being written) at the
next sample. Each wake-up costs about 75 µs of CPU here (mostly the kernel's), so
the watchdog sleeps :data:`MAX_INTERVAL` while memory stands still and shortens
the sleep, down to :data:`MIN_INTERVAL`, to reach the cap in at least two samples
at the pace memory is growing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..sizes import format_bytes
from .interrupt import RESEND, Interrupter
from .limits import MAX_SAMPLES
from .rss import rss_and_anon

MIN_INTERVAL = 0.01
MAX_INTERVAL = 0.05
SAMPLE_EVERY = 1.0  # seconds between calls of on_sample


class Watchdog:
    def __init__(
        self,
        interrupter: Interrupter,
        *,
        cap: int | None,
        timeout: float | None,
        on_sample: Callable[[int], None] | None,
    ):
        self.interrupter = interrupter
        self.cap = cap
        self.timeout = timeout
        self.on_sample = on_sample
        self.start_time = time.monotonic()
        self.deadline: float | None = None
        self.peak = 0
        self.samples: list[tuple[float, int]] = []
        self._stride = 1  # keep one read in this many, doubled when the list is full
        self._reads = 0
        self._next_on_sample = 0.0
        self._interval = MAX_INTERVAL
        self._last: tuple[float, int] | None = None  # (time, anon) of the previous read
        self._next_send = {"timeout": 0.0, "memory": 0.0}
        self._stopping = False
        self._wakeup = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kernel_guard watchdog", daemon=True)

    def start(self) -> None:
        """Start the thread and wait for its first sample: its stack, its malloc
        arena and its first allocations all happen before the rlimit is armed."""
        self._thread.start()
        self._ready.wait()

    def begin(self) -> None:
        """The cell starts now: the deadline counts from here."""
        self.start_time = time.monotonic()
        self.samples = [(0.0, rss) for _, rss in self.samples[-1:]]  # the memory at the start
        if self.timeout is not None:
            self.deadline = self.start_time + self.timeout
            self._wakeup.set()  # recompute the wait

    def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()
        self._thread.join()

    def record(self, now: float, rss: int) -> None:
        """Add one reading to the peak and, thinned, to the samples."""
        self.peak = max(self.peak, rss)
        self._reads += 1
        if self._reads % self._stride == 0:
            self.samples.append((max(0.0, now - self.start_time), rss))
            if len(self.samples) >= MAX_SAMPLES:
                del self.samples[1::2]
                self._stride *= 2

    def _run(self) -> None:
        self._tick()
        self._ready.set()
        while not self._stopping:
            try:
                self._wait()
                if not self._stopping:
                    self._tick()
            except MemoryError:  # the cell took the last byte under the rlimit; next time
                pass

    def _wait(self) -> None:
        wait = self._interval
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left > 0:
                wait = min(wait, left)
        self._wakeup.wait(wait)
        self._wakeup.clear()

    def _tick(self) -> None:
        now = time.monotonic()
        rss, anon = rss_and_anon()
        self.record(now, rss)
        if self.cap is not None:
            self._pace(now, anon)
        if self.on_sample is not None and now >= self._next_on_sample:
            self._next_on_sample = now + SAMPLE_EVERY
            try:
                self.on_sample(rss)
            except Exception:  # the journal must never stop the watchdog
                pass
        interrupter = self.interrupter
        if not interrupter.armed:
            return
        if self.deadline is not None and now >= self.deadline:
            self._send("timeout", now, f"the cell ran longer than its {self.timeout:g} s timeout")
        elif self.cap is not None and anon > self.cap:
            self._send("memory", now, f"the cell's memory reached {format_bytes(anon)}, "
                                      f"over its {format_bytes(self.cap)} cap")

    def _pace(self, now: float, anon: int) -> None:
        """Set the next sleep so that memory growing at its last pace reaches the
        cap no sooner than two samples from now."""
        last, self._last = self._last, (now, anon)
        if last is None or now <= last[0]:
            return
        rate = (anon - last[1]) / (now - last[0])
        if rate <= 0:
            self._interval = MAX_INTERVAL
        else:
            self._interval = min(MAX_INTERVAL, max(MIN_INTERVAL, (self.cap - anon) / rate / 2))

    def _send(self, reason: str, now: float, message: str) -> None:
        """Send at once, then again every RESEND seconds while it lasts, or at the
        next tick if the last signal arrived while guard code ran."""
        if now >= self._next_send[reason] or self.interrupter.missed:
            self._next_send[reason] = now + RESEND
            self.interrupter.deliver(reason, message)
