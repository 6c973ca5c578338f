"""The messages of a guarded cell, built from what the checks and the runtime report:
a refusal, a dry run's or ``%guard check``'s report, the ``-v`` summary, the depth notice."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kernel_guard.errors import GuardRefused
from kernel_guard.extension import checks
from kernel_guard.extension.options import Options, Resolved, describe_size, summary_parts
from kernel_guard.extension.render import Message, format_seconds
from kernel_guard.runtime.limits import LIMITS
from kernel_guard.sizes import format_bytes, format_shape

if TYPE_CHECKING:
    from kernel_guard.runtime import RunReport
    from kernel_guard.runtime.recursion import DepthChange

LIMIT_NAMES = {limit.hit: limit.noun for limit in LIMITS}
MEMORY_TIPS = [
    "a smaller shape, or a smaller dtype (`dtype=np.float32` takes half of float64)",
    "work in chunks, or keep the data on disk with `np.memmap`",
]


def check_report(verdict: checks.Verdict, what: str) -> Message:
    """What ``--dry-run`` and ``%guard check`` show: problems, allocations, budget."""
    refused = bool(verdict.refusals)
    message = Message(
        f"{what}: this cell would be refused" if refused else f"{what}: this cell would run",
        "error" if refused else "info",
        [f"line {p.line}: {p.text}" for p in sorted(verdict.refusals + verdict.warnings, key=by_line)],
    )
    if verdict.allocations:
        rows = [[str(line), f"`{checks.short(a.expr)}`", shape_text(a), str(a.dtype or "?"), format_bytes(a.nbytes)]
                for line, a in verdict.allocations]
        message.table = (["line", "allocation", "shape", "dtype", "size"], rows)
    budget = verdict.budget
    message.lines.append(
        f"estimated total {format_bytes(verdict.total_nbytes)}; "
        f"{format_bytes(budget.nbytes)} {budget.why}"
    )
    return message


def summary(report: RunReport, limits: Resolved, options: Options) -> Message:
    """The ``-v`` summary after a guarded cell: peak memory against the cap, time, limits in force."""
    elapsed = format_seconds(report.elapsed)
    hit = LIMIT_NAMES.get(report.limit_hit) if report.limit_hit else None
    title = f"stopped by its {hit} after {elapsed}" if hit else f"ran for {elapsed}"
    peak = format_bytes(report.peak_rss) if report.peak_rss else "?"
    lines = [f"peak memory {peak}" + (f" of the {describe_size(options.max_mem, limits.max_mem)} cap"
                                      if limits.max_mem else " (no memory cap)")]
    in_force = {"max_depth": report.depth_change.limit} if report.depth_change else {}
    lines.append(", ".join(summary_parts(limits, in_force)))
    return Message(title, "info", lines)


def refusal(verdict: checks.Verdict, holders: list[str]) -> GuardRefused:
    """Show why the cell is not run (``holders``: what could be freed to make room);
    return the GuardRefused to raise."""
    problems = sorted(verdict.refusals, key=by_line)
    tips = list(holders)
    if any(p.code is None and not p.explained for p in problems):  # a library size says its own fix
        tips += MEMORY_TIPS
    if any(p.code and p.code != "KG507" for p in problems):  # KG507's text says its own fix
        tips.append("remove the call that ends the kernel process")
    tips.append("`%%guard --force ...` runs it anyway, still under its limits")
    Message("this cell was not run", "error", [f"line {p.line}: {p.text}" for p in problems], tips=tips).show()
    first, others = problems[0], len(problems) - 1
    # The message has the whole first reason (for logs, nbclient, papermill); the line
    # shown under the box is short: the box says it all.
    error = GuardRefused(f"line {first.line}: {first.text.replace('`', '')}"
                         + (f" (and {others} more)" if others else ""))
    shown = f"cell not run: {first.short()} ({f'and {others} more; ' if others else ''}details above)"
    # IPython shows the result of _render_traceback_ instead of a traceback.
    error._render_traceback_ = lambda: [  # type: ignore[attr-defined]  # IPython's per-exception hook
        f"\x1b[0;31mGuardRefused\x1b[0m: {shown}"
    ]
    return error


def depth_notice(change: DepthChange) -> Message:
    """The runtime's change of the recursion limit as a short title, and the reason
    under it in the magic's own words (``--max-depth``, not the runtime's ``max_depth``)."""
    before = not change.given and change.lowered  # the limit set before the cell, not --max-depth
    given = (f"the recursion limit set before this cell is {change.requested:,}" if before
             else f"you gave `--max-depth {change.requested:,}`")
    verb = "lowered" if change.lowered else "raised"
    return Message(f"recursion limit {verb} to {change.limit:,}{' for this cell' if before else ''}", "warning",
                   [f"{given}, but {change.why}"])


def by_line(problem: checks.Problem) -> int:
    return problem.line


def shape_text(allocation) -> str:
    shape = getattr(allocation, "shape", None)
    return format_shape(shape) if shape else "?"
