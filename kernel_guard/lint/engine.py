"""Lint a document: cheap ``ast`` pass over every cell, then one batched libcst
traversal per cell for the rules whose triggers occur in it."""

from __future__ import annotations

import ast
import re
import types
from collections.abc import Mapping

import libcst as cst
from libcst.metadata import MetadataWrapper, QualifiedNameProvider, ScopeProvider

from kernel_guard.lint.context import LintContext
from kernel_guard.lint.finding import Finding
from kernel_guard.lint.registry import PARSE_ERROR, all_rules
from kernel_guard.lint.rule import Rule
from kernel_guard.lint.selection import Selection
from kernel_guard.parse_guard import PARSE_ERRORS, ParseFailure, failure, parse_python
from kernel_guard.source import Cell, Document, python_source

_LIBCST_FAILURES: tuple[type[BaseException], ...] = (cst.ParserSyntaxError, *PARSE_ERRORS)
_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]*(?:\s*,\s*[A-Z]+[0-9]*)*))?", re.IGNORECASE)


def lint_document(
    document: Document,
    selection: Selection = Selection(),
    mem_budget: int | None = None,
    imports: Mapping[str, str] | None = None,
) -> list[Finding]:
    """Every finding in ``document``, sorted, ``# noqa`` applied.  ``imports`` maps
    names bound before the document to the import that binds them
    (``{"os": "import os"}``), as from earlier cells of a kernel session."""
    context = LintContext(document, mem_budget)
    rules = [
        rule(context)
        for rule in all_rules()
        if rule is not PARSE_ERROR and selection.enabled(rule.code) and rule.applies_to(document)
    ]
    cst_rules = [rule for rule in rules if rule.triggers is not None]
    report_parse_errors = selection.enabled(PARSE_ERROR.code)

    parsed: list[tuple[Cell, ast.Module]] = []
    for cell in document.cells:
        tree = _parse(cell, context, report_parse_errors)
        if tree is not None:
            context.trees[id(cell)] = tree
            parsed.append((cell, tree))

    header = dict(imports or {})  # name -> the import that binds it, from earlier cells
    for cell, tree in parsed:
        context.cell = cell
        try:
            _lint_cell(cell, tree, rules, cst_rules, header, context)
        except (RecursionError, MemoryError) as exc:  # parsed, but too deep for a rule's walk
            if report_parse_errors:
                _report_failure(context, cell, failure(exc), "cell cannot be analysed, its findings are unknown")
        _update_imports(header, tree)
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


def _lint_cell(
    cell: Cell, tree: ast.Module, rules: list[Rule], cst_rules: list[Rule], header: dict[str, str], context: LintContext
) -> None:
    for rule in rules:
        rule.visit_cell(cell, tree)
    # An alias from an earlier cell (`from os import _exit as bye`) carries its
    # import's text into the trigger check of a cell that uses it (`bye(1)`).
    text = cell.source + "".join(f"\n{line}" for name, line in header.items() if name in cell.source)
    active = [rule for rule in cst_rules if _triggered(rule, text)]
    if active:
        _visit(cell, header, active, context)


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
    return lint_document(document, Selection(tuple(select), tuple(ignore)), imports=namespace_imports(namespace or {}))


def namespace_imports(namespace: Mapping[str, object]) -> dict[str, str]:
    """The import that would bind each module or module-level function of a live
    namespace.  Only exact module and function types are read, and only through
    their ``__dict__``/plain attributes: no user code runs."""
    imports = {}
    for name, value in namespace.items():
        if name.startswith("_") or not name.isidentifier():
            continue
        kind = type(value)
        if kind is types.ModuleType:
            module = value.__dict__.get("__name__")
            if isinstance(module, str):
                imports[name] = f"import {module} as {name}"
        elif kind is types.BuiltinFunctionType or kind is types.FunctionType:
            module, qualname = value.__module__, value.__qualname__
            if isinstance(module, str) and module not in ("__main__", "builtins") and qualname.isidentifier():
                imports[name] = f"from {module} import {qualname} as {name}"
    return imports


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


def _visit(cell: Cell, header: dict[str, str], rules: list[Rule], context: LintContext) -> None:
    prefix = "".join(line + "\n" for line in header.values())
    try:
        module = cst.parse_module(prefix + cell.source)
    except _LIBCST_FAILURES:
        return  # valid for CPython but not for libcst's grammar (or its stack): nothing to say
    context.header_lines = prefix.count("\n")
    context.wrapper = wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    qualified_names = None
    for rule in rules:
        needs = rule.get_inherited_dependencies()
        if QualifiedNameProvider in needs and qualified_names is None:
            qualified_names = _QualifiedNames(wrapper.resolve(ScopeProvider))
        rule.metadata = {
            provider: qualified_names if provider is QualifiedNameProvider else wrapper.resolve(provider)
            for provider in needs
        }
    try:
        cst.visit_batched(module, rules)
    finally:
        for rule in rules:
            rule.metadata = {}
        context.wrapper = None


class _QualifiedNames:
    """``QualifiedNameProvider``'s mapping, computed per node on demand.

    libcst's provider walks the whole tree once more to attach a lazy value to
    every node (a third of the metadata cost of a cell); rules ask about a few
    calls.  The value is the same: ``scope.get_qualified_names_for(node)`` when the
    node has a scope, else the empty set."""

    def __init__(self, scopes) -> None:
        self._scopes = scopes
        self._names: dict = {}

    def __getitem__(self, node):
        names = self._names.get(node)
        if names is None:
            scope = self._scopes.get(node)
            names = self._names[node] = scope.get_qualified_names_for(node) if scope else set()
        return names

    def get(self, node, default=None):
        return self[node]


def _update_imports(header: dict[str, str], tree: ast.Module) -> None:
    """Track which module-level names are bound by imports (also under top-level
    ``if``/``try``) as one-line imports; a later module-level rebinding drops one."""
    stack = list(tree.body)
    while stack:
        node = stack.pop(0)
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.asname or alias.name.split(".")[0]
                header[name] = f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
        elif isinstance(node, ast.ImportFrom):
            if node.module == "__future__" or node.level:
                continue
            for alias in node.names:
                if alias.name != "*":
                    name = alias.asname or alias.name
                    header[name] = f"from {node.module} import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
        elif isinstance(node, (ast.If, ast.Try)):
            stack[:0] = [*node.body, *node.orelse, *(s for h in getattr(node, "handlers", []) for s in h.body)]
        else:
            for name in _module_bindings(node):
                header.pop(name, None)


def _module_bindings(node: ast.stmt):
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield node.name
        return
    targets = {
        ast.Assign: lambda n: n.targets,
        ast.AnnAssign: lambda n: [n.target],
        ast.AugAssign: lambda n: [n.target],
        ast.For: lambda n: [n.target],
        ast.With: lambda n: [item.optional_vars for item in n.items if item.optional_vars],
    }.get(type(node), lambda n: [])(node)
    for target in targets:
        for sub in ast.walk(target):
            if isinstance(sub, ast.Name):
                yield sub.id


def _suppressed(finding: Finding, document: Document) -> bool:
    cell = next((c for c in document.cells if c.number == finding.cell), None)
    match = _NOQA.search(cell.raw_line(finding.line)) if cell else None
    if not match:
        return False
    codes = match.group("codes")
    return codes is None or any(finding.code.startswith(code.strip().upper()) for code in codes.split(","))
