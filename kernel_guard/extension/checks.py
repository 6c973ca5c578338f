"""Pre-run checks of a guarded cell: lint it, estimate its allocations against the
user's namespace (never calling user code), and decide what refuses the cell."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from kernel_guard.sizes import format_bytes, format_shape

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
    brief: str | None = None  # with its line, short enough for a one-line error; None: ``text`` is
    explained: bool = False  # a library size whose text gives its own cause and fix (not numpy's tips)

    def short(self) -> str:
        """``line 3: KG501 os._exit() ends the kernel process at once``, without backticks."""
        return (self.brief or f"line {self.line}: {self.text}").replace("`", "")


@dataclass
class Budget:
    """How many bytes a new allocation of this cell may take, and why."""

    nbytes: int
    why: str  # follows the size: "fit under the 600.0 MiB cap (...)", "are available to this kernel now"


@dataclass
class Verdict:
    budget_of: Callable[[], Budget]  # read only when the cell allocates: it costs a cgroup read
    refusals: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    allocations: list = field(default_factory=list)  # (line as shown, estimator Allocation)
    total_nbytes: int = 0

    @cached_property
    def budget(self) -> Budget:
        return self.budget_of()


def make_budget(*, cap: int | None, cap_text: str | None, rss: int, available: int) -> Budget:
    """The headroom under ``cap`` (a total-RSS cap, so what the kernel holds counts),
    never more than the memory the machine or container can still give."""
    if cap is not None and cap - rss <= available:
        return Budget(max(0, cap - rss), f"fit under the {cap_text} cap (the kernel already holds {format_bytes(rss)})")
    return Budget(available, "are available to this kernel now")


def check_cell(source: str, namespace, *, offset: int, budget: Callable[[], Budget], lint: bool,
               program=None, tree: ast.Module | None = None) -> Verdict:
    """Lint and estimate ``source``; line numbers are shifted by ``offset`` to count
    the cell as shown (the ``%%guard`` line is line 1). ``program``, an estimator
    ``Program``, carries what earlier cells bound when checking several in a row.
    ``tree``: ``source`` already parsed as plain Python, ``offset`` blank lines above."""
    verdict = Verdict(budget)
    if lint:
        for finding in _lint(source, _imports(namespace)):
            line, text = finding.line + offset, f"{finding.code} {finding.message}"
            brief = f"line {line}: {text.split('; ', 1)[0]}" if "; " in text else None  # "...; do this instead"
            problem = Problem(line, text, finding.code, brief)
            if finding.code.startswith(_REFUSING_FAMILY):
                verdict.refusals.append(problem)
            else:
                verdict.warnings.append(problem)
    for check, what in ((_spawn_hangs, "spawn pool check"), (_estimate, "size estimate")):
        try:
            check(source, namespace, offset, verdict, program, tree)
        except Exception as exc:  # a bug of one check: the refusals of the others still stand
            verdict.warnings.append(Problem(offset + 1, f"{what} skipped ({type(exc).__name__}); "
                                                        "the cell runs under its limits"))
    return verdict


def _spawn_hangs(source: str, namespace, offset: int, verdict: Verdict, program, tree: ast.Module | None) -> None:
    """Pools over notebook functions under the start method in force (KG507 sees one set in the cell)."""
    from kernel_guard.estimator import parse_cell
    from kernel_guard.extension.spawn import find_hangs

    if tree is None:
        parsed = parse_cell(source)
        if parsed is None:
            return
        tree = parsed[0]
    else:
        offset = 0  # parsed with the blank lines above: lines are as shown
    linted = {p.line for p in verdict.refusals if p.code == "KG507"}
    for hang in find_hangs(tree, namespace):
        line = hang.line + offset
        if line not in linted:
            text = f"KG507 {hang.text}"
            verdict.refusals.append(Problem(line, text, "KG507", f"line {line}: {text.split(': ', 1)[0]}"))


def check_session(cells: list[tuple[int, str]], *, budget: Budget) -> list[tuple[int, Verdict]]:
    """Check the cells ``[(number, source), ...]`` of a session in order, as one program
    replayed from the start (no namespace: the names come from the cells)."""
    from kernel_guard.estimator import Program

    program = Program(None)
    return [(number, check_cell(source, None, offset=0, budget=lambda: budget, lint=True, program=program))
            for number, source in cells]


def _imports(namespace) -> tuple:
    """What the namespace's modules and functions stand for (``it = itertools`` two cells ago)."""
    from kernel_guard.lint.names import namespace_names

    return tuple(sorted(namespace_names(namespace).items())) if namespace else ()


