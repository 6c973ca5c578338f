"""What names stand for: the one resolver every rule asks.

A name may be bound by an import in this cell, in an earlier cell, or in the live
namespace of a kernel (``it = itertools`` run before a ``%%guard`` cell).  What
comes before the document is a mapping of names to qualified names
(``{"it": "itertools", "bye": "os._exit"}``, ``"?"`` for a name known to be bound
to something else); ``Facts.resolve`` (``lint.flow``) answers what a name
certainly stands for across the notebook, ``CellNames`` what it may stand for at
one place in one cell, scope by scope.  The estimator binds imports through
``import_bindings`` too.  Of kernel_guard it imports only ``userns`` (the safe reader
of a namespace): both the linter and the estimator build on it.
"""

from __future__ import annotations

import ast
import builtins
import sys
import types
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from kernel_guard.userns import class_origin, entries, function_origin, qualified_name

if TYPE_CHECKING:
    from kernel_guard.lint.context import LintContext
    from kernel_guard.source import Cell

UNKNOWN_BINDING = "?"  # bound before the document, to something that is not a module or a known function
# Unbound names that mean the builtin: ``display`` and ``get_ipython`` in a kernel;
# ``exit``/``quit`` are hidden from ``builtins`` while a kernel runs a cell.
BUILTIN_NAMES = frozenset(dir(builtins)) | {"display", "get_ipython", "exit", "quit"}
# Builtins' names IPython binds in every user namespace to its own stand-ins for them.
_IPYTHON_OWN = frozenset({"exit", "quit", "open", "get_ipython"})

# Modules whose functions users reach through a public one: ``os.kill`` says it is
# ``posix.kill``, ``display`` that it is ``IPython.core.display_functions.display``.
_PUBLIC = {"posix": "os", "nt": "os", "posixpath": "os.path", "ntpath": "os.path", "_signal": "signal",
           "_io": "io", "IPython.core.display_functions": "IPython.display"}
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def namespace_names(namespace: Mapping[str, object]) -> dict[str, str]:
    """The qualified name of each module, function and class of a live namespace
    (``{"np": "numpy"}``), and ``"?"`` for a builtin's name bound to anything else.

    Read through ``kernel_guard.userns``, the one safe reader of a user's namespace:
    no user code runs."""
    known = {}
    for name, value in entries(namespace).items():
        if name.startswith("_") or not name.isidentifier() or name in _IPYTHON_OWN:
            continue
        target = _qualified(value)
        if target is not None:
            known[name] = target
        elif name in BUILTIN_NAMES:
            known[name] = UNKNOWN_BINDING
    return known


def _qualified(value: object) -> str | None:
    if type(value) is types.ModuleType or qualified_name(value) is None:
        return qualified_name(value)  # a module's name, or None: hidden, unreadable, not a name
    origin = function_origin(value) or class_origin(value)
    if origin is None:
        return None
    module, qualname = origin
    return f"{_public(module, qualname, value)}.{qualname}"


def _public(module: str, qualname: str, value: object) -> str:
    """The public module that holds ``value`` under its name (by identity), else ``module``."""
    public = _PUBLIC.get(module)
    loaded = sys.modules.get(public) if public else None
    if type(loaded) is types.ModuleType and vars(loaded).get(qualname) is value:
        return public  # type: ignore[return-value]
    return module


def import_bindings(node: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, str]]:
    """``(name, qualified name)`` for each name an import binds; a relative import's
    starts with dots (``from . import x``: ``".x"``)."""
    for alias in node.names:
        if isinstance(node, ast.Import):
            if alias.asname:
                yield alias.asname, alias.name
            else:
                name = alias.name.split(".")[0]
                yield name, name
        elif alias.name != "*":
            module = "." * node.level + (f"{node.module}." if node.module else "")
            yield alias.asname or alias.name, f"{module}{alias.name}"


def carry_imports(known: dict[str, str], tree: ast.Module) -> None:
    """Update ``known`` (what names stand for before a cell) with a cell that ran:
    its module-level imports (also under top-level ``if``/``try``) bind, any other
    module-level binding forgets the name."""
    stack = list(tree.body)
    while stack:
        node = stack.pop(0)
        if type(node) is ast.Import or (type(node) is ast.ImportFrom and node.module != "__future__"):
            for name, target in import_bindings(node):
                if target.startswith("."):  # relative to a package the kernel does not know
                    known.pop(name, None)
                else:
                    known[name] = target
        elif isinstance(node, (ast.If, ast.Try)):
            stack[:0] = [*node.body, *node.orelse, *(s for h in getattr(node, "handlers", []) for s in h.body)]
        else:
            for name in _module_bindings(node):
                known.pop(name, None)


def _module_bindings(node: ast.stmt) -> Iterator[str]:
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


def cell_text(source: str, known: Mapping[str, str]) -> str:
    """A cell's source followed by what its names bound earlier stand for: a text
    test for ``os._exit`` also finds ``bye(1)`` after ``from os import _exit as bye``."""
    return source + "".join(f"\n{target}" for name, target in known.items() if name in source)


def cell_names(context: LintContext, cell: Cell, tree: ast.Module) -> CellNames:
    """The resolver for the cell being visited, shared by the rules that ask."""
    names = context.shared((CellNames, id(cell)), lambda: CellNames(tree, dict(context.known)))
    assert isinstance(names, CellNames)
    return names


