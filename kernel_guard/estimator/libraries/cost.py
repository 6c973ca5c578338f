"""The time a pre-run check may spend running a library's code on the user's data.

SPEC section 3: at most 10% of what the operation itself would take (predicted
from its sizes), never more than 0.5 s. Work under ``FLOOR`` is always allowed:
counting the keys of a small frame costs less than the user can notice, and a
small input can still make a huge result (2,000 equal keys merge into 4 M rows).
"""

from __future__ import annotations

import time
from collections.abc import Callable

SHARE = 0.10
MAX_SECONDS = 0.5
FLOOR = 0.005
PROBE_ROWS = 32_768


class GiveUp(Exception):
    """The check would cost too much: the message is the notice shown for the line."""


class Allowance:
    """What the checks of one call may still spend."""

    def __init__(self, operation_seconds: float, operation: str):
        self.seconds = min(MAX_SECONDS, max(FLOOR, SHARE * operation_seconds))
        self.operation = operation
        self.started = time.perf_counter()

    @property
    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.started)

    def spend(self, predicted: float, what: str) -> None:
        """Go on only if ``predicted`` seconds of work fit in what is left."""
        if predicted > self.left:
            raise GiveUp(
                f"not checked before it runs: {what} would take about {predicted:.2f} s, more than "
                f"{self.seconds:.2f} s ({SHARE:.0%} of the {self.operation}); the memory cap still protects it"
            )


def probe(work: Callable[[int], object], rows: int) -> float:
    """Seconds ``work(rows)`` would take, predicted from timing it on the first rows
    (0 when those are all the rows: then the work is done already)."""
    sample = min(rows, PROBE_ROWS)
    started = time.perf_counter()
    work(sample)
    elapsed = time.perf_counter() - started
    return 0.0 if sample == rows else elapsed * rows / max(sample, 1)
