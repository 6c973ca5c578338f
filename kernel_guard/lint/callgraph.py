"""Recursion in a notebook: which functions call back into themselves (directly,
as methods, or through a cycle of functions across cells), whether they have a
base case, and — for recursion on one numeric parameter — where the argument
goes and how deep a call with a constant argument recurses.

Runs once per notebook for all KG3 rules; costs nothing when no function calls
back into itself.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from kernel_guard.estimator import UNKNOWN, evaluate
from kernel_guard.lint import flow
from kernel_guard.lint.control_paths import Paths

if TYPE_CHECKING:
    from kernel_guard.lint.context import LintContext
    from kernel_guard.source import Cell

DEFAULT_LIMIT = 1000  # sys.getrecursionlimit() of a fresh interpreter
# Frames of recursion through C code that the default 8 MiB stack holds (CPython
# 3.11, measured: ~13,500 through map, ~16,000 through lru_cache, ~16,500
# through repr; sorted(key=...) dies near 2,000).
C_STACK_FRAMES = 13_000
_SIMULATION_CAP = 1_000_000
_CACHES = frozenset({"functools.lru_cache", "functools.cache"})
# Special methods that builtins call back: ``len(self)`` inside ``__len__``...
_DUNDER_BUILTINS = {"__len__": "len", "__repr__": "repr", "__str__": "str", "__hash__": "hash",
                    "__bool__": "bool", "__iter__": "iter", "__format__": "format"}


@dataclass
class _Function:
    node: ast.FunctionDef
    cell: Cell
    label: str  # ``f`` or ``Class.method``
    is_recursive: Callable[[ast.AST], bool]
    by_name: bool  # recursion through its (module or enclosing function) name
    method_self: str | None = None


@dataclass
class Analysis:
    findings: dict[str, list] = field(default_factory=lambda: {"no-base-case": [], "drift": [], "too-deep": []})


def analysis(context: LintContext) -> Analysis:
    return context.shared(Analysis, lambda: _analyse(context))


def _analyse(context: LintContext) -> Analysis:
    result = Analysis()
    functions, module_defs = _collect(context)
    cycles = _cycles(module_defs)
    if not functions and not cycles:
        return result
    facts = flow.facts(context)
    in_cycle = {name for cycle in cycles for name in cycle}
    for function in functions:
        if function.by_name and (function.node.name in in_cycle or not _unique(function, facts)):
            continue
        if function.method_self and _rebinds(function.node, function.method_self):
            continue
        paths = Paths(function.node, function.is_recursive, facts.call_may_leave)
        if not paths.recursions:
            continue
        if not paths.has_base_case:
            first = paths.recursions[0][1]
            result.findings["no-base-case"].append(
                (function.cell, _def_position(function), f"every path through `{function.label}` reaches "
                 f"`{flow.source_of(first)}` before it can return: there is no base case, so every call "
                 "ends in RecursionError")
            )
        elif function.by_name:
            _Drift(function, paths, facts, context, result).check()
    for cycle in cycles:
        _check_cycle(cycle, module_defs, facts, result)
    return result


# -- finding the recursive functions -------------------------------------------------------


_DEF = re.compile(r"^[ \t]*def[ \t]+(\w+)", re.MULTILINE)
_WORD = re.compile(r"\w+")
_SPECIAL = frozenset({*_DUNDER_BUILTINS, "__setattr__", "__getattribute__"})


def _collect(context: LintContext):
    """Functions that call back into themselves, and the module-level functions
    with the module-level functions they call (for cycles).  A function is only
    walked when its name occurs again in its cell's text."""
    functions: list[_Function] = []
    module_defs: dict[str, list[tuple[ast.FunctionDef, Cell, str]]] = {}
    for cell in context.cells:
        tree = context.trees.get(id(cell))
        if tree is None or "def" not in cell.source:
            continue
        source = cell.source
        lines = source.splitlines()
        for statement in tree.body:
            if isinstance(statement, ast.FunctionDef):
                text = _body_text(statement, lines)
                module_defs.setdefault(statement.name, []).append((statement, cell, text))
        if not any(name in _SPECIAL or source.count(name) > 1 for name in _DEF.findall(source)):
            continue
        for node, ancestors in flow.statements_with_ancestors(tree, (ast.FunctionDef,)):
            if not _mentions_itself(node, lines):
                continue
            scope = flow.enclosing_scope(ancestors)
            if isinstance(scope, ast.ClassDef):
                method = _method(node, scope, cell, lines)
                if method is not None and not _is_generator(node):
                    functions.append(method)
                continue
            name = node.name

            def is_recursive(sub: ast.AST, name=name) -> bool:
                return isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id == name

            if any(is_recursive(sub) for sub in ast.walk(node)) and not _is_generator(node):
                functions.append(_Function(node, cell, name, is_recursive, by_name=True))
    return functions, module_defs


