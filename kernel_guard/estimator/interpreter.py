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
import re
from collections.abc import Mapping
from typing import cast

from kernel_guard.columns import char_offset
from kernel_guard.estimator import namespace as ns_reader
from kernel_guard.estimator.abstract import (
    INFINITE,
    NEW,
    OPAQUE,
    Array,
    Container,
    Foreign,
    Loop,
    Made,
    Ref,
    Site,
    Sized,
    UserFunction,
)
from kernel_guard.estimator.control import (
    LEAVING,
    PASS_THROUGH,
    REBUILDERS,
    TRANGE,
    Order,
    Stop,
    call_leaves,
    loop_names,
    names_in,
    trange_like,
)
from kernel_guard.estimator.dtypes import NAMED
from kernel_guard.estimator.expressions import NUMPY_CONSTANTS, STAR_REFS, Expressions, target_name
from kernel_guard.estimator.results import Allocation, Growth, LiveOver, Notice
from kernel_guard.estimator.signatures import SIGNATURES, UFUNCS
from kernel_guard.estimator.values import UNKNOWN, is_constant
from kernel_guard.lint.names import import_bindings
from kernel_guard.userns import entries

_BUILTIN_NAMES = frozenset(dir(builtins))
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_MISSING = object()
# Walks of everything bound, one per allocating statement, that a cell gets: past them the
# live-arrays check stops (a generated cell of 20,000 allocations took minutes).
_LIVE_WALKS = 500