@lru_cache(maxsize=256)
def _lint(source: str, imports: tuple) -> tuple:
    """Findings depend on the source and the imports alone: re-running a cell costs
    nothing. The rules whose findings the guard gets otherwise (the estimate) do not run."""
    from kernel_guard.lint.engine import Selection, lint_document
    from kernel_guard.source import Cell, Document, python_source

    translated = python_source(source)
    if translated is None:  # not Python (a %%bash body, ...)
        return ()
    document = Document("<cell>", [Cell(None, source, *translated)], is_notebook=True)
    return tuple(lint_document(document, Selection(ignore=_SKIPPED_FAMILIES), imports=dict(imports)))


def _estimate(source: str, namespace, offset: int, verdict: Verdict, program, tree) -> None:
    from kernel_guard.estimator import Estimate, Program, estimate, parse_cell

    if program is None and tree is None:
        result = estimate(source, namespace)
    else:
        if tree is not None:  # parsed already, with the blank lines: positions are as shown
            python, offset = "\n" * offset + source, 0
        else:
            parsed = parse_cell(source)
            if parsed is None:
                return
            tree, python, _ = parsed
        program = program or Program(namespace)
        grown = len(program.growth)
        noticed = len(program.notices)
        allocations = program.run(tree, python)
        result = Estimate(allocations, program.growth[grown:], program.notices[noticed:])
    for notice in result.notices:  # library sizes not read: the cap still protects these lines
        verdict.warnings.append(Problem(notice.line + offset, f"`{short(notice.expr)}` {notice.text}"))
    if not result.allocations and not result.growth:
        return
    budget = verdict.budget
    verdict.total_nbytes = result.total_nbytes
    for allocation in result.allocations:
        line = allocation.line + offset
        if allocation.device:  # on an accelerator, reported only when it does not fit there (its cause says so)
            size = f"allocates {format_bytes(allocation.nbytes)} on {allocation.device}"
            verdict.refusals.append(Problem(line, f"`{short(allocation.expr)}` {size} ({_describe(allocation)}): "
                                                  f"{allocation.cause}", brief=f"line {line} {size}",
                                            explained=True))
            continue
        verdict.allocations.append((line, allocation))
        if allocation.total_nbytes > budget.nbytes:
            allocates = (f"allocates {allocation.count:,} arrays of " if allocation.count > 1 else "allocates "
                         ) + format_bytes(allocation.nbytes)
            cause = f": {allocation.cause}" if allocation.cause else ""
            verdict.refusals.append(Problem(line, (
                f"`{short(allocation.expr)}` {allocates} ({_describe(allocation)}), "
                f"but only {format_bytes(budget.nbytes)} {budget.why}{cause}"
            ), brief=f"line {line} {allocates}, only {format_bytes(budget.nbytes)} left",
                explained=allocation.cause is not None))
    if any(p.code is None for p in verdict.refusals):
        return
    kept = [(line, a) for line, a in verdict.allocations if a.kept]
    kept_nbytes = sum(a.total_nbytes for _, a in kept)
    if kept_nbytes > budget.nbytes:  # all alive once the cell has run: certain not to fit
        together = f"the arrays this cell keeps take {format_bytes(kept_nbytes)} together"
        verdict.refusals.append(Problem(kept[0][0], (
            f"{together}, but only {format_bytes(budget.nbytes)} {budget.why}"
        ), brief=f"line {kept[0][0]}: {together}, only {format_bytes(budget.nbytes)} left"))
    elif result.total_nbytes > budget.nbytes:
        verdict.warnings.append(Problem(verdict.allocations[0][0], (
            f"the arrays of this cell take {format_bytes(result.total_nbytes)} together, more than "
            f"the {format_bytes(budget.nbytes)} that {budget.why}, if they are all alive at once"
        )))
    for growth in result.growth:
        verdict.warnings.append(Problem(growth.line + offset, (
            f"`{short(growth.expr)}` grows `{growth.target}` in a loop that never ends, "
            "until the memory runs out"
        )))


def short(expr: str, width: int = 60) -> str:
    """An expression on one line, cut to ``width`` characters."""
    expr = " ".join(expr.split())
    return expr if len(expr) <= width else expr[: width - 3] + "..."


def _describe(allocation) -> str:
    shape = getattr(allocation, "shape", None)
    dims = format_shape(shape) if shape else None
    parts = [str(allocation.dtype)] if getattr(allocation, "dtype", None) else []
    if dims:
        parts.append(f"shape {dims}")
    return ", ".join(parts) or "estimated"