class CellNames:
    """Every qualified name an expression of one cell may stand for, following
    Python's scopes: the innermost scope binding a name decides, classes are not
    seen from their methods, ``global`` goes to the module.  At module level the
    names bound before the cell (``known``) count as bindings too.  A module-level
    binding that is not an import stands for the bare name, one in a function for
    ``<locals>.name`` (never a library's).  Not flow-sensitive: every binding in a
    scope counts, wherever it is, so rules that fire on any of them err towards
    the library function."""

    def __init__(self, tree: ast.Module, known: Mapping[str, str]) -> None:
        self._known = known
        self._bindings: dict[ast.AST, dict[str, set[str]]] = {tree: {}}
        self._parents: dict[ast.AST, ast.AST | None] = {tree: None}
        self._globals: dict[ast.AST, set[str]] = {}
        self._scope_of: dict[int, ast.AST] = {}  # id(Name load) -> its scope
        self._module = tree
        self._walk(tree.body, tree)

    # -- building -------------------------------------------------------------------

    def _bind(self, scope: ast.AST, name: str, target: str | None = None) -> None:
        if name in self._globals.get(scope, ()):
            scope = self._module
        if target is None:
            target = name if scope is self._module else f"<locals>.{name}"
        self._bindings[scope].setdefault(name, set()).add(target)

    def _open(self, node: ast.AST, parent: ast.AST) -> ast.AST:
        self._bindings[node] = {}
        self._parents[node] = parent
        return node

    def _walk(self, nodes: list, scope: ast.AST) -> None:
        stack = [(node, scope) for node in reversed(nodes)]
        while stack:
            node, scope = stack.pop()
            later: list[tuple[ast.AST, ast.AST]] = []
            kind = type(node)
            if kind is ast.Name:
                if type(node.ctx) is ast.Load:
                    self._scope_of[id(node)] = scope
                else:
                    self._bind(scope, node.id)
                continue
            if kind in (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda):
                if kind is not ast.Lambda:
                    self._bind(scope, node.name)
                args = node.args
                outer = [*getattr(node, "decorator_list", []), *args.defaults, *(d for d in args.kw_defaults if d)]
                if kind is not ast.Lambda and node.returns:
                    outer.append(node.returns)
                inner = self._open(node, scope)
                for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
                    if arg is not None:
                        self._bind(inner, arg.arg)
                        if arg.annotation:
                            outer.append(arg.annotation)
                body = [node.body] if kind is ast.Lambda else node.body
                later = [*((n, scope) for n in outer), *((n, inner) for n in body)]
            elif kind is ast.ClassDef:
                self._bind(scope, node.name)
                inner = self._open(node, scope)
                outer = [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]
                later = [*((n, scope) for n in outer), *((n, inner) for n in node.body)]
            elif kind in _COMPREHENSIONS:
                inner = self._open(node, scope)
                first, *rest = node.generators
                later = [(first.iter, scope), (first.target, inner), *((n, inner) for n in first.ifs)]
                for generator in rest:
                    later.extend((n, inner) for n in (generator.iter, generator.target, *generator.ifs))
                elements = [node.key, node.value] if kind is ast.DictComp else [node.elt]
                later.extend((n, inner) for n in elements)
            else:
                if kind is ast.Import or kind is ast.ImportFrom:
                    for name, target in import_bindings(node):
                        self._bind(scope, name, target)
                elif kind is ast.Global:
                    self._globals.setdefault(scope, set()).update(node.names)
                elif (kind is ast.ExceptHandler or kind in (ast.MatchAs, ast.MatchStar)) and node.name:
                    self._bind(scope, node.name)
                elif kind is ast.MatchMapping and node.rest:
                    self._bind(scope, node.rest)
                later = [(child, scope) for child in ast.iter_child_nodes(node)]
            stack.extend(reversed(later))

    # -- queries --------------------------------------------------------------------

    def names(self, node: ast.AST) -> set[str]:
        """What ``node`` may stand for: ``{"os._exit"}`` for ``bye`` after
        ``from os import _exit as bye``; empty when nothing is known."""
        attributes = []
        while type(node) is ast.Attribute:  # a loop, not recursion: chains may be thousands long
            attributes.append(node.attr)
            node = node.value
        if type(node) is not ast.Name or id(node) not in self._scope_of:
            return set()
        suffix = "".join(f".{attribute}" for attribute in reversed(attributes))
        return {base + suffix for base in self._lookup(node.id, self._scope_of[id(node)])}

    def _lookup(self, name: str, scope: ast.AST) -> set[str]:
        if name in self._globals.get(scope, ()):
            scope = self._module
        start: ast.AST | None = scope
        current: ast.AST | None = scope
        while current is not None:
            if current is self._module:
                found = set(self._bindings[current].get(name, ()))
                target = self._known.get(name)
                if target is not None and target != UNKNOWN_BINDING:
                    found.add(target)
                if found or name in self._known:
                    return found
                return {f"builtins.{name}"} if name in BUILTIN_NAMES else set()
            if name in self._bindings[current] and (current is start or type(current) is not ast.ClassDef):
                return set(self._bindings[current][name])
            current = self._parents[current]
        return set()
