"""Paths through a function body, for the recursion rules (KG3).

The idea is SonarSource's: walk the function's control flow from its entry; a
path *recurses* when it reaches a call back into the recursion (the function
itself, or any function of a mutually recursive cycle) in a position that is
always evaluated; a path that reaches ``return``, ``raise``, the end of the
body, or a call that may raise on purpose before recursing is a *base case*.
A function without base case can only recurse forever.

Each path carries the ``if`` tests it passed (with their outcome), so that the
rules can ask under which values of a parameter the function stops, and which
call it makes otherwise.  Paths through loops, ``try``, ``with`` and ``match``
are marked *complex*: their conditions are not tracked.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

Path = tuple[tuple[ast.expr, bool], ...]
_MAX_PATHS = 64


class Paths:
    """The base cases and recursive calls of one function body."""

    def __init__(
        self,
        function: ast.FunctionDef,
        is_recursive: Callable[[ast.AST], bool],
        may_leave: Callable[[ast.Call], bool],
    ) -> None:
        self._is_recursive = is_recursive
        self._may_leave = may_leave
        self.exits: list[Path] = []  # conditions of each base case
        self.recursions: list[tuple[Path, ast.AST]] = []  # conditions and first recursive node of each path
        self.complex = False  # some path went through a loop, try, with or match, or had too many branches
        fall, _, _ = self._block(function.body, [()])
        self._exit(fall)

    @property
    def has_base_case(self) -> bool:
        return bool(self.exits)

    # -- statements -----------------------------------------------------------

    def _block(self, statements, paths):
        fall, breaks, continues = paths, [], []
        for statement in statements:
            if not fall:
                break
            fall, more_breaks, more_continues = self._statement(statement, fall)
            breaks += more_breaks
            continues += more_continues
        return fall, breaks, continues

    def _statement(self, statement, paths):
        kind = type(statement)
        if kind in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef):
            return paths, [], []
        if kind is ast.Return:
            self._return(statement.value, paths)
            return [], [], []
        if kind is ast.Raise:
            self._exit(paths)
            return [], [], []
        if kind is ast.Break:
            return [], paths, []
        if kind is ast.Continue:
            return [], [], paths
        if kind is ast.If:
            if self._recurses(statement.test, paths):
                return [], [], []
            body = self._block(statement.body, self._branch(paths, statement.test, True))
            orelse = self._block(statement.orelse, self._branch(paths, statement.test, False))
            return tuple(a + b for a, b in zip(body, orelse))
        if kind is ast.Assert:
            if self._recurses(statement.test, paths):
                return [], [], []
            self._exit(self._branch(paths, statement.test, False))
            return self._branch(paths, statement.test, True), [], []
        if kind in (ast.For, ast.AsyncFor, ast.While):
            return self._loop(statement, paths)
        if kind in (ast.Try, getattr(ast, "TryStar", ast.Try)):
            return self._try(statement, paths)
        if kind in (ast.With, ast.AsyncWith):
            self.complex = True
            if any(self._recurses(item.context_expr, paths) for item in statement.items):
                return [], [], []
            fall, breaks, continues = self._block(statement.body, paths)
            return paths + fall, breaks, continues  # a context manager may swallow what the body raised
        if kind is getattr(ast, "Match", None):
            self.complex = True
            if self._recurses(statement.subject, paths):
                return [], [], []
            fall, breaks, continues = list(paths), [], []
            for case in statement.cases:
                case_fall, case_breaks, case_continues = self._block(case.body, paths)
                fall += case_fall
                breaks += case_breaks
                continues += case_continues
            return fall, breaks, continues
        if self._recurses(statement, paths):
            return [], [], []
        return paths, [], []

    def _return(self, value, paths) -> None:
        """``return a if test else b`` is read as ``if test: return a`` / ``else: return b``."""
        if isinstance(value, ast.IfExp):
            if not self._recurses(value.test, paths):
                self._return(value.body, self._branch(paths, value.test, True))
                self._return(value.orelse, self._branch(paths, value.test, False))
        elif value is None or not self._recurses(value, paths):
            self._exit(paths)

    def _loop(self, loop, paths):
        self.complex = True
        head = loop.test if isinstance(loop, ast.While) else loop.iter
        if self._recurses(head, paths):
            return [], [], []
        fall, breaks, continues = self._block(loop.body, paths)
        forever = isinstance(loop, ast.While) and isinstance(loop.test, ast.Constant) and loop.test.value
        done = [] if forever else paths + fall + continues  # the loop may also run zero times
        else_fall, else_breaks, else_continues = self._block(loop.orelse, done)
        return else_fall + breaks, else_breaks, else_continues

    def _try(self, statement, paths):
        self.complex = True
        fall, breaks, continues = self._block(statement.body, paths)
        for handler in statement.handlers:  # anything in the body may raise before it recursed
            more = self._block(handler.body, paths)
            fall, breaks, continues = fall + more[0], breaks + more[1], continues + more[2]
        else_fall, else_breaks, else_continues = (
            self._block(statement.orelse, fall) if statement.orelse else (fall, [], [])
        )
        fall, breaks, continues = else_fall, breaks + else_breaks, continues + else_continues
        if statement.finalbody:
            self._block(statement.finalbody, paths)  # its own exits count; it runs on every path
            fall = self._block(statement.finalbody, fall)[0]
        return fall, breaks, continues

    # -- paths ----------------------------------------------------------------

    def _branch(self, paths, test, outcome):
        if self.complex or len(paths) > _MAX_PATHS:
            self.complex = True
            return paths
        return [path + ((test, outcome),) for path in paths]

    def _exit(self, paths) -> None:
        self.exits.extend(paths)

    def _recurses(self, node: ast.AST, paths) -> bool:
        """Whether evaluating ``node`` certainly recurses; calls that may leave on
        purpose before it are base cases of the current paths."""
        if any(
            isinstance(sub, ast.Call) and self._may_leave(sub) and not self._is_recursive(sub) for sub in _run(node)
        ):
            self.complex = True
            self._exit(paths)
        found = self._definite(node)
        if found is not None:
            self.recursions.extend((path, found) for path in paths)
            return True
        return False

    def _definite(self, node: ast.AST) -> ast.AST | None:
        """The first recursive node always evaluated with ``node``, if any."""
        if self._is_recursive(node):
            return node
        if isinstance(node, (ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return None
        if isinstance(node, ast.BoolOp):
            return self._definite(node.values[0])
        if isinstance(node, ast.IfExp):
            return self._definite(node.test)
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return self._definite(node.generators[0].iter)
        for child in ast.iter_child_nodes(node):
            found = self._definite(child)
            if found is not None:
                return found
        return None


def _run(node: ast.AST):
    """``node`` and what runs with it (lambdas and nested definitions excluded)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        for child in ast.iter_child_nodes(current):
            if not isinstance(child, (ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                stack.append(child)
