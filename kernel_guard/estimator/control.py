"""Control-flow facts the interpreter needs about loops, from the syntax alone:
which names a loop body carries from one iteration to the next, what can end a
loop, and which calls pass a trip count through."""

from __future__ import annotations

import ast

# Calls whose trip count is their first argument's (``for i, x in enumerate(xs)``).
PASS_THROUGH = frozenset(
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
TRANGE = frozenset({"tqdm.trange", "tqdm.auto.trange", "tqdm.notebook.trange", "tqdm.std.trange"})
# Statements and expressions that leave a loop whatever surrounds them.
LEAVING = (ast.Return, ast.Raise, ast.Assert, ast.Yield, ast.YieldFrom, ast.Await)
# Calls (by their last name, whatever object they are called on: erring towards
# "the loop can end" keeps the linter silent) that end the program...
EXIT_CALLS = frozenset({"exit", "_exit", "quit", "abort", "terminate"})
# ...or conventionally end a loop by raising: StopIteration (next), TF's OutOfRangeError
# (sess.run, get_next), EOFError (input, pickle.load), IndexError or KeyError (pop),
# queue.Empty (get_nowait), HTTP errors (raise_for_status)...
EXHAUSTING_CALLS = frozenset(
    {"next", "__next__", "send", "throw", "run", "get_next", "load", "input", "raw_input", "pop", "popleft",
     "popitem", "get_nowait", "recv", "raise_for_status", "result", "check_returncode"}
)
LEAVING_CALLS = EXIT_CALLS | EXHAUSTING_CALLS


def call_name(call: ast.Call) -> str | None:
    """The last name of what is called: ``f`` for ``f()``, ``m`` for ``a.b.m()``."""
    func = call.func
    if type(func) is ast.Name:
        return func.id
    if type(func) is ast.Attribute:
        return func.attr
    return None


def call_leaves(call: ast.Call) -> bool:
    """Whether a call may leave the loop around it by its name alone: an exit, a call
    that ends loops by raising, or ``q.get(timeout=...)`` (raises ``queue.Empty``)."""
    name = call_name(call)
    if name in LEAVING_CALLS:
        return True
    return name == "get" and any(keyword.arg in ("timeout", "block") for keyword in call.keywords)


# numpy calls that rebuild an array from itself plus more (``a = np.append(a, x)``).
REBUILDERS = frozenset(
    {"numpy.append", "numpy.concatenate", "numpy.vstack", "numpy.hstack", "numpy.stack", "numpy.column_stack"}
)


class Order(ast.NodeVisitor):
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

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
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


class Stop(Exception):
    """The rest of the block does not run: a ``return``, a ``raise``, an exit."""


def loop_names(node: ast.For | ast.While) -> Order:
    order = Order()
    if type(node) is ast.While:
        order.visit(node.test)
    for stmt in node.body:
        order.visit(stmt)
    return order


def names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if type(n) is ast.Name}


def trange_like(node: ast.Call) -> bool:
    """``tqdm(xs, desc=...)``: keywords that do not change the iteration."""
    return all(k.arg not in (None, "total") for k in node.keywords)
