"""What the estimator reports: allocations, growth sites, and their sum."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Allocation:
    """One array the code creates, with a statically known shape and dtype.

    Positions are 1-based within the source given; ``end_col`` is one past the
    last character (as ruff reports it). ``count`` is how many of these arrays
    are alive at once (a loop with a known trip count appending to a list);
    ``kept`` says whether the array is still bound once the code has run;
    ``unbounded`` that it is kept by a loop that never ends. ``cause``, for
    library objects (a pandas merge, ...), says why it is that large.
    """

    line: int
    col: int
    end_line: int
    end_col: int
    expr: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    count: int = 1
    kept: bool = False
    unbounded: bool = False
    cause: str | None = None
    device: str | None = None  # an accelerator's memory (``cuda:0``): reported only when it does not fit there

    @property
    def total_nbytes(self) -> int:
        return self.nbytes * self.count


@dataclass(frozen=True)
class Growth:
    """A container (or array rebuilt from itself) that grows in a loop that never ends.

    ``nbytes`` is what each iteration adds in arrays of known size (0 if unknown).
    """

    line: int
    col: int
    end_line: int
    end_col: int
    expr: str
    target: str
    nbytes: int = 0


@dataclass(frozen=True)
class LiveOver:
    """The arrays kept alive went over a budget right after ``allocation``'s statement.

    ``arrays`` names what holds them: (name, bytes), largest first.
    """

    allocation: Allocation
    total_nbytes: int
    arrays: list[tuple[str, int]]


@dataclass(frozen=True)
class Notice:
    """A line the estimate gave up on (reading its sizes would cost too much), and why."""

    line: int
    col: int
    end_line: int
    end_col: int
    expr: str
    text: str


@dataclass
class Estimate:
    allocations: list[Allocation] = field(default_factory=list)
    growth: list[Growth] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)

    @property
    def total_nbytes(self) -> int:
        return sum(a.nbytes * a.count for a in self.allocations)

    @property
    def largest(self) -> Allocation | None:
        return max(self.allocations, key=lambda a: a.nbytes * a.count, default=None)
