"""The time a pre-run check may spend running a library's code on the user's data.

SPEC section 3: at most 10% of what the operation itself would take (predicted
from its sizes), never more than 0.5 s. What the operation takes is learnt as the
check goes: counting the first rows of the keys gives a lower bound of the result,
and so of the operation's time (writing its bytes). Work under ``FLOOR`` is always
allowed: it is below what a user can notice, and a small input can still make a huge
result (2,000 equal keys merge into 4 M rows).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

SHARE = 0.10
MAX_SECONDS = 0.5
FLOOR = 0.02
PROBE_ROWS = 131_072  # enough rows that a call's fixed cost does not inflate the prediction
# Seconds per byte pandas takes at least to write a result (get_dummies fills 200 MB of
# booleans in 68 ms), measured with benchmarks/bench_libraries.py on a busy 2-core machine.
SECONDS_PER_BYTE = 0.3e-9


T = TypeVar("T")


class GiveUp(Exception):
    """The check would cost too much: the message is the notice shown for the line."""


class Allowance:
    """What the checks of one call may still spend, in CPU time of the checking thread:
    on a busy machine the operation would be slowed as much as the check."""

    def __init__(self, operation_seconds: float, operation: str):
        self.started = time.thread_time()
        self.operation = operation
        self.seconds = FLOOR
        self.learn(operation_seconds)

    def learn(self, operation_seconds: float) -> None:
        """The operation takes at least ``operation_seconds``: allow its share."""
        self.seconds = min(MAX_SECONDS, max(self.seconds, SHARE * operation_seconds))

    @property
    def left(self) -> float:
        return self.seconds - (time.thread_time() - self.started)

    def spend(self, predicted: float, what: str) -> None:
        """Go on only if ``predicted`` seconds of work fit in what is left."""
        left = self.left
        if predicted > left:
            raise GiveUp(
                f"not checked before it runs: {what} would take about {predicted:.2f} s, more than the "
                f"{max(left, 0):.2f} s left of {self.seconds:.2f} s (at most {SHARE:.0%} of the {self.operation}); "
                "the memory cap still protects it"
            )

    def probe(self, work: Callable[[int], T], rows: int, what: str,
              teach: Callable[[T], float] | None = None) -> tuple[float, T]:
        """Seconds ``work(rows)`` would take (0 when the first rows are all the rows: then it
        is done), and what it gave for the first rows. Timed on a few rows, then (if that
        much fits) on more, so that a call's fixed cost is not taken for a cost per row.
        ``teach(result)``: the least the operation takes, given the first rows' result."""
        def timed(count: int) -> tuple[float, T]:
            started = time.thread_time()
            result = work(count)
            spent = time.thread_time() - started
            if teach is not None:
                self.learn(teach(result))
            return spent, result

        few = min(rows, PROBE_ROWS // 16)
        small, result = timed(few)
        if few == rows:
            return 0.0, result
        sample = min(rows, PROBE_ROWS)
        self.spend(small * sample / few, what)  # the larger sample must fit, at worst as costly per row
        large, result = timed(sample)
        if sample == rows:
            return 0.0, result
        per_row = max(0.0, (large - small) / (sample - few))
        fitted = max(0.0, large - per_row * sample) + per_row * rows
        return min(fitted, large * rows / sample), result  # a noisy first timing can only overstate the rate
