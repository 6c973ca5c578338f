"""Pre-run check: a multiprocessing pool or process over a function defined in the
notebook while the start method in force is spawn or forkserver.

Such workers are fresh interpreters that cannot import the notebook's ``__main__``:
unpickling the function fails in every worker, and a ``Pool`` waits forever for
results that never come (the cell hangs); a ``Process`` dies at once with the error
on its stderr. The linter's KG507 sees a start method set in the notebook's text;
this check reads the one in force in the kernel: multiprocessing's default context
(``get_start_method(allow_none=True)``, else the platform's default), or the context
or pool a name holds. Values are read by exact stdlib type only, and only when
multiprocessing is already in ``sys.modules``: no user code runs, nothing is imported.
"""

from __future__ import annotations

import ast
import functools
import sys
import types
from dataclasses import dataclass
from typing import Any

HANGING = ("spawn", "forkserver")
POOL_METHODS = frozenset({"map", "imap", "imap_unordered", "starmap", "apply", "apply_async", "map_async",
                          "starmap_async"})
_DEFAULT = "default"  # the default context: its method is read when the call is reached


@dataclass(frozen=True)
class _Value:
    """What a name or expression of the cell is, as far as this check cares."""

    kind: str  # module, pool_module, context, pool_factory, process_class, pool, pool_method,
    # get_context, set_start_method, function
    method: str = _DEFAULT  # start method of a context, pool or process class
    name: str = ""  # a function's name; a pool method's name


@dataclass(frozen=True)
class Hang:
    line: int
    via: str  # ``pool.map``, ``Process``
    function: str
    method: str

    @property
    def text(self) -> str:
        return (f"`{self.via}` runs `{self.function}`, defined in the notebook, in workers started by "
                f"{self.method}: they cannot import it from the notebook and the cell would hang; "
                f"move `{self.function}` to a .py module and import it")


def find_hangs(tree: ast.Module, namespace) -> list[Hang]:
    """The calls of ``tree`` that would run a notebook function in spawned workers."""
    mp = sys.modules.get("multiprocessing")
    if mp is None or namespace is None:
        return []
    walker = _Walker(mp, namespace)
    try:
        walker.visit(tree)
    except RecursionError:  # absurdly nested code: the cap still protects
        return []
    return walker.hangs


def live_start_method(mp: types.ModuleType) -> str:
    """The start method the next pool of the default context uses, without fixing it."""
    method = mp.get_start_method(allow_none=True)
    return method if type(method) is str else mp.get_all_start_methods()[0]


