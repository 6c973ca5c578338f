"""Lint a document: parse every cell with the stdlib ``ast``, then hand each cell,
in order, to the rules whose triggers occur in it."""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping

from kernel_guard.lint.context import LintContext
from kernel_guard.lint.finding import Finding
from kernel_guard.lint.names import carry_imports, cell_text, namespace_names
from kernel_guard.lint.registry import PARSE_ERROR, all_rules
from kernel_guard.lint.rule import Rule
from kernel_guard.lint.selection import Selection
from kernel_guard.parse_guard import ParseFailure, failure, parse_python
from kernel_guard.source import Cell, Document, python_source

_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]*(?:\s*,\s*[A-Z]+[0-9]*)*))?", re.IGNORECASE)


def lint_document(
    document: Document,
    selection: Selection = Selection(),
    mem_budget: int | None = None,
    imports: Mapping[str, str] | None = None,
) -> list[Finding]:
    """Every finding in ``document``, sorted, ``# noqa`` applied.  ``imports`` maps
    names bound before the document to what they stand for (``{"it": "itertools"}``,
    see ``names.namespace_names``), as from earlier cells of a kernel session."""
    context = LintContext(document, mem_budget, imports)
    rules = [
        rule(context)
        for rule in all_rules()
        if rule is not PARSE_ERROR and selection.enabled(rule.code) and rule.applies_to(document)
    ]
    report_parse_errors = selection.enabled(PARSE_ERROR.code)

    parsed: list[tuple[Cell, ast.Module]] = []
    for cell in document.cells:
        tree = _parse(cell, context, report_parse_errors)
        if tree is not None:
            context.trees[id(cell)] = tree
            parsed.append((cell, tree))

    for cell, tree in parsed:
        context.cell = cell
        try:
            _lint_cell(cell, tree, rules, context)
        except (RecursionError, MemoryError) as exc:  # parsed, but too deep for a rule's walk
            if report_parse_errors:
                _report_failure(context, cell, failure(exc), "cell cannot be analysed, its findings are unknown")
        carry_imports(context.known, tree)
    failed: dict[str, BaseException] = {}
    for rule in rules:
        try:
            rule.end_document()
        except (RecursionError, MemoryError) as exc:  # an analysis across cells too deep for the stack
            failed[rule.code] = exc
    if failed and report_parse_errors and parsed:
        what = f"{', '.join(failed)} cannot analyse the code across cells, their findings are unknown"
        _report_failure(context, parsed[-1][0], failure(next(iter(failed.values()))), what)
    return sorted(finding for finding in context.findings if not _suppressed(finding, document))


def _lint_cell(cell: Cell, tree: ast.Module, rules: list[Rule], context: LintContext) -> None:
    # An alias from an earlier cell (`from os import _exit as bye`) carries what it
    # stands for into the trigger check of a cell that uses it (`bye(1)`).
    text = cell_text(cell.source, context.known)
    for rule in rules:
        if _triggered(rule, text):
            rule.visit_cell(cell, tree)


def lint_source(
    source: str,
    *,
    filename: str = "<cell>",
    select: tuple[str, ...] = ("KG",),
    ignore: tuple[str, ...] = (),
    namespace: Mapping[str, object] | None = None,
) -> list[Finding]:
    """Lint one cell's source (IPython syntax allowed), or a script if ``filename``
    ends in ``.py``; ``select``/``ignore`` are code prefixes as on the command line.
    Modules and functions imported into ``namespace`` (a kernel's user namespace)
    resolve as if imported above the cell."""
    script = filename.endswith(".py")
    translated = (source, {}) if script else python_source(source)
    if translated is None:  # not Python (a %%bash body, ...)
        return []
    cell = Cell(None, source, *translated)
    document = Document(filename, [cell], is_notebook=not script)
    return lint_document(document, Selection(tuple(select), tuple(ignore)), imports=namespace_names(namespace or {}))


def _parse(cell: Cell, context: LintContext, report: bool) -> ast.Module | None:
    try:
        return parse_python(cell.source)
    except ParseFailure as problem:
        if report:
            _report_failure(context, cell, problem)
        return None


def _report_failure(
    context: LintContext, cell: Cell, problem: ParseFailure, what: str = "cell does not parse"
) -> None:
    position = (problem.line, problem.column, problem.line, problem.column)
    context.report(PARSE_ERROR(context), position, f"{what}: {problem.reason}", cell=cell)


def _triggered(rule: Rule, source: str) -> bool:
    return not rule.triggers or any(trigger in source for trigger in rule.triggers)


def _suppressed(finding: Finding, document: Document) -> bool:
    cell = next((c for c in document.cells if c.number == finding.cell), None)
    match = _NOQA.search(cell.raw_line(finding.line)) if cell else None
    if not match:
        return False
    codes = match.group("codes")
    return codes is None or any(finding.code.startswith(code.strip().upper()) for code in codes.split(","))
