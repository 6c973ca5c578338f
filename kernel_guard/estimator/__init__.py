"""Static estimate of the numpy arrays a cell allocates, without running it.

``estimate(source, namespace)`` parses a cell (IPython syntax included),
follows it with an abstract interpreter (``Program``) and lists every array
whose shape and dtype are known, and the library objects (``libraries``: a
pandas merge, ...) whose size is, each with its ``cause``. ``namespace`` (a
kernel's ``user_ns``) is read only through exact builtin, numpy and library
types; no user code ever runs.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING

from kernel_guard.estimator.results import Allocation, Estimate, Growth, LiveOver, Notice
from kernel_guard.estimator.values import UNKNOWN, evaluate
from kernel_guard.parse_guard import ParseFailure, parse_python
from kernel_guard.source import python_source

if TYPE_CHECKING:
    from kernel_guard.estimator.interpreter import Program

__all__ = [
    "UNKNOWN", "Allocation", "Estimate", "Growth", "LiveOver", "Notice", "Program", "estimate", "evaluate", "parse_cell"
]


def parse_cell(source: str) -> tuple[ast.Module, str, dict[int, int]] | None:
    """The cell as a Python module with its own line numbers, the Python text it
    was parsed from, and the columns removed per line (``%time x = ...`` is read
    as ``x = ...``). ``None`` if the cell is not Python (``%%bash``) or does not
    parse."""
    try:
        return parse_python(source), source, {}
    except ParseFailure:
        pass
    translated = python_source(source)
    if translated is None:
        return None
    python, shifts = translated
    try:
        return parse_python(python), python, shifts
    except ParseFailure:
        return None


def estimate(source: str, namespace: Mapping | None = None) -> Estimate:
    """The arrays ``source`` allocates whose size is statically known.

    Names come from earlier lines of ``source`` and, failing that, from
    ``namespace``. A source that does not parse gives an empty estimate.
    """
    parsed = parse_cell(source)
    if parsed is None:
        return Estimate()
    tree, python, shifts = parsed
    from kernel_guard.estimator.interpreter import Program

    program = Program(namespace)
    allocations = [_shifted(a, shifts) for a in program.run(tree, python)]
    return Estimate(allocations, [_shifted(g, shifts) for g in program.growth],
                    [_shifted(n, shifts) for n in program.notices])


def _shifted(found, shifts: dict[int, int]):
    """Columns in the cell as written, for a position found in its Python translation."""
    if not shifts:
        return found
    return dataclasses.replace(
        found, col=found.col + shifts.get(found.line, 0), end_col=found.end_col + shifts.get(found.end_line, 0)
    )


def __getattr__(name: str) -> object:
    """``Program`` on first use: the interpreter imports numpy, which the linter's
    other rules (and documents with nothing to size) never need."""
    if name == "Program":
        from kernel_guard.estimator.interpreter import Program

        return Program
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
