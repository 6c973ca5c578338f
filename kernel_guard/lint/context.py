"""What the rules know about the document being linted, across its cells."""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol, TypeVar, cast

from kernel_guard.columns import char_offset
from kernel_guard.lint.finding import Finding

if TYPE_CHECKING:
    from kernel_guard.lint.rule import Rule
    from kernel_guard.source import Cell, Document

_IMMUTABLE = (int, float, complex, str, bytes, bool, type(None))
T = TypeVar("T")


class Located(Protocol):
    """An ``ast`` node with a position (statements, expressions, arguments...)."""

    lineno: int
    col_offset: int
    end_lineno: int | None
    end_col_offset: int | None


class LintContext:
    """Per-document state shared by the rules: the cells, their ``ast`` trees,
    notebook-wide constants, and what names stand for before the document
    (``before``, from a kernel's namespace) and before the visited cell (``known``)."""

    def __init__(
        self, document: Document, mem_budget: int | None = None, before: Mapping[str, str] | None = None
    ) -> None:
        self.path = document.path
        self.is_notebook = document.is_notebook
        self.cells = document.cells
        self._mem_budget = mem_budget
        self.trees: dict[int, ast.Module] = {}  # id(cell) -> tree, for cells that parse
        self.cell: Cell | None = None
        self.before: Mapping[str, str] = dict(before or {})
        self.known: dict[str, str] = dict(self.before)  # kept up to date by the engine, cell by cell
        self.findings: list[Finding] = []
        self._constant_nodes: dict[str, ast.expr] | None = None
        self._constants: dict[str, object] = {}
        self._shared: dict[object, object] = {}

    @property
    def mem_budget(self) -> int:
        """Bytes the KG1 rules measure against (default: the machine's or container's memory)."""
        if self._mem_budget is None:
            from kernel_guard.memory import usable_memory

            self._mem_budget = usable_memory()
        return self._mem_budget

    def shared(self, key: object, build: Callable[[], T]) -> T:
        """A per-document value (facts, an analysis) built on first use by
        ``build`` and shared by every rule that asks for the same ``key``."""
        if key not in self._shared:
            self._shared[key] = build()
        return cast(T, self._shared[key])  # one key, one builder: the value ``build`` made

    # -- values -----------------------------------------------------------------

    def constant(self, name: str) -> object:
        """The value of a name bound exactly once in the whole document, at module
        level, to a constant expression of immutable values; else ``UNKNOWN``.

        Any other binding of the name anywhere (a loop target, an argument, an
        augmented assignment, an import) makes it unknown: precision first."""
        from kernel_guard.estimator import UNKNOWN, evaluate

        if self._constant_nodes is None:
            self._constant_nodes = _single_assignments(self.trees.values())
        if name in self._constants:
            return self._constants[name]
        node = self._constant_nodes.get(name)
        self._constants[name] = UNKNOWN  # a cycle (a = b; b = a) stays unknown
        value = UNKNOWN if node is None else evaluate(node, self.constant)
        if not _is_immutable(value):
            value = UNKNOWN
        self._constants[name] = value
        return value

    # -- positions --------------------------------------------------------------

    @staticmethod
    def ast_position(cell: Cell, node: Located) -> tuple[int, int, int, int]:
        """``(line, column, end_line, end_column)`` of an ``ast`` node, 1-based, in
        characters (``ast`` columns count UTF-8 bytes)."""
        lines = cell.source.splitlines()

        def column(line: int, offset: int) -> int:
            return char_offset(lines[line - 1] if 0 < line <= len(lines) else "", offset) + 1

        end_line = node.end_lineno or node.lineno
        return (
            node.lineno,
            column(node.lineno, node.col_offset),
            end_line,
            column(end_line, node.end_col_offset or node.col_offset),
        )

    # -- findings ---------------------------------------------------------------

    def report(self, rule: Rule, position, message: str, *, cell: Cell | None = None, **extra) -> None:
        cell = cell or self.cell
        assert cell is not None, "a finding outside a visited cell names its cell"
        line, column, end_line, end_column = position
        shift = cell.col_shift.get(line, 0)
        end_shift = cell.col_shift.get(end_line, 0)
        self.findings.append(
            Finding(
                path=self.path,
                cell=cell.number,
                line=line,
                column=column + shift,
                end_line=end_line,
                end_column=end_column + end_shift,
                code=rule.code,
                name=rule.name,
                severity=rule.severity,
                message=message,
                **extra,
            )
        )


def _is_immutable(value: object) -> bool:
    if isinstance(value, tuple):
        return all(_is_immutable(item) for item in value)
    return isinstance(value, _IMMUTABLE)


def _single_assignments(trees) -> dict[str, ast.expr]:
    """Names bound once in the whole document, by a module-level ``name = expr``."""
    bindings: dict[str, int] = {}
    candidates: dict[str, ast.expr] = {}
    for tree in trees:
        for statement in tree.body:
            if (
                isinstance(statement, ast.Assign)
                and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)
            ):
                candidates[statement.targets[0].id] = statement.value
            elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name) and statement.value:
                candidates[statement.target.id] = statement.value
        for node in ast.walk(tree):
            for name in _bound_names(node):
                bindings[name] = bindings.get(name, 0) + 1
    return {name: node for name, node in candidates.items() if bindings.get(name) == 1}


def _bound_names(node: ast.AST):
    if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
        yield node.id
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield node.name
    elif isinstance(node, ast.arg):
        yield node.arg
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        for alias in node.names:
            yield (alias.asname or alias.name).split(".")[0]
    elif isinstance(node, (ast.Global, ast.Nonlocal)):
        for name in node.names:  # rebinding from inside a function: never constant
            yield name
            yield name
    elif isinstance(node, ast.ExceptHandler) and node.name:
        yield node.name
    elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
        yield node.name
    elif isinstance(node, ast.MatchMapping) and node.rest:
        yield node.rest