class _Walker(ast.NodeVisitor):
    """Follows the cell in order: names it binds, then the calls that start workers."""

    def __init__(self, mp: types.ModuleType, namespace) -> None:
        from kernel_guard.userns import entries

        self.mp = mp
        self.namespace = entries(namespace)  # exact-str keys only: no user key's __eq__ runs on a lookup
        self.bound: dict[str, _Value | None] = {}
        self.cell_method: str | None = None  # set_start_method(...) earlier in this cell
        self.hangs: list[Hang] = []
        self._checked: set[int] = set()  # call nodes: a call is resolved again where it is a callee
        self._depth = 0  # inside a def or class: names there are not module level

    # -- what names hold ----------------------------------------------------------

    def lookup(self, name: str) -> _Value | None:
        if name in self.bound:
            return self.bound[name]
        return self.read(self.namespace[name], name) if name in self.namespace else None

    def read(self, value: Any, name: str) -> _Value | None:
        """A live value, by exact type or identity with the stdlib's own objects."""
        mp = self.mp
        context = sys.modules.get("multiprocessing.context")
        pool = sys.modules.get("multiprocessing.pool")
        kind = type(value)
        if kind is functools.partial:
            value, kind = value.func, type(value.func)
        if kind is types.FunctionType:
            module = value.__module__  # anything can be assigned there: compared only as an exact str
            return _Value("function", name=value.__name__) if type(module) is str and module == "__main__" else None
        if value is mp:
            return _Value("module")
        if pool is not None and value is pool:
            return _Value("pool_module")
        if context is not None:
            method = _context_method(value, context)
            if method is not None:
                return _Value("context", method)
            processes = {context.Process: _DEFAULT, context.ForkProcess: "fork", context.SpawnProcess: "spawn"}
            if hasattr(context, "ForkServerProcess"):
                processes[context.ForkServerProcess] = "forkserver"
            for cls, method in processes.items():
                if value is cls:
                    return _Value("process_class", method)
        functions = vars(mp)
        if value is functions.get("Pool") or (pool is not None and value is pool.Pool):
            return _Value("pool_factory")
        if value is functions.get("get_context"):
            return _Value("get_context")
        if value is functions.get("set_start_method"):
            return _Value("set_start_method")
        if pool is not None and kind is pool.Pool and context is not None:
            method = _context_method(vars(value).get("_ctx"), context)
            return None if method is None else _Value("pool", method)
        return None

    def resolve(self, node: ast.expr) -> _Value | None:
        if isinstance(node, ast.Name):  # the cell's own syntax tree: isinstance runs nothing of the user's
            return self.lookup(node.id)
        if isinstance(node, ast.Attribute):
            return _attribute(self.resolve(node.value), node.attr)
        if isinstance(node, ast.Call):
            return self.called(node)
        return None

    def called(self, node: ast.Call) -> _Value | None:
        """The value a call returns, checking it first."""
        func = self.resolve(node.func)
        if func is None:
            return None
        if func.kind == "process_class":
            target = _argument(node, "target", 1)
            self.check(node, "Process", target, func.method)
            return None
        if func.kind == "pool_method":
            self.check(node, f"pool.{func.name}", _argument(node, "func", 0), func.method)
            return None
        if func.kind == "pool_factory":
            given = _argument(node, "context", 4)
            context = self.resolve(given) if given is not None else None
            return _Value("pool", context.method if context is not None and context.kind == "context" else func.method)
        if func.kind in ("get_context", "set_start_method"):
            first = _argument(node, "method", 0)
            method = first.value if type(first) is ast.Constant else _DEFAULT if first is None else None
            if type(method) is not str:
                return None
            if func.kind == "get_context":
                return _Value("context", method)
            self.cell_method = method
        return None

    def check(self, node: ast.Call, via: str, target: ast.expr | None, method: str) -> None:
        if id(node) in self._checked:
            return
        self._checked.add(id(node))
        function = self.resolve(target) if target is not None else None
        if function is None or function.kind != "function":
            return
        if method == _DEFAULT:
            method = self.cell_method or live_start_method(self.mp)
        if method in HANGING:
            self.hangs.append(Hang(node.lineno, via, function.name, method))

    # -- the cell, in order ----------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)  # arguments first, as Python evaluates them
        self.called(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        value = self.resolve(node.value)
        for target in node.targets:
            self.bind(target, value)

    def visit_With(self, node: ast.With) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:  # ``with Pool() as pool``: the pool itself
                self.bind(item.optional_vars, self.resolve(item.context_expr))
        for stmt in node.body:
            self.visit(stmt)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if self._depth == 0:  # module level: it is an attribute of the notebook's __main__
            self.bound[node.name] = _Value("function", name=node.name)
        self._nested(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.bound[node.name] = None
        self._nested(node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        return  # a lambda fails to pickle at once, in the kernel: no hang

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name == "multiprocessing" or (alias.name.startswith("multiprocessing.") and not alias.asname):
                self.bound[alias.asname or "multiprocessing"] = _Value("module")
            elif alias.name == "multiprocessing.pool":
                self.bound[alias.asname or "multiprocessing"] = _Value("pool_module")
            else:
                self.bound[alias.asname or alias.name.partition(".")[0]] = None

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        names = {"Pool": _Value("pool_factory"), "Process": _Value("process_class"),
                 "get_context": _Value("get_context"), "set_start_method": _Value("set_start_method")}
        for alias in node.names:
            value = None
            if node.module == "multiprocessing" and not node.level:
                value = _Value("pool_module") if alias.name == "pool" else names.get(alias.name)
            elif node.module == "multiprocessing.pool" and not node.level and alias.name == "Pool":
                value = names["Pool"]
            self.bound[alias.asname or alias.name] = value

    def _nested(self, node: ast.AST) -> None:
        self._depth += 1
        try:
            self.generic_visit(node)
        finally:
            self._depth -= 1

    def bind(self, target: ast.expr, value: _Value | None) -> None:
        if self._depth:
            return
        if type(target) is ast.Name:
            self.bound[target.id] = value
        else:
            for node in ast.walk(target):
                if type(node) is ast.Name:
                    self.bound[node.id] = None


def _attribute(base: _Value | None, attr: str) -> _Value | None:
    if base is None:
        return None
    if base.kind == "module":
        table = {"Pool": "pool_factory", "Process": "process_class", "get_context": "get_context",
                 "set_start_method": "set_start_method", "pool": "pool_module"}
        return _Value(table[attr]) if attr in table else None
    if base.kind == "pool_module":
        return _Value("pool_factory") if attr == "Pool" else None
    if base.kind == "context":
        kinds = {"Pool": "pool_factory", "Process": "process_class"}
        return _Value(kinds[attr], base.method) if attr in kinds else None
    if base.kind == "pool" and attr in POOL_METHODS:
        return _Value("pool_method", base.method, attr)
    return None


def _context_method(value: object, context: types.ModuleType) -> str | None:
    """The start method of a multiprocessing context object, by its exact class."""
    kind = type(value)
    if kind is context.DefaultContext:
        return _DEFAULT
    for name in ("ForkContext", "SpawnContext", "ForkServerContext"):
        cls = vars(context).get(name)
        if cls is not None and kind is cls:
            method = vars(cls).get("_name")
            return method if type(method) is str else None
    return None


def _argument(node: ast.Call, keyword: str, position: int) -> ast.expr | None:
    for item in node.keywords:
        if item.arg == keyword:
            return item.value
    args = node.args
    if any(type(arg) is ast.Starred for arg in args[: position + 1]):
        return None
    return args[position] if position < len(args) else None
