"""An abstract interpreter that follows a notebook cell by cell and records the
numpy arrays it allocates.

It never executes anything: statements are walked once, names are bound to
abstract values (``abstract``), numpy calls are looked up in the signature
table, loops are walked once with their trip count on a stack so that arrays
kept across iterations count as many times as they are kept.
"""

from __future__ import annotations

import ast
import builtins
from typing import Mapping

import numpy as np

from kernel_guard.estimator import namespace as ns_reader
from kernel_guard.estimator import shapes
from kernel_guard.estimator.abstract import (
    INFINITE,
    NEW,
    OPAQUE,
    Array,
    Container,
    Instance,
    Loop,
    Method,
    Ref,
    Site,
    Sized,
    UserFunction,
)
from kernel_guard.estimator.dtypes import NAMED, as_dtype
from kernel_guard.estimator.results import Allocation, Growth, LiveOver
from kernel_guard.estimator.signatures import (
    ARITHMETIC,
    SIGNATURES,
    UFUNCS,
    array_of,
    new,
    ufunc_call,
)
from kernel_guard.estimator.values import BUILTINS, UNKNOWN, Folder, is_constant

_BUILTIN_NAMES = frozenset(dir(builtins))
_MISSING = object()
_MAX_CALL_DEPTH = 3

# Calls whose trip count is their first argument's (``for i, x in enumerate(xs)``).
_PASS_THROUGH = frozenset(
    {
        "builtins.enumerate",
        "builtins.reversed",
        "builtins.sorted",
        "builtins.iter",
        "builtins.list",
        "builtins.tuple",
        "tqdm.tqdm",
        "tqdm.auto.tqdm",
        "tqdm.notebook.tqdm",
        "tqdm.std.tqdm",
    }
)
_TRANGE = frozenset({"tqdm.trange", "tqdm.auto.trange", "tqdm.notebook.trange", "tqdm.std.trange"})
# Calls after which nothing more of the cell runs.
_EXIT_CALLS = frozenset({"sys.exit", "builtins.exit", "builtins.quit", "os._exit", "os.abort"})
# Statements and expressions that leave a loop whatever surrounds them.
_LEAVING = (ast.Return, ast.Raise, ast.Assert, ast.Yield, ast.YieldFrom, ast.Await)
# Calls (by their last name) that exit, or conventionally end a loop by raising:
# StopIteration (next), EOFError (input), IndexError/KeyError (pop), queue.Empty...
_LEAVING_CALLS = frozenset(
    {"exit", "_exit", "quit", "abort", "terminate", "next", "__next__", "send", "throw", "run", "get_next",
     "load", "input", "raw_input", "pop", "popleft", "popitem", "get_nowait", "recv", "raise_for_status",
     "result", "check_returncode"}
)
# numpy calls that rebuild an array from itself plus more (``a = np.append(a, x)``).
_REBUILDERS = frozenset(
    {"numpy.append", "numpy.concatenate", "numpy.vstack", "numpy.hstack", "numpy.stack", "numpy.column_stack"}
)
# Names a star import of numpy provides besides the signature table and dtypes.
_REFS = frozenset({"numpy.random", "numpy.dtype", "numpy.linalg"})
# Module attributes that are plain constants.
_CONSTANTS = {"numpy.newaxis": None, "numpy.pi": np.pi, "numpy.e": np.e, "numpy.inf": np.inf, "numpy.nan": np.nan}
_GROWTH_METHODS = frozenset({"append", "appendleft", "extend", "extendleft", "insert", "add", "update", "setdefault"})


