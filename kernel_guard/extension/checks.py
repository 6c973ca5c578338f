"""Pre-run checks of a guarded cell: lint it, estimate its allocations against the
user's namespace (never calling user code), and decide what refuses the cell."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from kernel_guard.sizes import format_bytes

# Lint families the guard handles itself or that are not about running this cell:
# KG0 (parse errors: Python reports them itself when the cell runs) and KG1 (memory:
# the estimate below checks it against the real budget, not the linter's).
_SKIPPED_FAMILIES = ("KG0", "KG1")
_REFUSING_FAMILY = "KG5"  # kernel killers: the cell would take the kernel down with it


@dataclass
class Problem:
    line: int
    text: str  # one sentence, `code` in backticks
    code: str | None = None  # KG code, None for a size estimate


@dataclass
class Budget:
    """How many bytes a new allocation of this cell may take, and why."""

    nbytes: int
    why: str  # "under the 600.0 MiB cap (the kernel holds 95.0 MiB)"


@dataclass
class Verdict:
    refusals: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    allocations: list = field(default_factory=list)  # estimator Allocations, lines as shown
    total_nbytes: int = 0
    budget: Budget | None = None


def make_budget(*, cap: int | None, cap_text: str | None, rss: int, available: int) -> Budget:
    """The headroom under ``cap`` (a total-RSS cap, so what the kernel holds counts),
    never more than the memory the machine or container can still give."""
    if cap is not None and cap - rss <= available:
        return Budget(max(0, cap - rss), f"under the {cap_text} cap (the kernel already holds {format_bytes(rss)})")
    return Budget(available, "available to this kernel now")


def check_cell(source: str, namespace, *, offset: int, budget: Budget, lint: bool) -> Verdict:
    """Lint and estimate ``source``; line numbers are shifted by ``offset`` to count
    the cell as shown (the ``%%guard`` line is line 1)."""
    verdict = Verdict(budget=budget)
    if lint:
        for finding in _lint(source):
            if finding.code.startswith(_SKIPPED_FAMILIES):
                continue
            problem = Problem(finding.line + offset, f"{finding.code} {finding.message}", finding.code)
            if finding.code.startswith(_REFUSING_FAMILY):
                verdict.refusals.append(problem)
            else:
                verdict.warnings.append(problem)
    _estimate(source, namespace, offset, verdict)
    return verdict


@lru_cache(maxsize=256)
def _lint(source: str) -> tuple:
    """Findings depend on the source alone: re-running a cell costs nothing."""
    from kernel_guard.lint.engine import lint_source

    return tuple(lint_source(source))


def _estimate(source: str, namespace, offset: int, verdict: Verdict) -> None:
    from kernel_guard.estimator import estimate

    try:
        result = estimate(source, namespace)
    except SyntaxError:  # Python reports it, with the right line, when the cell compiles
        return
    budget = verdict.budget
    verdict.total_nbytes = result.total_nbytes
    for allocation in result.allocations:
        line = allocation.line + offset
        verdict.allocations.append((line, allocation))
        if allocation.total_nbytes > budget.nbytes:
            many = f"{allocation.count:,} arrays of " if allocation.count > 1 else ""
            verdict.refusals.append(Problem(line, (
                f"`{allocation.expr}` allocates {many}{format_bytes(allocation.nbytes)} "
                f"({_describe(allocation)}), but only {format_bytes(budget.nbytes)} fit {budget.why}"
            )))
    if any(p.code is None for p in verdict.refusals):
        return
    kept = [(line, a) for line, a in verdict.allocations if a.kept]
    kept_nbytes = sum(a.total_nbytes for _, a in kept)
    if kept_nbytes > budget.nbytes:  # all alive once the cell has run: certain not to fit
        verdict.refusals.append(Problem(kept[0][0], (
            f"the arrays this cell keeps take {format_bytes(kept_nbytes)} together, "
            f"but only {format_bytes(budget.nbytes)} fit {budget.why}"
        )))
    elif result.total_nbytes > budget.nbytes:
        verdict.warnings.append(Problem(verdict.allocations[0][0], (
            f"the arrays of this cell take {format_bytes(result.total_nbytes)} together, more than "
            f"the {format_bytes(budget.nbytes)} that fit {budget.why}, if they are all alive at once"
        )))
    for growth in result.growth:
        verdict.warnings.append(Problem(growth.line + offset, (
            f"`{growth.expr}` grows `{growth.target}` in a loop that never ends, "
            "until the memory runs out"
        )))


def _describe(allocation) -> str:
    shape = getattr(allocation, "shape", None)
    dims = " × ".join(f"{d:,}" for d in shape) if shape else None
    parts = [str(allocation.dtype)] if getattr(allocation, "dtype", None) else []
    if dims:
        parts.append(f"shape {dims}")
    return ", ".join(parts) or "estimated"