def _mentions_itself(node: ast.FunctionDef, lines: list[str]) -> bool:
    """Whether the function's body text may hold a call back into it (cheap):
    ``name(`` or ``.name`` as a word, or what a special method's builtin needs."""
    body = _body_text(node, lines)
    if node.name in _DUNDER_BUILTINS:
        return f"{_DUNDER_BUILTINS[node.name]}(" in body or "{" in body
    if node.name in _SPECIAL:
        return "." in body
    return node.name in body and node.name in _WORD.findall(body)


def _body_text(node: ast.FunctionDef, lines: list[str]) -> str:
    """The text of the function's body, also when it starts on the ``def`` line
    (``def f(n): return f(n + 1)``); ast columns count UTF-8 bytes."""
    first = node.body[0]
    head = lines[first.lineno - 1].encode("utf-8")[first.col_offset :].decode("utf-8", "replace")
    return "\n".join([head, *lines[first.lineno : node.end_lineno]])


def _method(node: ast.FunctionDef, cls: ast.ClassDef, cell: Cell, lines: list[str]) -> _Function | None:
    params = node.args.posonlyargs + node.args.args
    decorators = {_decorator_name(d) for d in node.decorator_list}
    if not params or "staticmethod" in decorators:
        return None
    me, name = params[0].arg, node.name
    if name not in _SPECIAL and f"{me}.{name}" not in _body_text(node, lines):
        return None  # no ``self.name`` in the text: nothing to walk
    setter = any(isinstance(d, ast.Attribute) and d.attr == "setter" for d in node.decorator_list)
    # ``property`` is a data descriptor: ``self.x`` always runs the getter (a
    # ``cached_property`` getter may fill the instance dict first, and is skipped).
    getter = bool(decorators & {"property", "getter"})
    builtin = _DUNDER_BUILTINS.get(name)

    def on_self(sub: ast.AST) -> bool:
        return isinstance(sub, ast.Name) and sub.id == me

    def is_recursive(sub: ast.AST) -> bool:
        if isinstance(sub, ast.Attribute) and on_self(sub.value):
            if name == "__setattr__":
                return isinstance(sub.ctx, ast.Store)
            if name == "__getattribute__":
                return isinstance(sub.ctx, ast.Load)
            if sub.attr == name:
                return isinstance(sub.ctx, ast.Store) if setter else getter and isinstance(sub.ctx, ast.Load)
            return False
        if isinstance(sub, ast.Call):
            func = sub.func
            if isinstance(func, ast.Attribute) and on_self(func.value) and func.attr == name and not (getter or setter):
                return True
            return (
                builtin is not None and isinstance(func, ast.Name) and func.id == builtin
                and len(sub.args) == 1 and on_self(sub.args[0]) and not sub.keywords
            )
        if isinstance(sub, ast.FormattedValue) and on_self(sub.value) and sub.format_spec is None:
            return (name == "__str__" and sub.conversion in (-1, ord("s"))) or (
                name == "__repr__" and sub.conversion == ord("r")
            )
        return False

    if not any(is_recursive(sub) for sub in ast.walk(node)) or _shadowed(cls, name, setter or name == "__setattr__"):
        return None
    if "cached_property" in decorators or any(
        isinstance(sub, ast.Attribute) and sub.attr == "__class__" and isinstance(sub.ctx, ast.Store)
        for sub in ast.walk(node)
    ):
        return None  # the method swaps the class: attribute access no longer comes back here
    return _Function(node, cell, f"{cls.name}.{name}", is_recursive, by_name=False, method_self=me)


def _shadowed(cls: ast.ClassDef, name: str, storing: bool) -> bool:
    """Whether instances may hold their own attribute ``name`` (``self.name = ...``),
    which a method call ``self.name()`` would then reach instead."""
    if storing:
        return False
    return any(
        isinstance(sub, ast.Attribute) and sub.attr == name and isinstance(sub.ctx, ast.Store)
        for sub in ast.walk(cls)
    )


