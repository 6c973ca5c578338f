"""The rule base class: one class per rule, Fixit-style.

A rule is a libcst ``BatchableCSTVisitor``; all rules that may fire on a cell visit
it in one batched traversal.  Its class docstring is its documentation (*What it
does / Why is this bad? / Example / Use instead*), and its ``VALID``/``INVALID``
examples are run by the test suite.

Paying only where a rule can fire: a cell is parsed with libcst only when its
text contains one of the ``triggers`` of an enabled rule; metadata providers are
resolved only for the rules visiting that cell.  Rules that need every cell
(cross-cell facts) override ``visit_cell``, which sees the cheap stdlib ``ast``
of every cell, and ``end_document``.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import libcst as cst
from libcst.metadata import QualifiedNameProvider

if TYPE_CHECKING:
    from kernel_guard.lint.context import LintContext
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


class Rule(cst.BatchableCSTVisitor):
    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    severity: ClassVar[str] = "warning"
    # Substrings one of which must occur in a cell for the libcst visit to run;
    # None means the rule never visits libcst trees (it uses visit_cell only).
    triggers: ClassVar[tuple[str, ...] | None] = ()
    # Examples: a cell, a notebook (a tuple of cells) or a ``Case``.
    VALID: ClassVar[list[str | tuple[str, ...] | Case]] = []
    INVALID: ClassVar[list[str | tuple[str, ...] | Case]] = []

    def __init__(self, context: LintContext) -> None:
        super().__init__()
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
        """Called for every parsable cell, in order, before any libcst visit."""

    def end_document(self) -> None:
        """Called once after the last cell: report cross-cell findings here."""

    def report(self, node: cst.CSTNode, message: str, **extra) -> None:
        """A finding at ``node`` in the cell being visited."""
        self.context.report(self, self.context.position(node), message, **extra)

    def report_at(self, cell: Cell, position: tuple[int, int, int, int], message: str, **extra) -> None:
        """A finding at a ``(line, column, end_line, end_column)`` of ``cell``."""
        self.context.report(self, position, message, cell=cell, **extra)

    def qualified_names(self, node: cst.CSTNode) -> set[str]:
        """What ``node`` names after imports and aliases (``bye`` -> ``os._exit``).

        Rules calling this must list ``QualifiedNameProvider`` in
        ``METADATA_DEPENDENCIES``."""
        return {q.name for q in self.get_metadata(QualifiedNameProvider, node, set())}