class Program(Expressions):
    """Abstract interpreter state for a notebook or kernel session, fed cell by cell.

    ``namespace`` (a kernel's ``user_ns``) supplies values for names the cells
    do not bind; it is read through ``userns.entries`` and ``namespace.read`` only.
    """

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
        self.notices: list[Notice] = []  # lines whose library sizes were not read (too costly)
        # With a live_budget: the points of the last run where the arrays kept
        # alive went over it, none of them over it alone.
        self.live_over: list[LiveOver] = []
        self._over = False
        self._walks = self._counted = self._made = 0
        self._sites: list[Site] = []
        self._star_modules: list[str] = []
        self._read_cache: dict[str, object] = {}
        self._entries: dict[str, object] | None = None  # the namespace's exact-str entries
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
        # Lines as the parser counts them (str.splitlines also breaks at \f, \x1c...).
        self._lines = _LINE_BREAK.split(source) if source is not None else None
        self.live_over = []
        self._walks = self._counted = self._made = 0
        budget = self.live_budget
        if budget is not None:  # what earlier cells left bound counts toward the bound
            self._made = sum(size for site in self._reachable() if (size := site.nbytes * site.count) <= budget)
        self._grown = set()  # node ids: unique only while this tree is alive
        for stmt in tree.body:
            made = len(self._sites)
            try:
                self.exec_stmt(stmt)
            except Stop:
                break  # the cell raises here: what follows does not run
            finally:
                if self.live_budget is not None and len(self._sites) > made:
                    self._check_live(self._sites[-1])
        reachable = {id(site) for site in self._reachable()}
        allocations = [self._allocation(site, id(site) in reachable) for site in self._sites]
        self._lines = None
        return allocations

    def _check_live(self, last: Site) -> None:
        # Arrays over the budget on their own are reported alone: not counted here. What every
        # site ever made adds up to bounds what is live, so below the budget nothing is walked.
        budget = cast(int, self.live_budget)  # checked only with a budget
        new = self._sites[self._counted :]
        self._counted = len(self._sites)
        self._made += sum(size for site in new if (size := site.nbytes * site.count) <= budget)
        if self._made <= budget:
            self._over = False  # what is live is at most what was made
            return
        if self._walks >= _LIVE_WALKS:
            return
        self._walks += 1
        sizes = [site.nbytes * site.count for site in self._reachable()]
        total = sum(size for size in sizes if size <= budget)
        over = total > budget
        if over and not self._over:
            arrays = [(name, size) for name, size in self.live_arrays() if size <= budget]
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
            if kind is Array or isinstance(value, Foreign):
                if type(value.site) is Site:
                    found[id(value.site)] = value.site
            elif kind in (tuple, list):
                stack.extend(value)
            elif kind is Container and id(value) not in seen:
                seen.add(id(value))
                stack.extend(item for item, _ in value.items)
        return list(found.values())

    def _position(self, node: ast.AST) -> tuple[int, int, int, int, str]:
        located = cast("ast.expr | ast.stmt", node)  # a site is an expression or a statement
        line, end_line = located.lineno, located.end_lineno or located.lineno
        col, end_col = located.col_offset, located.end_col_offset or located.col_offset
        lines = self._lines
        if lines is not None and end_line <= len(lines):
            first, last = lines[line - 1], lines[end_line - 1]
            col, end_col = char_offset(first, col), char_offset(last, end_col)
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
            dtype=_dtype_name(site.dtype),
            nbytes=site.nbytes,
            count=site.count,
            kept=kept,
            unbounded=site.unbounded,
            cause=site.cause,
            device=site.device,
        )

    def _site_node(self, node: ast.AST | None) -> ast.AST:
        """Where an allocation is reported: the call of the user function running, else
        ``node``, else the call being interpreted (something always runs when one is made)."""
        return cast(ast.AST, self._anchor or node or self._current)

    def allocate(self, value: object, node: ast.AST | None = None) -> object:
        """Give every ``NEW`` array in ``value`` its site (recorded unless quiet)."""
        if type(value) is Array and value.site is NEW:
            if value.shape is None or value.dtype is None:
                value.site = None
            else:
                site = Site(self._site_node(node), value.shape, value.dtype, tuple(self.loops))
                value.site = site
                if not self._quiet:
                    self._sites.append(site)
        elif type(value) is Made:
            site = Site(self._site_node(node), value.shape, value.dtype, tuple(self.loops),
                        size=value.nbytes, cause=value.cause, device=value.device)
            made = value.value
            if type(made) is Array or isinstance(made, Foreign):
                made.site = site
            if not self._quiet:
                self._sites.append(site)
            return made
        elif type(value) is tuple:
            for item in value:
                self.allocate(item, node)
        return value

    def notice(self, text: str) -> None:
        """Say that the call being interpreted was not estimated, and why (once per call)."""
        node = self._anchor or self._current
        if node is None or self._quiet:
            return
        line, col, end_line, end_col, expr = self._position(node)
        notice = Notice(line, col, end_line, end_col, expr, text)
        if notice not in self.notices:
            self.notices.append(notice)

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
            if self._entries is None:  # copied once: a lookup in the user's own dict can run a key's __eq__
                self._entries = entries(self.namespace)
            if name in self._entries:
                value = self._read_cache[name] = ns_reader.read(self._entries[name])
                return value
        for module in self._star_modules:
            qualname = f"{module}.{name}"
            if qualname in NUMPY_CONSTANTS:
                return NUMPY_CONSTANTS[qualname]
            if qualname in SIGNATURES or qualname in UFUNCS or qualname in NAMED or qualname in STAR_REFS:
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
        if not isinstance(target, ast.Name):
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

    def s_import(self, stmt: ast.Import | ast.ImportFrom) -> None:
        for name, target in import_bindings(stmt):  # what the linter's rules resolve an import to
            self.bind(name, OPAQUE if target.startswith(".") else Ref(target))  # relative: a package we cannot see

    def s_importfrom(self, stmt: ast.ImportFrom) -> None:
        if stmt.module and not stmt.level and any(alias.name == "*" for alias in stmt.names):
            self._star_modules.append(stmt.module)
        self.s_import(stmt)

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
            except Stop:
                continue
            outcomes.append(dict(self.bindings))
        if not outcomes:
            raise Stop
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
        raise Stop

    def s_def(self, stmt: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if isinstance(stmt, ast.AsyncFunctionDef) or stmt.decorator_list:
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
            raise Stop

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
        # Endless only for a condition that reads no name (`while True`, `while 1`):
        # `while len(rows) < n` reads state the body changes.
        literal = not any(type(node) is ast.Name for node in ast.walk(stmt.test))
        trip = INFINITE if literal and is_constant(test) and not self._has_exit(stmt) else None
        self._loop(Loop(trip, frozenset(order.stored)), stmt.body)
        if trip is not INFINITE:
            self.exec_block(stmt.orelse)

    def _loop(self, loop: Loop, body: list[ast.stmt]) -> None:
        self.loops.append(loop)
        try:
            self.exec_block(body)
        except Stop:
            if loop.trip is not None:
                raise  # the first iteration stops it all
            # maybe no iteration at all: what follows the loop may still run
        finally:
            self.loops.pop()

    def _forget_carried(self, stmt: ast.For | ast.While) -> Order:
        """Names the body reads before rebinding change from one iteration to
        the next: they are unknown inside the loop (and after it). A container
        only extended in place (``xs += [x]``) stays what it is."""
        order = loop_names(stmt)
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
            if kind in LEAVING:
                return True
            if kind is ast.Call and self._call_may_leave(cast(ast.Call, node)):
                return True
            if kind in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda):
                continue
            inner = own and kind not in (ast.For, ast.AsyncFor, ast.While)
            stack.extend((child, inner) for child in ast.iter_child_nodes(node))
        return False

    def _call_may_leave(self, call: ast.Call) -> bool:
        if call_leaves(call):
            return True
        func = call.func
        target = self._lookup(func.id) if type(func) is ast.Name else None
        if type(target) is UserFunction and type(target.node) is ast.FunctionDef:
            return any(type(n) in LEAVING for n in ast.walk(target.node))
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
            return len(cast("range | tuple | list | str | bytes", value))
        if kind in (Container, Sized):
            return cast("Container | Sized", value).length
        if type(value) is Array:
            return value.shape[0] if value.shape else None
        if type(node) is not ast.Call or node.keywords and not trange_like(node):
            return None
        func = self.value(node.func)
        if type(func) is not Ref:
            return None
        name, args = func.qualname, node.args
        if name in PASS_THROUGH and args:
            return self._trip(args[0], self.value(args[0]))
        if name == "builtins.zip" and args:
            trips = [self._trip(arg, self.value(arg)) for arg in args]
            return None if None in trips else min(cast("list[int | float]", trips))
        if name in TRANGE:
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
        items = [item for item, _ in value.items] if type(value) is Container else value
        if type(items) in (tuple, list) and items:
            for item in cast("tuple | list", items):
                self._put(container, item, node, target, True)
        else:
            self._put(container, UNKNOWN, node, target, True)

    def _distinct_key(self, key_node: ast.AST) -> bool:
        """Whether a store ``c[key] = v`` in a loop writes a new key each iteration."""
        if type(self.unwrap(self._quiet_value(key_node))) in (int, float, str, bool, tuple, bytes):
            stored = set().union(*(loop.stored for loop in self.loops)) if self.loops else set()
            return bool(names_in(key_node) & stored)
        return True

    def _check_rebuild(self, targets: list[ast.expr], value_node: ast.expr) -> None:
        """``a = np.append(a, x)`` / ``xs = xs + [x]`` in a loop that never ends."""
        if not any(loop.trip is INFINITE for loop in self.loops):
            return
        for target in targets:
            if type(target) is not ast.Name or target.id not in names_in(value_node):
                continue
            if type(value_node) is ast.Call:
                func = self._quiet_value(value_node.func)
                if type(func) is Ref and func.qualname in REBUILDERS:
                    self._record_growth(value_node, target.id)
            elif type(value_node) is ast.BinOp and type(value_node.op) is ast.Add:
                operands = (value_node.left, value_node.right)
                if any(type(o) in (ast.List, ast.ListComp, ast.Tuple) for o in operands):
                    self._record_growth(value_node, target.id)

    # -- assignment --------------------------------------------------------------

    def assign(self, target: ast.expr, value: object) -> None:
        kind = type(target)
        if type(target) is ast.Name:
            self.bind(target.id, value)
        elif kind in (ast.Tuple, ast.List):
            self._unpack(cast("ast.Tuple | ast.List", target).elts, value)
        elif type(target) is ast.Subscript:
            owner = self.value(target.value)
            if type(owner) is Container:
                distinct = self._distinct_key(target.slice)
                self._put(owner, value, target, target_name(target.value), distinct)
            else:
                self.value(target.slice)
        elif type(target) is ast.Attribute:
            self.value(target.value)
        elif type(target) is ast.Starred:
            self.assign(target.value, UNKNOWN)

    def _unpack(self, targets: list[ast.expr], value: object) -> None:
        count = len(targets)
        items: list[object] | None = None
        value = self.unwrap(value) if type(value) is Container else value
        if type(value) in (tuple, list) and len(cast("tuple | list", value)) == count:
            items = list(cast("tuple | list", value))
        elif type(value) is Array and value.shape and value.shape[0] == count:
            items = [Array(value.shape[1:], value.dtype, value.site)] * count
        if any(type(t) is ast.Starred for t in targets) or items is None:
            items = [UNKNOWN] * count
        for target, item in zip(targets, items):
            self.assign(target, item)


_DTYPE_NAMES: dict = {}


def _dtype_name(dtype) -> str:
    """``dtype.name``, memoized: numpy computes it in Python on every access."""
    if type(dtype) is str:
        return dtype
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = dtype.name
    return name