class _Order(ast.NodeVisitor):
    """Names in execution order: which a loop body reads before it rebinds them."""

    def __init__(self) -> None:
        self.first: dict[str, str] = {}
        self.assigned: set[str] = set()  # rebound by plain assignment (not ``+=``)
        self.stored: set[str] = set()

    def _store(self, name: str, plain: bool = True) -> None:
        self.first.setdefault(name, "store")
        self.stored.add(name)
        if plain:
            self.assigned.add(name)

    def visit_Name(self, node: ast.Name) -> None:
        if type(node.ctx) is ast.Load:
            self.first.setdefault(node.id, "load")
        else:
            self._store(node.id)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self.visit(target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if type(node.target) is ast.Name:
            self.first.setdefault(node.target.id, "load")
            self.visit(node.value)
            self._store(node.target.id, plain=False)
        else:
            self.visit(node.value)
            self.visit(node.target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
            self.visit(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self.visit(node.target)

    def visit_For(self, node: ast.For) -> None:
        self.visit(node.iter)
        self.visit(node.target)
        for stmt in node.body + node.orelse:
            self.visit(stmt)

    visit_AsyncFor = visit_For

    def _definition(self, node) -> None:
        self._store(node.name)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _definition

    def visit_Lambda(self, node: ast.Lambda) -> None:
        pass

    def _comprehension(self, node) -> None:
        # The comprehension's own variables are local to it: only its iterables
        # and the names read in it matter here.
        for generator in node.generators:
            self.visit(generator.iter)
        local = {n.id for g in node.generators for n in ast.walk(g.target) if type(n) is ast.Name}
        for child in ast.walk(node):
            if type(child) is ast.Name and type(child.ctx) is ast.Load and child.id not in local:
                self.first.setdefault(child.id, "load")

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            self._store((alias.asname or alias.name).partition(".")[0])

    visit_ImportFrom = visit_Import


class _Stop(Exception):
    """The rest of the block does not run: a ``return``, a ``raise``, an exit."""


def _loop_names(node: ast.For | ast.While) -> _Order:
    order = _Order()
    if type(node) is ast.While:
        order.visit(node.test)
    for stmt in node.body:
        order.visit(stmt)
    return order


def _names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if type(n) is ast.Name}


class Program(Folder):
    """Abstract interpreter state for a notebook or kernel session, fed cell by cell.

    ``namespace`` (a kernel's ``user_ns``) supplies values for names the cells
    do not bind; it is read through ``namespace.read`` only.
    """

    _METHODS = {
        **Folder._METHODS,
        ast.Attribute: "attribute",
        ast.ListComp: "comprehension",
        ast.SetComp: "comprehension",
        ast.DictComp: "comprehension",
        ast.GeneratorExp: "comprehension",
        ast.Dict: "dict_display",
        ast.Set: "set_display",
        ast.NamedExpr: "namedexpr",
        ast.Lambda: "lambda_",
    }

    _STATEMENTS = {
        ast.Expr: "s_expr",
        ast.Assign: "s_assign",
        ast.AnnAssign: "s_annassign",
        ast.AugAssign: "s_augassign",
        ast.Delete: "s_delete",
        ast.Import: "s_import",
        ast.ImportFrom: "s_importfrom",
        ast.If: "s_if",
        ast.For: "s_for",
        ast.AsyncFor: "s_for",
        ast.While: "s_while",
        ast.With: "s_with",
        ast.AsyncWith: "s_with",
        ast.Try: "s_try",
        ast.FunctionDef: "s_def",
        ast.AsyncFunctionDef: "s_def",
        ast.ClassDef: "s_class",
        ast.Return: "s_return",
        ast.Raise: "s_raise",
        ast.Match: "s_match",
    }
    if hasattr(ast, "TryStar"):
        _STATEMENTS[ast.TryStar] = "s_try"

    def __init__(self, namespace: Mapping | None = None, *, live_budget: int | None = None):
        super().__init__(self._lookup)
        self.namespace = namespace
        self.live_budget = live_budget
        self.globals: dict[str, object] = {}
        self.bindings = self.globals  # the innermost scope being interpreted
        self.loops: list[Loop] = []
        self.growth: list[Growth] = []
        # With a live_budget: the points of the last run where the arrays kept
        # alive went over it, none of them over it alone.
        self.live_over: list[LiveOver] = []
        self._over = False
        self._sites: list[Site] = []
        self._star_modules: list[str] = []
        self._read_cache: dict[str, object] = {}
        self._active: list[UserFunction] = []
        self._returns: list[object] | None = None
        self._try_depth = 0
        self._quiet = 0
        self._current: ast.AST | None = None
        # While a user function runs: the call in the code being run, where its
        # allocations are reported (the def may be in another cell).
        self._anchor: ast.AST | None = None
        self._lines: list[str] | None = None
        self._grown: set[int] = set()

    # -- public ------------------------------------------------------------------

    def run(self, tree: ast.Module, source: str | None = None) -> list[Allocation]:
        """Interpret one cell in order; return the allocations it makes.

        ``source`` (the text ``tree`` was parsed from) gives each allocation's
        ``expr`` its original spelling; without it the expression is unparsed.
        """
        self._sites = []
        self._lines = source.splitlines() if source is not None else None
        self.live_over = []
        for stmt in tree.body:
            made = len(self._sites)
            try:
                self.exec_stmt(stmt)
            except _Stop:
                break  # the cell raises here: what follows does not run
            finally:
                if self.live_budget is not None and len(self._sites) > made:
                    self._check_live(self._sites[-1])
        reachable = {id(site) for site in self._reachable()}
        allocations = [self._allocation(site, id(site) in reachable) for site in self._sites]
        self._lines = None
        return allocations

    def _check_live(self, last: Site) -> None:
        # Arrays over the budget on their own are reported alone: not counted here.
        sizes = [site.nbytes * site.count for site in self._reachable()]
        total = sum(size for size in sizes if size <= self.live_budget)
        over = total > self.live_budget
        if over and not self._over:
            arrays = [(name, size) for name, size in self.live_arrays() if size <= self.live_budget]
            self.live_over.append(LiveOver(self._allocation(last, True), total, arrays))
        self._over = over

    @property
    def live_nbytes(self) -> int:
        """Bytes of the arrays the interpreted code keeps bound right now."""
        return sum(site.nbytes * site.count for site in self._reachable())

    def live_arrays(self) -> list[tuple[str, int]]:
        """(name, bytes) of the names bound to arrays made by interpreted code, largest first."""
        result = []
        for name, value in self.globals.items():
            total = sum(site.nbytes * site.count for site in self._reachable([value]))
            if total:
                result.append((name, total))
        return sorted(result, key=lambda item: -item[1])

    # -- bookkeeping -------------------------------------------------------------

    def _reachable(self, roots=None) -> list[Site]:
        found: dict[int, Site] = {}
        seen: set[int] = set()
        stack = list(self.globals.values() if roots is None else roots)
        while stack:
            value = stack.pop()
            kind = type(value)
            if kind is Array:
                if type(value.site) is Site:
                    found[id(value.site)] = value.site
            elif kind in (tuple, list):
                stack.extend(value)
            elif kind is Container and id(value) not in seen:
                seen.add(id(value))
                stack.extend(item for item, _ in value.items)
        return list(found.values())

    def _position(self, node: ast.AST) -> tuple[int, int, int, int, str]:
        line, end_line = node.lineno, node.end_lineno or node.lineno
        col, end_col = node.col_offset, node.end_col_offset or node.col_offset
        lines = self._lines
        if lines is not None and end_line <= len(lines):
            first, last = lines[line - 1], lines[end_line - 1]
            if not first.isascii():
                col = len(first.encode()[:col].decode(errors="replace"))
            if not last.isascii():
                end_col = len(last.encode()[:end_col].decode(errors="replace"))
            if line == end_line:
                expr = first[col:end_col]
            else:
                expr = "\n".join([first[col:], *lines[line : end_line - 1], last[:end_col]])
        else:
            expr = ast.unparse(node)
        return line, col + 1, end_line, end_col + 1, expr

    def _allocation(self, site: Site, kept: bool) -> Allocation:
        line, col, end_line, end_col, expr = self._position(site.node)
        return Allocation(
            line=line,
            col=col,
            end_line=end_line,
            end_col=end_col,
            expr=expr,
            shape=site.shape,
            dtype=site.dtype.name,
            nbytes=site.nbytes,
            count=site.count,
            kept=kept,
            unbounded=site.unbounded,
        )

    def allocate(self, value: object, node: ast.AST | None = None) -> object:
        """Give every ``NEW`` array in ``value`` its site (recorded unless quiet)."""
        if type(value) is Array and value.site is NEW:
            if value.shape is None or value.dtype is None:
                value.site = None
            else:
                site = Site(self._anchor or node or self._current, value.shape, value.dtype, tuple(self.loops))
                value.site = site
                if not self._quiet:
                    self._sites.append(site)
        elif type(value) is tuple:
            for item in value:
                self.allocate(item, node)
        return value

    def _record_growth(self, node: ast.AST, target: str, nbytes: int = 0) -> None:
        node = self._anchor or node
        if id(node) in self._grown or self._quiet:
            return
        self._grown.add(id(node))
        line, col, end_line, end_col, expr = self._position(node)
        self.growth.append(Growth(line, col, end_line, end_col, expr, target, nbytes))

    # -- names -------------------------------------------------------------------

    def _lookup(self, name: str) -> object:
        value = self.bindings.get(name, _MISSING)
        if value is _MISSING and self.bindings is not self.globals:
            value = self.globals.get(name, _MISSING)
        if value is not _MISSING:
            return value
        if self.namespace is not None:
            if name in self._read_cache:
                return self._read_cache[name]
            if name in self.namespace:
                value = self._read_cache[name] = ns_reader.read(self.namespace[name])
                return value
        for module in self._star_modules:
            qualname = f"{module}.{name}"
            if qualname in _CONSTANTS:
                return _CONSTANTS[qualname]
            if qualname in SIGNATURES or qualname in UFUNCS or qualname in NAMED or qualname in _REFS:
                return Ref(qualname)
        if name in _BUILTIN_NAMES:
            return Ref(f"builtins.{name}")
        return UNKNOWN

    def bind(self, name: str, value: object) -> None:
        self.bindings[name] = self._as_stored(value)

    def _as_stored(self, value: object) -> object:
        """Lists become containers when bound, so that appends are followed."""
        if type(value) is list:
            const = value if all(is_constant(v) for v in value) else None
            return Container(
                "list",
                tuple(self.loops),
                [(v, 1) for v in value],
                None if const is None else list(const),
                len(value),
            )
        return value

    def unwrap(self, value: object) -> object:
        if type(value) is Container:
            return UNKNOWN if value.const is None else value.const
        if type(value) is Sized:
            return UNKNOWN
        return value

    # -- statements --------------------------------------------------------------

    def exec_block(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            self.exec_stmt(stmt)

    def exec_stmt(self, stmt: ast.stmt) -> None:
        method = self._STATEMENTS.get(type(stmt))
        if method is None:
            return
        try:
            getattr(self, method)(stmt)
        except (ArithmeticError, ValueError, TypeError, IndexError, KeyError, RecursionError, AttributeError):
            # An estimate is best effort: a construct we mis-handle must not
            # break the guard. Names the statement binds become unknown.
            for node in ast.walk(stmt):
                if type(node) is ast.Name and type(node.ctx) is ast.Store:
                    self.bindings[node.id] = UNKNOWN

    def s_expr(self, stmt: ast.Expr) -> None:
        self.value(stmt.value)

    def s_assign(self, stmt: ast.Assign) -> None:
        value = self.value(stmt.value)
        self._check_rebuild(stmt.targets, stmt.value)
        for target in stmt.targets:
            self.assign(target, value)

    def s_annassign(self, stmt: ast.AnnAssign) -> None:
        if stmt.value is not None:
            self.assign(stmt.target, self.value(stmt.value))

    def s_augassign(self, stmt: ast.AugAssign) -> None:
        value = self.value(stmt.value)
        target = stmt.target
        if type(target) is not ast.Name:
            self.value(target.value)
            return
        current = self._lookup(target.id)
        if type(current) is Container:
            if type(stmt.op) in (ast.Add, ast.BitOr):
                self._extend(current, value, stmt, target.id)
            return
        if type(current) is Array:
            return  # in place: numpy writes into the existing buffer
        self.bind(target.id, self.value_of_binop(stmt.op, current, value, stmt))

    def s_delete(self, stmt: ast.Delete) -> None:
        for target in stmt.targets:
            if type(target) is ast.Name:
                self.bindings[target.id] = UNKNOWN

    def s_import(self, stmt: ast.Import) -> None:
        for alias in stmt.names:
            if alias.asname:
                self.bind(alias.asname, Ref(alias.name))
            else:
                top = alias.name.partition(".")[0]
                self.bind(top, Ref(top))

    def s_importfrom(self, stmt: ast.ImportFrom) -> None:
        if stmt.level or not stmt.module:
            for alias in stmt.names:
                self.bind(alias.asname or alias.name, OPAQUE)
            return
        for alias in stmt.names:
            if alias.name == "*":
                self._star_modules.append(stmt.module)
            else:
                self.bind(alias.asname or alias.name, Ref(f"{stmt.module}.{alias.name}"))

    def s_if(self, stmt: ast.If) -> None:
        test = self.unwrap(self.value(stmt.test))
        if is_constant(test):
            self.exec_block(stmt.body if test else stmt.orelse)
            return
        self._branches([stmt.body, stmt.orelse])

    def _branches(self, blocks: list[list[ast.stmt]]) -> None:
        """Blocks of which one runs: bindings that differ between the blocks that
        complete become unknown; if none completes, neither does the statement."""
        before = dict(self.bindings)
        outcomes = []
        for block in blocks:
            self.bindings.clear()
            self.bindings.update(before)
            try:
                self.exec_block(block)
            except _Stop:
                continue
            outcomes.append(dict(self.bindings))
        if not outcomes:
            raise _Stop
        merged: dict[str, object] = {}
        for name in set().union(*outcomes):
            values = [o[name] for o in outcomes if name in o]
            first = values[0]
            same = all(v is first or (is_constant(v) and type(v) is type(first) and v == first) for v in values)
            merged[name] = first if same else UNKNOWN
        self.bindings.clear()
        self.bindings.update(merged)

    def s_match(self, stmt: ast.Match) -> None:
        self.value(stmt.subject)
        self._branches([case.body for case in stmt.cases] + [[]])

    def s_with(self, stmt: ast.With) -> None:
        for item in stmt.items:
            self.value(item.context_expr)
            if item.optional_vars is not None:
                self.assign(item.optional_vars, UNKNOWN)
        self.exec_block(stmt.body)

    def s_try(self, stmt: ast.Try) -> None:
        """The body completes, or one of the handlers runs instead."""
        for handler in stmt.handlers:
            if handler.name:
                self.bind(handler.name, OPAQUE)
        self._try_depth += 1
        try:
            self._branches([stmt.body + stmt.orelse] + [handler.body for handler in stmt.handlers])
        finally:
            self._try_depth -= 1
            self.exec_block(stmt.finalbody)

    def s_raise(self, stmt: ast.Raise) -> None:
        raise _Stop

    def s_def(self, stmt: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if type(stmt) is ast.AsyncFunctionDef or stmt.decorator_list:
            self.bind(stmt.name, OPAQUE)  # calling it does not run the body as written
            return
        self.bind(stmt.name, self._function(stmt))

    def _function(self, node: ast.FunctionDef | ast.Lambda) -> UserFunction:
        args = node.args
        defaults = tuple(self.value(d) for d in args.defaults)
        kw_defaults = {
            a.arg: self.value(d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None
        }
        return UserFunction(node, defaults, kw_defaults)

    def s_class(self, stmt: ast.ClassDef) -> None:
        self.bind(stmt.name, OPAQUE)

    def s_return(self, stmt: ast.Return) -> None:
        value = None if stmt.value is None else self.value(stmt.value)
        if self._returns is not None:
            self._returns.append(value)
            raise _Stop

    # -- loops -------------------------------------------------------------------

    def s_for(self, stmt: ast.For) -> None:
        iterable = self.value(stmt.iter)
        self._quiet += 1
        try:
            trip = self._trip(stmt.iter, iterable)
        finally:
            self._quiet -= 1
        if trip == 0:
            self.exec_block(stmt.orelse)
            return
        if trip is INFINITE and self._has_exit(stmt):
            trip = None
        order = self._forget_carried(stmt)
        self.assign(stmt.target, self._element(iterable))
        self._loop(Loop(trip, frozenset(order.stored)), stmt.body)
        if trip is not INFINITE:
            self.exec_block(stmt.orelse)

    def s_while(self, stmt: ast.While) -> None:
        order = self._forget_carried(stmt)
        test = self.unwrap(self.value(stmt.test))
        if is_constant(test) and not test:
            self.exec_block(stmt.orelse)
            return
        trip = INFINITE if is_constant(test) and not self._has_exit(stmt) else None
        self._loop(Loop(trip, frozenset(order.stored)), stmt.body)
        if trip is not INFINITE:
            self.exec_block(stmt.orelse)

    def _loop(self, loop: Loop, body: list[ast.stmt]) -> None:
        self.loops.append(loop)
        try:
            self.exec_block(body)
        except _Stop:
            if loop.trip is not None:
                raise  # the first iteration stops it all
            # maybe no iteration at all: what follows the loop may still run
        finally:
            self.loops.pop()

    def _forget_carried(self, stmt: ast.For | ast.While) -> _Order:
        """Names the body reads before rebinding change from one iteration to
        the next: they are unknown inside the loop (and after it). A container
        only extended in place (``xs += [x]``) stays what it is."""
        order = _loop_names(stmt)
        for name in order.stored:
            if order.first.get(name) != "load":
                continue
            if name not in order.assigned and type(self._lookup(name)) in (Container, Array):
                continue
            self.bindings[name] = UNKNOWN
        return order

    def _has_exit(self, loop: ast.For | ast.While) -> bool:
        """Whether anything can end the loop: break, return, raise, assert, yield,
        await, calls that exit or conventionally end loops by raising (``next``,
        ``input``, ``pop``...), a function of the code that raises, or an
        enclosing ``try`` that may be stopping it. Errs towards "it can end"."""
        if self._try_depth or self._returns is not None:
            return True
        stack: list[tuple[ast.AST, bool]] = [(stmt, True) for stmt in loop.body]
        while stack:
            node, own = stack.pop()
            kind = type(node)
            if kind is ast.Break and own:
                return True
            if kind in _LEAVING:
                return True
            if kind is ast.Call and self._call_may_leave(node):
                return True
            if kind in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda):
                continue
            inner = own and kind not in (ast.For, ast.AsyncFor, ast.While)
            stack.extend((child, inner) for child in ast.iter_child_nodes(node))
        return False

    def _call_may_leave(self, call: ast.Call) -> bool:
        func = call.func
        name = func.id if type(func) is ast.Name else func.attr if type(func) is ast.Attribute else None
        if name in _LEAVING_CALLS:
            return True
        if name == "get" and any(k.arg in ("timeout", "block") for k in call.keywords):
            return True
        target = self._lookup(name) if type(func) is ast.Name else None
        if type(target) is UserFunction and type(target.node) is ast.FunctionDef:
            return any(type(n) in _LEAVING for n in ast.walk(target.node))
        return False

    def _quiet_value(self, node: ast.AST) -> object:
        self._quiet += 1
        try:
            return self.value(node)
        finally:
            self._quiet -= 1

    def _trip(self, node: ast.AST, value: object) -> int | float | None:
        """How many times a ``for`` over ``node`` (already evaluated to ``value``) iterates."""
        value = self.unwrap(value) if type(value) is not Container else value
        kind = type(value)
        if kind in (range, tuple, list, str, bytes):
            return len(value)
        if kind in (Container, Sized):
            return value.length
        if kind is Array:
            return value.shape[0] if value.shape else None
        if type(node) is not ast.Call or node.keywords and not _trange_like(node):
            return None
        func = self.value(node.func)
        if type(func) is not Ref:
            return None
        name, args = func.qualname, node.args
        if name in _PASS_THROUGH and args:
            return self._trip(args[0], self.value(args[0]))
        if name == "builtins.zip" and args:
            trips = [self._trip(arg, self.value(arg)) for arg in args]
            return None if None in trips else min(trips)
        if name in _TRANGE:
            bounds = [self.unwrap(self.value(arg)) for arg in args]
            steps = self._call_builtin("range", bounds, {})
            return len(steps) if type(steps) is range else None
        if name in ("itertools.count", "itertools.cycle"):
            return INFINITE
        if name == "itertools.repeat":
            if len(args) == 1 and not node.keywords:
                return INFINITE
            times = self.value(args[1]) if len(args) > 1 else UNKNOWN
            return times if type(times) is int else None
        return None

    def _element(self, iterable: object) -> object:
        """What the loop variable is bound to: a row view when iterating an array."""
        if type(iterable) is Array and iterable.shape:
            return Array(iterable.shape[1:], iterable.dtype, iterable.site)
        return UNKNOWN

    # -- containers and growth ----------------------------------------------------

    def _put(self, container: Container, value: object, node: ast.AST, target: str, distinct: bool) -> None:
        """``value`` goes into ``container`` (append, item store, add...)."""
        if container.bounded:
            return
        fresh = [loop for loop in self.loops if not any(loop is outer for outer in container.loops)]
        if distinct and any(loop.trip is INFINITE for loop in fresh):
            self._record_growth(node, target, sum(site.nbytes for site in self._reachable([value])))
        copies = 1
        if distinct:
            for loop in fresh:
                if type(loop.trip) is int:
                    copies *= loop.trip
            for site in self._reachable([value]):
                self._multiply(site, container)
        container.items.append((value, copies if distinct else 1))
        if not distinct:
            container.length = None
        elif container.length is not None:
            known = all(type(loop.trip) is int for loop in fresh)
            container.length = container.length + copies if known else None
        if container.const is not None:
            container.const = container.const + [value] if is_constant(value) and not fresh else None

    def _multiply(self, site: Site, container: Container) -> None:
        """A site allocated inside loops the container outlives is kept once per iteration."""
        copies = 1
        for loop in site.loops:
            if any(loop is outer for outer in container.loops):
                continue
            if loop.trip is INFINITE:
                site.unbounded = True
            elif type(loop.trip) is int:
                copies *= loop.trip
        site.count = max(site.count, copies)

    def _extend(self, container: Container, value: object, node: ast.AST, target: str) -> None:
        items = self.unwrap(value) if type(value) is Container else value
        if type(value) is Container:
            items = [item for item, _ in value.items]
        if type(items) in (tuple, list) and items:
            for item in items:
                self._put(container, item, node, target, True)
        else:
            self._put(container, UNKNOWN, node, target, True)

    def _distinct_key(self, key_node: ast.AST) -> bool:
        """Whether a store ``c[key] = v`` in a loop writes a new key each iteration."""
        if type(self.unwrap(self._quiet_value(key_node))) in (int, float, str, bool, tuple, bytes):
            stored = set().union(*(loop.stored for loop in self.loops)) if self.loops else set()
            return bool(_names_in(key_node) & stored)
        return True

    def _check_rebuild(self, targets: list[ast.expr], value_node: ast.expr) -> None:
        """``a = np.append(a, x)`` / ``xs = xs + [x]`` in a loop that never ends."""
        if not any(loop.trip is INFINITE for loop in self.loops):
            return
        for target in targets:
            if type(target) is not ast.Name or target.id not in _names_in(value_node):
                continue
            if type(value_node) is ast.Call:
                func = self._quiet_value(value_node.func)
                if type(func) is Ref and func.qualname in _REBUILDERS:
                    self._record_growth(value_node, target.id)
            elif type(value_node) is ast.BinOp and type(value_node.op) is ast.Add:
                operands = (value_node.left, value_node.right)
                if any(type(o) in (ast.List, ast.ListComp, ast.Tuple) for o in operands):
                    self._record_growth(value_node, target.id)

    # -- assignment --------------------------------------------------------------

    def assign(self, target: ast.expr, value: object) -> None:
        kind = type(target)
        if kind is ast.Name:
            self.bind(target.id, value)
        elif kind in (ast.Tuple, ast.List):
            self._unpack(target.elts, value)
        elif kind is ast.Subscript:
            owner = self.value(target.value)
            if type(owner) is Container:
                distinct = self._distinct_key(target.slice)
                self._put(owner, value, target, _target_name(target.value), distinct)
            else:
                self.value(target.slice)
        elif kind is ast.Attribute:
            self.value(target.value)
        elif kind is ast.Starred:
            self.assign(target.value, UNKNOWN)

    def _unpack(self, targets: list[ast.expr], value: object) -> None:
        count = len(targets)
        items: list[object] | None = None
        value = self.unwrap(value) if type(value) is Container else value
        if type(value) in (tuple, list) and len(value) == count:
            items = list(value)
        elif type(value) is Array and value.shape and value.shape[0] == count:
            items = [Array(value.shape[1:], value.dtype, value.site)] * count
        if any(type(t) is ast.Starred for t in targets) or items is None:
            items = [UNKNOWN] * count
        for target, item in zip(targets, items):
            self.assign(target, item)

    # -- expressions -------------------------------------------------------------

    def name(self, node: ast.Name) -> object:
        return self._lookup(node.id)

    def binop(self, node: ast.BinOp) -> object:
        left = self.visit(node.left)
        right = self.visit(node.right)
        return self.value_of_binop(node.op, left, right, node)

    def value_of_binop(self, op: ast.operator, left: object, right: object, node: ast.AST) -> object:
        if type(left) is Array or type(right) is Array:
            return self._array_op(type(op).__name__, [left, right], node)
        left, right = self.unwrap(left), self.unwrap(right)
        if left is UNKNOWN or right is UNKNOWN:
            return UNKNOWN
        return self.fold_binop(op, left, right)

    def _array_op(self, op_name: str, operands: list[object], node: ast.AST) -> object:
        if op_name == "MatMult":
            x, y = (array_of(v) for v in operands)
            if x is None or y is None:
                return UNKNOWN
            result = new(shapes.matmul(x.shape, y.shape), _matmul_dtype(x, y))
        elif op_name in ARITHMETIC:
            result = ufunc_call(ARITHMETIC[op_name], None, [self.unwrap(v) for v in operands], {})
        else:
            return UNKNOWN
        return self.allocate(result, node)

    def fold_unary(self, node: ast.UnaryOp, operand: object) -> object:
        if type(operand) is Array:
            if type(node.op) is ast.Not:
                return UNKNOWN
            return self._array_op(type(node.op).__name__, [operand], node)
        return super().fold_unary(node, self.unwrap(operand))

    def fold_compare(self, node: ast.Compare, operands: list[object]) -> object:
        if any(type(operand) is Array for operand in operands):
            if len(node.ops) != 1:
                return UNKNOWN
            return self._array_op(type(node.ops[0]).__name__, operands, node)
        return super().fold_compare(node, [self.unwrap(operand) for operand in operands])

    def fold_subscript(self, node: ast.Subscript, base: object) -> object:
        if type(base) is Array:
            return self._index_array(base, node)
        if type(base) in (tuple, list) and not is_constant(base):
            key = self.unwrap(self.visit(node.slice))
            return base[key] if type(key) is int and -len(base) <= key < len(base) else UNKNOWN
        return super().fold_subscript(node, self.unwrap(base))

    def _index_array(self, base: Array, node: ast.Subscript) -> object:
        parts = node.slice.elts if type(node.slice) is ast.Tuple else [node.slice]
        key: list[object] = []
        for part in parts:
            if type(part) is ast.Slice:
                bounds = [None if p is None else self.unwrap(self.visit(p)) for p in (part.lower, part.upper, part.step)]
                if not all(b is None or type(b) is int for b in bounds) or bounds[2] == 0:
                    return UNKNOWN
                key.append(slice(*bounds))
                continue
            if type(part) is ast.Constant and part.value is Ellipsis:
                key.append(Ellipsis)
                continue
            value = self.unwrap(self.visit(part))
            if value is None or type(value) is int:
                key.append(value)
            elif type(value) in (list, tuple) and value and all(type(v) is int for v in value):
                key.append(shapes.Advanced(len(value)))
            elif type(value) is Array and value.dtype is not None and value.dtype.kind in "iu" and value.ndim == 1:
                key.append(shapes.Advanced(value.shape[0]))
            else:
                return UNKNOWN  # boolean masks, unknown indices: size not known
        if base.shape is None:
            return UNKNOWN
        shape = shapes.index(base.shape, key)
        if shape is None:
            return UNKNOWN
        if not shape:
            return Array((), base.dtype)  # one element: a numpy scalar
        if any(type(k) is shapes.Advanced for k in key):
            return self.allocate(new(shape, base.dtype), node)
        return Array(shape, base.dtype, base.site)

    def attribute(self, node: ast.Attribute) -> object:
        base = self.visit(node.value)
        attr = node.attr
        kind = type(base)
        if kind is Ref:
            qualname = f"{base.qualname}.{attr}"
            return _CONSTANTS[qualname] if qualname in _CONSTANTS else Ref(qualname)
        if kind is Array:
            return self._array_attribute(base, attr)
        if kind in (Instance, Container):
            return Method(base, attr)
        return UNKNOWN

    def _array_attribute(self, base: Array, attr: str) -> object:
        if attr == "shape":
            return UNKNOWN if base.shape is None else base.shape
        if attr == "ndim":
            return UNKNOWN if base.shape is None else base.ndim
        if attr == "size":
            return UNKNOWN if base.shape is None else base.size
        if attr == "dtype":
            return UNKNOWN if base.dtype is None else base.dtype
        if attr in ("nbytes", "itemsize"):
            if base.shape is None or base.dtype is None:
                return UNKNOWN
            return base.dtype.itemsize * (base.size if attr == "nbytes" else 1)
        if attr == "T":
            return Array(None if base.shape is None else base.shape[::-1], base.dtype, base.site)
        return Method(base, attr)

    def dict_display(self, node: ast.Dict) -> object:
        for part in node.keys + node.values:
            if part is not None:
                self.visit(part)
        length = None if None in node.keys else len(node.keys)
        return Container("dict", tuple(self.loops), [], None, length)

    def set_display(self, node: ast.Set) -> object:
        for elt in node.elts:
            self.visit(elt)
        return Container("set", tuple(self.loops), [], None, None)

    def namedexpr(self, node: ast.NamedExpr) -> object:
        value = self.visit(node.value)
        self.bind(node.target.id, value)
        return value

    def lambda_(self, node: ast.Lambda) -> object:
        return self._function(node)

    def comprehension(self, node: ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp) -> object:
        kind = {ast.ListComp: "list", ast.SetComp: "set", ast.DictComp: "dict"}.get(type(node))
        container = Container(kind or "generator", tuple(self.loops), [], None, None)
        saved = dict(self.bindings)
        trip: int | float | None = 1
        pushed = 0
        try:
            for generator in node.generators:
                iterable = self.visit(generator.iter)
                self._quiet += 1
                try:
                    inner = self._trip(generator.iter, iterable)
                finally:
                    self._quiet -= 1
                trip = None if inner is None or trip is None or generator.ifs else trip * inner
                self.assign(generator.target, self._element(iterable))
                self.loops.append(Loop(inner if not generator.ifs else None))
                pushed += 1
                for condition in generator.ifs:
                    self.visit(condition)
            if type(node) is ast.DictComp:
                self.visit(node.key)
                element = self.visit(node.value)
            else:
                element = self.visit(node.elt)
            if kind is not None:
                self._put(container, element, node, kind, True)
        finally:
            del self.loops[len(self.loops) - pushed :]
            self.bindings.clear()
            self.bindings.update(saved)
        if kind is None:
            return UNKNOWN
        container.length = trip if type(trip) is int else None
        return container

    # -- calls -------------------------------------------------------------------

    def call(self, node: ast.Call) -> object:
        func = self.visit(node.func)
        positional: list[object] = []
        keywords: dict[str, object] = {}
        known = True
        for arg in node.args:
            if type(arg) is ast.Starred:
                spread = self.unwrap(self.visit(arg.value))
                if type(spread) in (tuple, list):
                    positional.extend(spread)
                else:
                    known = False
            else:
                positional.append(self.visit(arg))
        for keyword in node.keywords:
            value = self.visit(keyword.value)
            if keyword.arg is None:
                known = False
            else:
                keywords[keyword.arg] = value
        if not known:
            return UNKNOWN
        previous, self._current = self._current, node
        try:
            return self.allocate(self._dispatch(func, positional, keywords, node), node)
        finally:
            self._current = previous

    def _dispatch(self, func: object, positional: list, keywords: dict, node: ast.Call) -> object:
        kind = type(func)
        if kind is Ref:
            return self._call_ref(func.qualname, positional, keywords, node)
        if kind is Method:
            return self._call_method(func, positional, keywords, node)
        if kind is UserFunction:
            return self.call_user(func, positional, keywords)
        return UNKNOWN

    def _call_ref(self, qualname: str, positional: list, keywords: dict, node: ast.Call) -> object:
        sig = SIGNATURES.get(qualname)
        if sig is not None:
            args = sig.bind(positional, keywords)
            return UNKNOWN if args is None else sig.build(args, self)
        if qualname in UFUNCS:
            return ufunc_call(UFUNCS[qualname], None, positional, keywords)
        base, _, method = qualname.rpartition(".")
        if base in UFUNCS:
            return ufunc_call(UFUNCS[base], method, positional, keywords)
        if qualname in _EXIT_CALLS:
            raise _Stop
        if qualname.startswith("builtins."):
            return self._call_builtin(qualname[9:], positional, keywords)
        if qualname in ("numpy.random.default_rng", "numpy.random.Generator"):
            return Instance("numpy.random.Generator")
        if qualname == "numpy.random.RandomState":
            return Instance("numpy.random.RandomState")
        if qualname.startswith("numpy.dtypes.") and not positional and not keywords:
            return NAMED.get(qualname, UNKNOWN)  # np.dtypes.Float32DType()
        if qualname == "numpy.dtype" and positional:
            dtype = as_dtype(self.unwrap(positional[0]))
            return UNKNOWN if dtype is None else dtype
        if qualname == "collections.deque":
            maxlen = keywords.get("maxlen", positional[1] if len(positional) > 1 else None)
            container = Container("list", tuple(self.loops), [], None, None)
            container.bounded = maxlen is not None
            return container
        return UNKNOWN

    def _call_builtin(self, name: str, positional: list, keywords: dict) -> object:
        if name in ("list", "tuple", "set", "dict") and not keywords:
            kind = "set" if name == "set" else "dict" if name == "dict" else "list"
            if not positional:
                return () if name == "tuple" else Container(kind, tuple(self.loops), [], None if kind != "list" else [], 0)
            source = positional[0]
            if type(source) is Container and source.kind != "generator" and name != "dict":
                items = list(source.items)
                copy = Container(kind, tuple(self.loops), items, source.const and list(source.const), source.length)
                return copy if name != "tuple" else UNKNOWN
            const = self.unwrap(source)
            if name in ("list", "tuple") and type(const) in (tuple, list, range, str) and len(const) <= 10_000:
                return list(const) if name == "list" else tuple(const)
            return UNKNOWN
        if name == "len" and len(positional) == 1 and not keywords:
            value = positional[0]
            if type(value) is Array:
                return value.shape[0] if value.shape else UNKNOWN
            if type(value) in (Container, Sized):
                return UNKNOWN if value.length is None else value.length
        fold = BUILTINS.get(name)
        if fold is None or keywords:
            return UNKNOWN
        args = [self.unwrap(v) for v in positional]
        if not all(is_constant(a) for a in args):
            return UNKNOWN
        return fold(*args)

    def _call_method(self, method: Method, positional: list, keywords: dict, node: ast.Call) -> object:
        receiver = method.receiver
        kind = type(receiver)
        if kind is Array:
            sig = SIGNATURES.get(f"numpy.ndarray.{method.name}")
            if sig is None:
                return UNKNOWN
            args = sig.bind([receiver, *positional], keywords)
            return UNKNOWN if args is None else sig.build(args, self)
        if kind is Instance:
            sig = SIGNATURES.get(f"{receiver.cls}.{method.name}")
            if sig is None:
                return UNKNOWN
            args = sig.bind(positional, keywords)
            return UNKNOWN if args is None else sig.build(args, self)
        if kind is Container and method.name in _GROWTH_METHODS:
            target = _target_name(node.func.value) if type(node.func) is ast.Attribute else receiver.kind
            if method.name in ("extend", "extendleft", "update"):
                for value in positional or [UNKNOWN]:
                    self._extend(receiver, value, node, target)
            elif method.name in ("insert", "setdefault") and len(positional) == 2:
                value = positional[1]
                distinct = method.name == "insert" or self._distinct_key(node.args[0])
                self._put(receiver, value, node, target, distinct)
            elif len(positional) == 1:
                self._put(receiver, positional[0], node, target, True)
        return UNKNOWN

    def call_user(self, function: UserFunction, positional: list, keywords: dict) -> object:
        """Interpret a call of a function defined in the code, with its arguments bound.

        Calls nest at most a few levels and never recurse; a function whose
        returns disagree gives ``UNKNOWN``."""
        if len(self._active) >= _MAX_CALL_DEPTH or any(f.node is function.node for f in self._active):
            return UNKNOWN
        local = self._bind_parameters(function, positional, keywords)
        if local is None:
            return UNKNOWN
        outer, outer_returns, outer_anchor = self.bindings, self._returns, self._anchor
        self.bindings, self._returns = local, []
        self._anchor = outer_anchor or self._current
        self._active.append(function)
        try:
            if type(function.node) is ast.Lambda:
                return self.visit(function.node.body)
            try:
                self.exec_block(function.node.body)
                self._returns.append(None)  # the end of the body: returns None
            except _Stop:
                pass  # a return (recorded) or a raise (no value)
            returns = self._returns
            first = returns[0] if returns else UNKNOWN
            return first if all(r is first for r in returns) else UNKNOWN
        finally:
            self._active.pop()
            self.bindings, self._returns, self._anchor = outer, outer_returns, outer_anchor

    def _bind_parameters(self, function: UserFunction, positional: list, keywords: dict) -> dict | None:
        args = function.node.args
        params = [a.arg for a in args.posonlyargs + args.args]
        local: dict[str, object] = {}
        if len(positional) > len(params) and args.vararg is None:
            return None
        for name, value in zip(params, positional):
            local[name] = value
        if args.vararg is not None:
            local[args.vararg.arg] = tuple(positional[len(params) :])
        defaults = dict(zip(params[len(params) - len(function.defaults) :], function.defaults))
        defaults.update(function.kw_defaults)
        for name in params + [a.arg for a in args.kwonlyargs]:
            if name in keywords:
                local[name] = keywords[name]
            elif name not in local:
                local[name] = defaults.get(name, UNKNOWN)
        if args.kwarg is not None:
            local[args.kwarg.arg] = UNKNOWN
        return local


def _target_name(node: ast.AST) -> str:
    return node.id if type(node) is ast.Name else ast.unparse(node)


def _trange_like(node: ast.Call) -> bool:
    """``tqdm(xs, desc=...)``: keywords that do not change the iteration."""
    return all(k.arg not in (None, "total") for k in node.keywords)


def _matmul_dtype(x: Array, y: Array) -> np.dtype | None:
    if x.dtype is None or y.dtype is None:
        return None
    try:
        return np.matmul(np.zeros((1, 1), x.dtype), np.zeros((1, 1), y.dtype)).dtype
    except Exception:  # no matmul loop for these dtypes: numpy would raise
        return None


