"""The rule base class: one class per rule, Fixit-style.

A rule's class docstring is its documentation (*What it does / Why is this bad? /
Example / Use instead*), and its ``VALID``/``INVALID`` examples are run by the
test suite.

Rules read the stdlib ``ast``: the engine parses every cell once and hands each
cell, in order, to ``visit_cell`` of the rules whose ``triggers`` occur in it (a
cheap text test); ``end_document`` reports what needs every cell.  What names
stand for (imports of this cell, earlier cells, a kernel's namespace) comes from
one resolver, ``lint.names``; notebook-wide facts about bindings and control flow
from ``lint.flow``.  Each rule walks the parts of a tree it needs, mostly through
those shared, lazily built facts.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from kernel_guard.lint.context import LintContext, Located
    from kernel_guard.source import Cell, Document


@dataclass(frozen=True)
class Case:
    """An example for the test suite: one cell (``str``) or a notebook (``list``).

    A cell written as a triple-quoted block (text starting with a new line) is
    dedented, without its first and last line breaks.  ``script=True`` lints it as
    a ``.py`` file instead of a notebook; ``saved_output=N`` writes it to a real
    notebook file whose last cell has N characters of saved output.  For INVALID
    cases ``line``/``column`` (within the last cell) and ``message`` (a substring)
    are checked when given.
    """

    code: str | tuple[str, ...]
    line: int | None = None
    column: int | None = None
    message: str | None = None
    script: bool = False
    saved_output: int = 0

    @property
    def cells(self) -> list[str]:
        cells = [self.code] if isinstance(self.code, str) else list(self.code)
        return [textwrap.dedent(cell).strip("\n") if cell.startswith("\n") else cell for cell in cells]


class Rule:
    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    severity: ClassVar[str] = "warning"
    # Substrings one of which must occur in a cell (or in what its names stand for)
    # for ``visit_cell`` to see it; empty or None: every cell.
    triggers: ClassVar[tuple[str, ...] | None] = ()
    VALID: ClassVar[list[str | tuple[str, ...] | Case]] = []
    INVALID: ClassVar[list[str | tuple[str, ...] | Case]] = []

    def __init__(self, context: LintContext) -> None:
        self.context = context

    @classmethod
    def documentation(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or cls.summary)

    @classmethod
    def applies_to(cls, document: Document) -> bool:
        """Whether the rule can fire anywhere in ``document``: a cheap text test
        that keeps a rule out of documents it has nothing to say about."""
        return True

    def visit_cell(self, cell: Cell, tree: ast.Module) -> None:
        """Called for every parsable cell that mentions a trigger, in order."""

    def end_document(self) -> None:
        """Called once after the last cell: report cross-cell findings here."""

    def report(self, node: Located, message: str, **extra) -> None:
        """A finding at ``node`` in the cell being visited."""
        cell = self.context.cell
        assert cell is not None, "report() is for the cell being visited"
        self.context.report(self, self.context.ast_position(cell, node), message, **extra)

    def report_at(self, cell: Cell, position: tuple[int, int, int, int], message: str, **extra) -> None:
        """A finding at a ``(line, column, end_line, end_column)`` of ``cell``."""
        self.context.report(self, position, message, cell=cell, **extra)