def _decorator_name(decorator: ast.expr) -> str | None:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    return None


def _is_generator(node: ast.FunctionDef) -> bool:
    return any(isinstance(sub, (ast.Yield, ast.YieldFrom)) for sub in flow.body_nodes(node.body))


def _unique(function: _Function, facts: flow.Facts) -> bool:
    return facts.bindings[function.node.name] == 1


def _rebinds(node: ast.FunctionDef, name: str) -> bool:
    return any(isinstance(sub, ast.Name) and sub.id == name and not isinstance(sub.ctx, ast.Load)
               for sub in flow.body_nodes(node.body))


def _def_position(function: _Function) -> tuple[int, int, int, int]:
    from kernel_guard.lint.context import LintContext

    line, column, _, _ = LintContext.ast_position(function.cell, function.node)
    return line, column, line, column + len("def ") + len(function.node.name)


# -- cycles of module-level functions ------------------------------------------------------


def _cycles(module_defs) -> list[list[str]]:
    """Groups of two or more module-level functions that call each other: first
    on the functions' text (cheap), then confirmed on their calls."""
    if len(module_defs) < 2:
        return []
    names = set(module_defs)
    textual = {
        name: {word for _, _, text in defs for word in _WORD.findall(text)} & names - {name}
        for name, defs in module_defs.items()
    }
    cycles = []
    for group in _strongly_connected(textual):
        calls = {
            name: {n.func.id for node, _, _ in module_defs[name] for n in ast.walk(node)
                   if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)} & set(group) - {name}
            for name in group
        }
        cycles.extend(_strongly_connected(calls))
    return cycles


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of two or more nodes (Tarjan, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(root: str) -> None:
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))

    for name in graph:
        if name not in index:
            visit(name)
    return found


def _check_cycle(cycle: list[str], module_defs, facts: flow.Facts, result: Analysis) -> None:
    members = []
    for name in cycle:
        if facts.unique_function(name) is None:
            return
        node, cell, _ = module_defs[name][0]
        members.append((node, cell))
    names = set(cycle)

    def is_recursive(sub: ast.AST) -> bool:
        return isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id in names

    for node, _ in members:
        if Paths(node, is_recursive, facts.call_may_leave).has_base_case:
            return
    order = {id(cell): index for index, cell in enumerate(facts.context.cells)}
    node, cell = max(members, key=lambda member: (order[id(member[1])], member[0].lineno))
    listed = " and ".join(f"`{name}`" for name in cycle) if len(cycle) == 2 else ", ".join(f"`{n}`" for n in cycle)
    result.findings["no-base-case"].append(
        (cell, _def_position(_Function(node, cell, node.name, is_recursive, True)),
         f"{listed} call each other on every path: there is no base case, so every call ends in RecursionError")
    )


# -- where the argument goes ---------------------------------------------------------------


