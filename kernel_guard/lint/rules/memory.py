"""KG1: memory. numpy allocations whose statically estimated size does not fit.

The estimator's abstract interpreter (``kernel_guard.estimator.Program``) follows
the notebook cell by cell, once per document, shared by the four rules; sizes
come from literals and names bound in earlier cells, never from running code.
The budget is the engine's (``--mem-budget``; default: the lower of RAM and the
container's limit).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from kernel_guard.estimator import Allocation, Growth, LiveOver
from kernel_guard.lint import flow
from kernel_guard.lint.rule import Case, Rule
from kernel_guard.sizes import format_bytes

# KG102 fires above this share of the budget (KG101 above all of it).
LARGE_SHARE = 0.5
_SMALLER_DTYPE = {"float64": "float32", "complex128": "complex64", "int64": "int32"}


@dataclass
class _CellResult:
    allocations: list[Allocation]
    growth: list[Growth]
    live_over: list[LiveOver]
    reported: list[Allocation] | None = None  # what KG101 and KG102 report, chosen once for both


class _Analysis:
    """One interpretation of the document, cell by cell, for all KG1 rules."""

    def __init__(self, budget: int) -> None:
        from kernel_guard.estimator import Program  # imports numpy: only for a document with something to size

        self.program = Program(live_budget=budget)
        self.cells: dict[int, _CellResult] = {}

    def of(self, cell, tree: ast.Module) -> _CellResult:
        result = self.cells.get(id(cell))
        if result is None:
            before = len(self.program.growth)
            allocations = self.program.run(tree, cell.source)
            result = _CellResult(allocations, self.program.growth[before:], list(self.program.live_over))
            self.cells[id(cell)] = result
        return result


def _analysis(context) -> _Analysis:
    return context.shared(_Analysis, lambda: _Analysis(context.mem_budget))


def _shown(expr: str, limit: int = 80) -> str:
    """The expression on one line, shortened."""
    text = re.sub(r"\s+", " ", expr).replace("( ", "(").replace(" )", ")")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _what(allocation: Allocation) -> str:
    if allocation.count > 1:
        return f"{allocation.count:,} arrays of {format_bytes(allocation.nbytes)}, {allocation.dtype}"
    return allocation.dtype


def _hint(allocation: Allocation) -> str:
    if allocation.cause:  # a library's result (a densified sparse matrix, a computed dask array): its own words
        return allocation.cause
    if allocation.count > 1:
        return "keep fewer at once (process and drop each), or write them to an np.memmap"
    smaller = _SMALLER_DTYPE.get(allocation.dtype)
    if smaller:
        half = format_bytes(allocation.total_nbytes // 2)
        return f"as {smaller} it would take {half}; or work in chunks, or use np.memmap"
    return "work in chunks, or use np.memmap"


def _largest_per_position(allocations: list[Allocation]) -> list[Allocation]:
    """One allocation per reported position: a call of a notebook function that
    allocates several arrays is reported once, by its largest."""
    largest: dict[tuple[int, int, int, int], Allocation] = {}
    for allocation in allocations:
        key = (allocation.line, allocation.col, allocation.end_line, allocation.end_col)
        if key not in largest or allocation.total_nbytes > largest[key].total_nbytes:
            largest[key] = allocation
    return list(largest.values())


def _reported(cell, result: _CellResult, budget: int, tree: ast.Module) -> list[Allocation]:
    """The allocations KG101 (over the budget) and KG102 (over a large share) report:
    one finding per allocation, so of allocations nested in one another
    (``np.sqrt(((a - b) ** 2).sum(-1))``) only the largest, the outermost on a tie."""
    if result.reported is None:
        guarded = _guarded_lines(tree) if "try" in cell.source else []
        candidates = [
            allocation
            for allocation in _largest_per_position(result.allocations)
            if LARGE_SHARE * budget < allocation.total_nbytes <= budget
            or allocation.total_nbytes > budget and not any(start <= allocation.line <= end for start, end in guarded)
        ]
        candidates.sort(key=lambda a: (-a.total_nbytes, a.line, a.col, -a.end_line, -a.end_col))
        chosen: list[Allocation] = []
        for allocation in candidates:
            if not any(_nested(allocation, other) or _nested(other, allocation) for other in chosen):
                chosen.append(allocation)
        result.reported = chosen
    return result.reported


def _nested(inner: Allocation, outer: Allocation) -> bool:
    return (outer.line, outer.col) <= (inner.line, inner.col) and (inner.end_line, inner.end_col) <= (
        outer.end_line,
        outer.end_col,
    )


_CATCHES_MEMORY_ERROR = frozenset({"MemoryError", "Exception", "BaseException"})


def _catches_memory_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(n, ast.Name) and n.id in _CATCHES_MEMORY_ERROR for n in names)


def _guarded_lines(tree: ast.Module) -> list[tuple[int, int]]:
    """Line ranges of ``try`` bodies that handle ``MemoryError``: there numpy's
    refusal of an allocation too large for the machine is expected and caught."""
    return [
        (node.body[0].lineno, node.body[-1].end_lineno or node.body[-1].lineno)
        for node in ast.walk(tree)
        if isinstance(node, ast.Try) and any(_catches_memory_error(h) for h in node.handlers)
    ]


# The estimator sizes what these libraries allocate, and what a loop that never ends
# accumulates: a document that mentions neither has nothing to size.
_SIZED_LIBRARIES = re.compile(r"\b(?:numpy|torch|scipy|dask|sklearn|pandas)\b")


class _MemoryRule(Rule):
    triggers = None  # uses the stdlib ast of every cell: sizes flow across cells

    @classmethod
    def applies_to(cls, document) -> bool:
        return any(_SIZED_LIBRARIES.search(c.source) or flow.ENDLESS_LINE.search(c.source) for c in document.cells)

    def visit_cell(self, cell, tree: ast.Module) -> None:
        self.check(cell, _analysis(self.context).of(cell, tree), self.context.mem_budget)

    def check(self, cell, result: _CellResult, budget: int) -> None:
        raise NotImplementedError

    def report_allocation(self, cell, found: Allocation | Growth, message: str, nbytes: int) -> None:
        position = (found.line, found.col, found.end_line, found.end_col)
        self.report_at(cell, position, message, nbytes=nbytes)


class AllocationOverBudget(_MemoryRule):
    """
    ## What it does
    Flags a numpy allocation whose size, known from the code (literals and names
    bound in earlier cells), is larger than the memory budget: this machine's
    RAM, or the container's limit if lower (`--mem-budget` to set it). An array
    kept once per iteration of a loop with a known trip count counts that many
    times. An allocation in a `try` whose handler catches `MemoryError` is
    left alone: there numpy's refusal is expected. Libraries' dense results count
    too, where their sizes are constants in the code (the libraries are never
    imported): torch tensor constructors on the CPU, `toarray()`/`todense()` of a
    scipy sparse matrix (`sparse.random(n, m)`), `.compute()`/`np.asarray()` of a
    dask array (`da.ones((n, n))`), scikit-learn's pairwise functions (n × m),
    and the copy pandas makes of a 2-D array in `pd.DataFrame(array)`.

    ## Why is this bad?
    numpy either fails after the fact ("Unable to allocate 74.5 GiB for an array
    with shape (100000, 100000) and data type float64") or, on Linux, where
    untouched memory is promised lazily, succeeds and fills the array page by
    page until the out-of-memory killer ends the kernel with no message at all.

    ## Example
    ```python
    import numpy as np
    n = 100_000
    distances = np.random.rand(n, n)  # 74.5 GiB of float64
    ```

    ## Use instead
    ```python
    rng = np.random.default_rng()
    for start in range(0, n, 1_000):
        block = rng.random((1_000, n), dtype=np.float32)  # 381 MiB at a time
        process(block)
    # or keep it on disk, paged in as used:
    distances = np.memmap("distances.f32", dtype=np.float32, mode="w+", shape=(n, n))
    ```
    """

    code = "KG101"
    name = "allocation-over-budget"
    summary = "a numpy allocation larger than the memory budget"
    severity = "error"
    VALID = [
        """
        import numpy as np
        x = np.zeros((1000, 1000))
        """,
        """
        import numpy as np
        x = np.zeros((n, n))
        """,
        """
        import numpy as np
        for i in range(1000):
            x = np.zeros((10_000, 10_000))
        """,
        """
        import numpy as np
        m = np.memmap('big.dat', dtype=np.float32, mode='w+', shape=(100_000, 100_000))
        """,
        """
        import numpy as np
        def make():
            return np.zeros((10**6, 10**6))
        """,
        """
        import numpy as np
        x = np.zeros(10**9, dtype=np.int8)
        """,
        """
        import torch
        x = torch.zeros(100_000, 100_000, device='cuda')
        """,  # GPU memory, not this machine's
        """
        from scipy import sparse
        X = sparse.random(100_000, 100_000, density=0.0001, format='csr')
        """,  # stays sparse
        """
        import dask.array as da
        x = da.ones((100_000, 100_000))
        total = x.sum().compute()
        """,  # reduced first
        """
        import numpy as np
        try:
            x = np.zeros((10**6, 10**6))
        except MemoryError:
            x = None
        """,
    ]
    INVALID = [
        Case(
            """
            import numpy as np
            x = np.random.rand(100000, 100000)
            """,
            line=2,
            column=5,
            message="np.random.rand(100000, 100000) allocates 74.5 GiB (float64), over the 16.0 GiB budget",
        ),
        Case((
            """
            import numpy as np
            n = 100_000
            """,
            "a = np.zeros((n, n), dtype=np.float32)",
        ), line=1, message="37.3 GiB"),
        Case(
            """
            from numpy.random import default_rng
            rng = default_rng(0)
            x = rng.normal(size=(10**5, 10**5))
            """,
            line=3,
        ),
        Case(
            """
            import numpy as np
            blocks = []
            for i in range(100):
                blocks.append(np.zeros((10_000, 10_000)))
            """,
            line=4, message="100 arrays of 762.9 MiB",
        ),
        Case(
            """
            import numpy as np
            %time x = np.ones((10**6, 10**6))
            """,
            line=2, column=11,
        ),
        Case(
            """
            import numpy as np
            x = np.arange(10**6)[:, None] * np.arange(10**6)[None, :]
            """,
            line=2,
        ),
        Case(
            """
            import torch
            x = torch.zeros(100_000, 100_000)
            """,
            line=2, message="37.3 GiB (float32)",
        ),
        Case((
            """
            from scipy import sparse
            n = 100_000
            """,
            "D = sparse.random(n, n, density=0.0001).toarray()",
        ), line=1, message="the sparse matrix stores 1,000,000 values, but .toarray() makes every cell"),
        Case(
            """
            import dask.array as da
            x = da.ones((100_000, 100_000), chunks=1000)
            y = x.compute()
            """,
            line=3, message="reduce it before .compute()",
        ),
        Case((
            """
            import pandas as pd
            import numpy as np
            a = np.random.rand(60_000, 40_000)
            """,
            "df = pd.DataFrame(a)",
        ), line=1, column=6, message="pandas copies the array into the frame"),
        Case(
            """
            from sklearn.metrics.pairwise import cosine_similarity
            import numpy as np
            S = cosine_similarity(np.zeros((100_000, 300)))
            """,
            line=3, message="compares every row of X",
        ),
    ]

    def check(self, cell, result: _CellResult, budget: int) -> None:
        for allocation in _reported(cell, result, budget, self.context.trees[id(cell)]):
            total = allocation.total_nbytes
            if total > budget:
                message = (
                    f"{_shown(allocation.expr)} allocates {format_bytes(total)} ({_what(allocation)}), "
                    f"over the {format_bytes(budget)} budget; {_hint(allocation)}"
                )
                self.report_allocation(cell, allocation, message, total)


class AllocationNearBudget(_MemoryRule):
    """
    ## What it does
    Flags a numpy allocation whose statically known size is more than half of
    the memory budget (but not over it: that is KG101).

    ## Why is this bad?
    One array taking most of the memory leaves no room for the temporaries the
    next expression creates (`a * 2 + 1` makes two more arrays of the same
    size), for a copy, or for anything else the kernel holds: the next cell is
    the one that kills the kernel.

    ## Example
    ```python
    import numpy as np
    grid = np.ones((50_000, 25_000))  # 9.3 GiB of float64, on a 16 GiB machine
    ```

    ## Use instead
    ```python
    grid = np.ones((50_000, 25_000), dtype=np.float32)  # 4.7 GiB
    ```
    """

    code = "KG102"
    name = "allocation-near-budget"
    summary = "a numpy allocation taking more than half of the memory budget"
    severity = "warning"
    VALID = [
        """
        import numpy as np
        x = np.ones((25_000, 25_000))
        """,
        """
        import numpy as np
        x = np.random.rand(100000, 100000)
        """,  # over the budget: KG101
        """
        import numpy as np
        x = np.ones((50_000, 25_000), dtype=np.float32)
        """,
    ]
    INVALID = [
        Case(
            """
            import numpy as np
            grid = np.ones((50_000, 25_000))
            """,
            line=2, column=8, message="58% of the 16.0 GiB",
        ),
        Case((
            """
            import numpy as np
            shape = (40_000, 40_000)
            """,
            "a = np.empty(shape)",
        ), line=1),
    ]

    def check(self, cell, result: _CellResult, budget: int) -> None:
        for allocation in _reported(cell, result, budget, self.context.trees[id(cell)]):
            total = allocation.total_nbytes
            if LARGE_SHARE * budget < total <= budget:
                message = (
                    f"{_shown(allocation.expr)} allocates {format_bytes(total)} ({_what(allocation)}), "
                    f"{round(total * 100 / budget)}% of the {format_bytes(budget)} budget; {_hint(allocation)}"
                )
                self.report_allocation(cell, allocation, message, total)


class LiveArraysOverBudget(_MemoryRule):
    """
    ## What it does
    Flags the point where the numpy arrays a notebook keeps bound to names (or
    in lists and dicts) add up past the memory budget, none of them too large
    on its own. Arrays that are rebound, deleted or only temporary do not count.

    ## Why is this bad?
    Every array a name still refers to stays in memory: a notebook that loads a
    dataset, then a normalized copy, then a float64 version, holds all three.
    The cell that crosses the budget is killed by the out-of-memory killer,
    with everything computed so far.

    ## Example
    ```python
    import numpy as np
    raw = np.random.rand(40_000, 40_000)      # 11.9 GiB
    normalized = (raw - raw.mean()) / raw.std()  # 11.9 GiB more, raw still alive
    ```

    ## Use instead
    ```python
    data = np.random.rand(40_000, 40_000)
    data -= data.mean()  # in place: no second array
    data /= data.std()
    # or `del raw` once the copy is made
    ```
    """

    code = "KG103"
    name = "live-arrays-over-budget"
    summary = "the arrays a notebook keeps alive add up past the memory budget"
    severity = "error"
    VALID = [
        """
        import numpy as np
        a = np.zeros((40_000, 40_000))
        del a
        b = np.zeros((40_000, 40_000))
        """,
        """
        import numpy as np
        a = np.zeros((40_000, 40_000))
        a = np.ones((40_000, 40_000))
        """,
        """
        import numpy as np
        np.zeros((40_000, 40_000)).sum()
        np.ones((40_000, 40_000)).sum()
        """,
        """
        import numpy as np
        x = np.random.rand(100000, 100000)
        y = np.zeros(10)
        """,  # KG101's
        """
        import numpy as np
        x = np.random.rand(100000, 100000)
        x = None
        y = np.zeros((40_000, 40_000))
        """,
    ]
    INVALID = [
        Case((
            """
            import numpy as np
            a = np.zeros((40_000, 40_000))
            """,
            "b = np.zeros((40_000, 40_000))",
        ), line=1, column=5, message="arrays kept alive reach 23.8 GiB (a 11.9 GiB, b 11.9 GiB)"),
        Case(
            """
            import numpy as np
            raw = np.random.rand(40_000, 40_000)
            norm = (raw - raw.mean()) / raw.std()
            """,
            line=3,
        ),
        Case(
            """
            import numpy as np
            huge = np.ones((10**6, 10**6))
            a = np.ones((40_000, 40_000))
            b = a + 1
            """,
            line=4, message="(a 11.9 GiB, b 11.9 GiB)",
        ),
    ]

    def check(self, cell, result: _CellResult, budget: int) -> None:
        for over in result.live_over:
            names = ", ".join(f"{name} {format_bytes(nbytes)}" for name, nbytes in over.arrays[:4])
            if len(over.arrays) > 4:
                names += f", +{len(over.arrays) - 4} more"
            message = (
                f"arrays kept alive reach {format_bytes(over.total_nbytes)} ({names}), over the "
                f"{format_bytes(budget)} budget; `del` the ones no longer needed, work in place, or use float32"
            )
            self.report_allocation(cell, over.allocation, message, over.total_nbytes)


class UnboundedGrowth(_MemoryRule):
    """
    ## What it does
    Flags a list, dict, set or deque that gets a new item on every iteration of
    a loop that never ends (`while True` with no reachable `break`, `return` or
    `raise`, `for` over `itertools.count()`), and an array rebuilt from itself
    there (`a = np.append(a, x)`). In JSON output, `nbytes` is what one
    iteration adds in arrays of known size (0 when that is not known).

    ## Why is this bad?
    The container grows until the machine runs out of memory; then the
    out-of-memory killer ends the kernel, and everything collected is lost.

    ## Example
    ```python
    readings = []
    while True:
        readings.append(sensor.read())
    ```

    ## Use instead
    ```python
    from collections import deque
    readings = deque(maxlen=10_000)  # keeps the latest readings only
    while True:
        readings.append(sensor.read())
        if len(readings) == readings.maxlen and done(readings):
            break
    ```
    """

    code = "KG104"
    name = "unbounded-growth"
    summary = "a container that grows inside a loop that never ends"
    severity = "error"
    VALID = [
        """
        results = []
        while True:
            results.append(read())
            if len(results) > 100:
                break
        """,
        """
        import collections
        q = collections.deque(maxlen=100)
        while True:
            q.append(read())
        """,
        """
        while True:
            batch = []
            batch.append(read())
        """,
        """
        results = []
        it = iter(data)
        while True:
            results.append(next(it))
        """,
        """
        results = []
        try:
            while True:
                results.append(read())
        except KeyboardInterrupt:
            pass
        """,
        """
        results = []
        for i in range(10):
            results.append(i)
        """,
        """
        cache = {}
        while True:
            cache['last'] = read()
        """,
        """
        import numpy as np
        chunks = []
        while len(chunks) < 10**6:
            chunks.append(np.zeros(10))
        """,
    ]
    INVALID = [
        Case(
            """
            results = []
            while True:
                results.append(read())
            """,
            line=3, column=5, message="grows `results`",
        ),
        Case((
            """
            import numpy as np
            frames = []
            """,
            """
            while 1:
                frames.append(np.zeros((480, 640)))
            """,
        ), line=2),
        Case(
            """
            import itertools
            seen = set()
            for i in itertools.count():
                seen.add(i)
            """,
            line=4,
        ),
        Case(
            """
            import numpy as np
            a = np.zeros(0)
            while True:
                a = np.append(a, 1.0)
            """,
            line=4,
        ),
    ]

    def check(self, cell, result: _CellResult, budget: int) -> None:
        if not result.growth:
            return
        facts = flow.facts(self.context)
        loops = list(flow.with_ancestors(self.context.trees[id(cell)], flow.LOOPS))
        for growth in result.growth:
            if not any(
                _encloses(loop, growth) and facts.never_ends(loop, ancestors) for loop, ancestors in loops
            ):
                continue  # the loop is in a function, or flow sees a way out: stay silent
            per_iteration = f" ({format_bytes(growth.nbytes)} per iteration)" if growth.nbytes else ""
            message = (
                f"{_shown(growth.expr)} grows `{growth.target}` in a loop that never ends{per_iteration}: "
                "the kernel will run out of memory; bound the loop, or keep the latest items in a "
                "collections.deque(maxlen=...)"
            )
            self.report_allocation(cell, growth, message, growth.nbytes)


def _encloses(loop: flow.Loop, growth: Growth) -> bool:
    start, end = loop.lineno, loop.end_lineno or loop.lineno
    return start < growth.line <= end or (start == growth.line and loop.col_offset < growth.col - 1)