class _Drift:
    """Recursion on one numeric parameter ``P``: every base case tests only ``P``
    against constants, and the first recursive call of each path passes ``P + c``.
    Following that chain from a value tells whether (and how deep) it stops."""

    parameter: str
    index: int  # of the parameter among the positional ones
    steps: dict[int, int | float]  # id of each first recursive call -> its ``c``
    breakpoints: list[float]

    def __init__(self, function: _Function, paths: Paths, facts: flow.Facts, context: LintContext, result: Analysis):
        self.function, self.paths, self.facts, self.context, self.result = function, paths, facts, context, result
        self.name = function.node.name

    def check(self) -> None:
        paths = self.paths
        if paths.complex or not paths.exits:
            return
        parameter = self._parameter()
        if parameter is None:
            return
        self.parameter = parameter
        self.steps = {}
        for _, node in paths.recursions:
            step = self._step(node)
            if step is None:
                return
            self.steps[id(node)] = step
        breakpoints = self._breakpoints()
        if breakpoints is None:
            return
        self.breakpoints = breakpoints
        if self._never_stops_once_recursing():
            self._report_definition()
            return
        self._check_calls()

    # -- shape ------------------------------------------------------------------

    def _parameter(self) -> str | None:
        """The one parameter the tests read, if they read nothing else but constants."""
        node = self.function.node
        params = [a.arg for a in node.args.posonlyargs + node.args.args]
        read = set()
        for path in self.paths.exits + [path for path, _ in self.paths.recursions]:
            for test, _ in path:
                for sub in ast.walk(test):
                    if isinstance(sub, ast.Name):
                        read.add(sub.id)
                    elif not isinstance(sub, (ast.Compare, ast.BoolOp, ast.UnaryOp, ast.Constant, ast.expr_context,
                                              ast.cmpop, ast.boolop, ast.unaryop)):
                        return None
        unknown = {name for name in read if name not in params and self.context.constant(name) is UNKNOWN}
        candidates = read & set(params)
        if unknown or len(candidates) != 1:
            return None
        parameter = candidates.pop()
        for sub in flow.body_nodes(node.body):
            if isinstance(sub, ast.Name) and sub.id == parameter and not isinstance(sub.ctx, ast.Load):
                return None  # rebound
            if isinstance(sub, (ast.Attribute, ast.Subscript)) and isinstance(sub.value, ast.Name) \
                    and sub.value.id == parameter:
                return None  # not a number
        self.index = params.index(parameter)
        return parameter

    def _passed(self, call: ast.AST) -> ast.expr:
        """The argument of a first recursive call (``_step`` read it)."""
        return cast(ast.expr, self._argument(cast(ast.Call, call)))

    def _argument(self, call: ast.Call) -> ast.expr | None:
        if len(call.args) > self.index and not any(isinstance(a, ast.Starred) for a in call.args[: self.index + 1]):
            return call.args[self.index]
        return next((k.value for k in call.keywords if k.arg == self.parameter), None)

    def _step(self, call: ast.AST) -> int | float | None:
        """``c`` when the call passes ``P + c`` (``P`` itself: 0)."""
        if not isinstance(call, ast.Call):
            return None
        argument = self._argument(call)
        if isinstance(argument, ast.Name) and argument.id == self.parameter:
            return 0
        if isinstance(argument, ast.BinOp) and isinstance(argument.op, (ast.Add, ast.Sub)):
            left, right = argument.left, argument.right
            sign = 1 if isinstance(argument.op, ast.Add) else -1
            if isinstance(left, ast.Name) and left.id == self.parameter:
                value = flow.quick_value(right, self.context)
            elif sign == 1 and isinstance(right, ast.Name) and right.id == self.parameter:
                value = flow.quick_value(left, self.context)
            else:
                return None
            if type(value) in (int, float):
                return sign * cast(float, value)
        return None

    def _breakpoints(self) -> list[float] | None:
        """The constants ``P`` is compared with (and 0, for ``if n:``)."""
        points: set[float] = {0}
        for path in self.paths.exits + [path for path, _ in self.paths.recursions]:
            for test, _ in path:
                for sub in ast.walk(test):
                    if isinstance(sub, ast.Compare):
                        for operand in (sub.left, *sub.comparators):
                            if isinstance(operand, ast.Name) and operand.id == self.parameter:
                                continue
                            value = flow.quick_value(operand, self.context)
                            if type(value) not in (int, float):
                                return None
                            points.add(cast(float, value))
        return sorted(points)

    # -- following the chain ----------------------------------------------------

    def _holds(self, path, value) -> bool | None:
        for test, outcome in path:
            result = evaluate(test, lambda name: value if name == self.parameter else self.context.constant(name))
            if result is UNKNOWN:
                return None
            if bool(result) != outcome:
                return False
        return True

    def _follow(self, value, cap: int):
        """``("stops", depth)``, ``("forever", node)`` or ``("deep", cap)``; ``None`` if unknown."""
        low, high = self.breakpoints[0], self.breakpoints[-1]
        depth = 0
        while depth < cap:
            stops = [self._holds(path, value) for path in self.paths.exits]
            if None in stops:
                return None
            if any(stops):
                return "stops", depth
            node = next((node for path, node in self.paths.recursions if self._holds(path, value)), None)
            if node is None:
                return None
            step = self.steps[id(node)]
            if step == 0 or (step > 0 and value > high) or (step < 0 and value < low):
                return "forever", node
            # Outside the breakpoints every test has the same outcome: jump to them.
            distance = value - high if value > high else low - value if value < low else 0
            jump = max(1, min(int(distance // abs(step)), cap - depth))
            value += step * jump
            depth += jump
        return "deep", cap

    def _samples(self) -> list[float]:
        points = self.breakpoints
        offsets: tuple[float, ...] = (-2, -1, 0, 1, 2)
        if any(type(p) is float for p in points) or any(type(s) is float for s in self.steps.values()):
            offsets = (-2, -1, -0.5, 0, 0.5, 1, 2)
        values = {p + o for p in points for o in offsets} | {points[0] - 10, points[-1] + 10}
        return sorted(values)

    def _never_stops_once_recursing(self) -> bool:
        """Whether every value that does not stop at once recurses forever."""
        recursing = 0
        for value in self._samples():
            outcome = self._follow(value, 10_000)
            if outcome is None:
                return False
            if outcome[0] == "stops" and outcome[1] == 0:
                continue
            if outcome[0] != "forever":
                return False
            recursing += 1
        return recursing > 0

    def _base_case(self) -> str:
        return " or ".join(sorted({flow.source_of(test) if outcome else f"not ({flow.source_of(test)})"
                                   for path in self.paths.exits for test, outcome in path})) or "none"

    def _report_definition(self) -> None:
        first = self.paths.recursions[0][1]
        argument = self._passed(first)
        how = (
            f"calls itself with `{self.parameter}` unchanged"
            if self.steps[id(first)] == 0
            else f"recurses with `{flow.source_of(argument)}`, away from its base case (`{self._base_case()}`)"
        )
        self.result.findings["drift"].append(
            (self.function.cell, _def_position(self.function),
             f"`{self.name}` {how}: once it recurses it never stops, and ends in RecursionError")
        )

    # -- calls with a constant argument ---------------------------------------------

    def _check_calls(self) -> None:
        limit = _recursion_limit(self.facts, self.context)
        cached = any(self.facts.resolve(d.func if isinstance(d, ast.Call) else d) in _CACHES
                     for d in self.function.node.decorator_list)
        for node, parent, scope, cell in self.facts.loads[self.name]:
            if not (isinstance(parent, ast.Call) and parent.func is node) or scope is self.function.node:
                continue
            argument = self._argument(parent)
            value = None if argument is None else flow.quick_value(argument, self.context)
            if type(value) not in (int, float):
                continue
            outcome = self._follow(value, _SIMULATION_CAP)
            if outcome is None or _expected(parent, cell, self.context):
                continue
            position = self.context.ast_position(cell, parent)
            call = flow.source_of(parent, cell.source)
            if outcome[0] == "forever":
                self.result.findings["drift"].append(
                    (cell, position, f"`{call}` never reaches the base case of `{self.name}` "
                     f"(`{self._base_case()}`): each call passes `{flow.source_of(self._passed(outcome[1]))}`, "
                     "so it ends in RecursionError")
                )
                continue
            depth = outcome[1]
            if limit is not None and depth >= limit:
                self.result.findings["too-deep"].append(
                    (cell, position, f"`{call}` recurses {depth:,}{'+' if outcome[0] == 'deep' else ''} deep, past "
                     f"the recursion limit of {limit:,}: it raises RecursionError")
                )
            elif cached and limit is not None and depth > C_STACK_FRAMES:
                self.result.findings["too-deep"].append(
                    (cell, position, f"`{call}` recurses {depth:,} deep through the C code of the cache decorator: "
                     f"past about {C_STACK_FRAMES:,} frames the C stack overflows and the kernel dies with a "
                     "segmentation fault")
                )


def _expected(call: ast.Call, cell: Cell, context: LintContext) -> bool:
    """Whether the call runs in a ``try`` that catches RecursionError (a demonstration)."""
    for node, ancestors in flow.with_ancestors(context.trees[id(cell)], (ast.Call,)):
        if node is call:
            return flow.in_try_body(ancestors, node, lambda handler: flow.catches(handler, RecursionError))
    return False


def _recursion_limit(facts: flow.Facts, context: LintContext) -> int | None:
    """The limit the notebook sets (the highest, when it sets several), the default
    when it sets none, ``None`` when it sets one that is not a constant."""
    limits = []
    for cell in context.cells:
        tree = context.trees.get(id(cell))
        if tree is None or "setrecursionlimit" not in cell.source:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and facts.resolve(node.func) == "sys.setrecursionlimit":
                value = flow.quick_value(node.args[0], context) if node.args else UNKNOWN
                if type(value) is not int:
                    return None
                limits.append(value)
    return max(limits, default=DEFAULT_LIMIT)
