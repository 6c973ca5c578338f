"""Control-flow and binding facts over the stdlib ``ast`` of a document's cells,
shared by the loop, recursion, exception and output rules (KG2, KG3, KG4, KG6).

Everything here errs towards silence: when a fact cannot be established (a name
bound twice, a call that may raise on purpose, a loop inside a ``try``), the
answer is the one that produces no finding.  The notebook-wide facts cost one walk
of every cell, so they are built lazily, only for documents with a candidate.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeVar, cast
from weakref import proxy

from kernel_guard.estimator import UNKNOWN, evaluate
from kernel_guard.estimator.control import EXIT_CALLS, LEAVING_CALLS, call_leaves, call_name
from kernel_guard.lint.names import BUILTIN_NAMES, UNKNOWN_BINDING, import_bindings

if TYPE_CHECKING:
    from kernel_guard.lint.context import LintContext, Located
    from kernel_guard.source import Cell

FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
Loop = ast.For | ast.AsyncFor | ast.While
LOOPS: tuple[type[Loop], ...] = (ast.For, ast.AsyncFor, ast.While)
N = TypeVar("N", bound=ast.AST)

# Calls that end the program, and all calls that may leave a loop: one table, the estimator's.
EXIT_NAMES = EXIT_CALLS
# Builtins that read their arguments without changing them.
READ_ONLY_BUILTINS = frozenset(
    {"print", "len", "str", "repr", "int", "float", "bool", "abs", "round", "format", "min", "max", "sum",
     "sorted", "list", "tuple", "set", "frozenset", "enumerate", "zip", "range", "isinstance", "type", "id",
     "hash", "any", "all", "reversed", "dict", "display"}
)


# Cheap text tests run before any walk: a statement starting a line.
WHILE_LINE = re.compile(r"^[ \t]*while\b", re.MULTILINE)
LOOP_LINE = re.compile(r"^[ \t]*(?:async[ \t]+)?(?:for|while)\b", re.MULTILINE)
# A ``while`` statement, or a ``for`` over something that may be an endless iterator.
ENDLESS_LINE = re.compile(r"^[ \t]*(?:while\b|for\b.*\b(?:count|cycle|repeat|iter)\()", re.MULTILINE)


callee = call_name  # the last name of what is called: ``f`` for ``f()``, ``m`` for ``a.b.m()``


def scope_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """``node``'s descendants that run with it: nested functions, lambdas and
    classes are not entered (defining them runs nothing)."""
    stack = list(ast.iter_child_nodes(node))
    while stack:
        child = stack.pop()
        yield child
        if not isinstance(child, SCOPES):
            stack.extend(ast.iter_child_nodes(child))


def body_nodes(statements: list[ast.stmt]) -> Iterator[ast.AST]:
    for statement in statements:
        yield statement
        if not isinstance(statement, SCOPES):
            yield from scope_nodes(statement)


def with_ancestors(tree: ast.AST, wanted: tuple[type[N], ...]) -> Iterator[tuple[N, tuple[ast.AST, ...]]]:
    """Every node of one of the ``wanted`` types with its ancestors (outermost first)."""
    stack: list[tuple[ast.AST, tuple[ast.AST, ...]]] = [(tree, ())]
    while stack:
        node, ancestors = stack.pop()
        if isinstance(node, wanted):
            yield node, ancestors
        inner = ancestors + (node,)
        stack.extend((child, inner) for child in reversed(list(ast.iter_child_nodes(node))))


def statements_with_ancestors(
    tree: ast.AST, wanted: tuple[type[N], ...]
) -> Iterator[tuple[N, tuple[ast.AST, ...]]]:
    """Like ``with_ancestors`` for statements (and ``except``/``case`` clauses),
    descending only through statement bodies: several times cheaper."""
    stack: list[tuple[ast.AST, tuple[ast.AST, ...]]] = [(tree, ())]
    while stack:
        node, ancestors = stack.pop()
        if isinstance(node, wanted):
            yield node, ancestors
        inner = ancestors + (node,)
        children = []
        for name in _BODIES.get(type(node), ()):
            children.extend(getattr(node, name))
        stack.extend((child, inner) for child in reversed(children))


_BODIES: dict[type, tuple[str, ...]] = {
    ast.Module: ("body",),
    ast.FunctionDef: ("body",),
    ast.AsyncFunctionDef: ("body",),
    ast.ClassDef: ("body",),
    ast.For: ("body", "orelse"),
    ast.AsyncFor: ("body", "orelse"),
    ast.While: ("body", "orelse"),
    ast.If: ("body", "orelse"),
    ast.With: ("body",),
    ast.AsyncWith: ("body",),
    ast.Try: ("body", "handlers", "orelse", "finalbody"),
    ast.ExceptHandler: ("body",),
}
if hasattr(ast, "TryStar"):
    _BODIES[ast.TryStar] = _BODIES[ast.Try]
if hasattr(ast, "Match"):
    _BODIES[ast.Match] = ("cases",)
    _BODIES[ast.match_case] = ("body",)


def local_ancestors(ancestors: tuple[ast.AST, ...]) -> tuple[ast.AST, ...]:
    """The ancestors inside the innermost function, lambda or class (or module)."""
    for index in range(len(ancestors) - 1, -1, -1):
        if isinstance(ancestors[index], SCOPES):
            return ancestors[index + 1 :]
    return ancestors[1:]


def enclosing_scope(ancestors: tuple[ast.AST, ...]) -> ast.AST | None:
    """The innermost function, lambda or class around a node; ``None`` at module level."""
    return next((node for node in reversed(ancestors) if isinstance(node, SCOPES)), None)


_TRIES: tuple[type[ast.Try], ...] = (ast.Try, getattr(ast, "TryStar", ast.Try))


def in_try_body(ancestors: tuple[ast.AST, ...], node: ast.AST, catches=None) -> bool:
    """Whether ``node`` runs in the body of a ``try`` of its scope whose handlers
    catch (``catches(handler)`` true; default: any handler at all)."""
    chain = local_ancestors(ancestors) + (node,)
    for index, ancestor in enumerate(chain[:-1]):
        if isinstance(ancestor, _TRIES) and ancestor.handlers:
            child = chain[index + 1]
            if any(child is statement for statement in ancestor.body):
                if catches is None or any(catches(handler) for handler in ancestor.handlers):
                    return True
    return False


def handler_names(handler: ast.ExceptHandler) -> set[str] | None:
    """The exception names a handler catches; ``None`` for a bare ``except:``."""
    if handler.type is None:
        return None
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    names = set()
    for kind in types:
        if isinstance(kind, ast.Name):
            names.add(kind.id)
        elif isinstance(kind, ast.Attribute):
            names.add(kind.attr)
        else:
            names.add("?")
    return names


def head_position(cell: Cell, statement: ast.stmt, head: Located) -> tuple[int, int, int, int]:
    """From the start of a compound statement to the end of its header expression."""
    from kernel_guard.lint.context import LintContext

    start = LintContext.ast_position(cell, statement)
    end = LintContext.ast_position(cell, head)
    return start[0], start[1], end[2], end[3]


def source_of(node: ast.AST, source: str | None = None, limit: int = 40) -> str:
    """Short code for a message: as written in ``source`` when given, else unparsed."""
    text = (ast.get_source_segment(source, node) if source else None) or ast.unparse(node)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Facts:
    """Notebook-wide facts about names, from one walk of every cell."""

    def __init__(self, context: LintContext) -> None:
        # A proxy: the context keeps the facts (``LintContext.shared``); no cycle back.
        self.context = proxy(context)
        self.bindings: Counter[str] = Counter()  # binding sites of each name, in all scopes
        self.import_targets: dict[str, set[str]] = defaultdict(set)
        self.import_bindings: Counter[str] = Counter()
        self.declared_global: set[str] = set()  # in a ``global`` or ``nonlocal`` statement
        self.assigned: dict[str, list[ast.expr]] = defaultdict(list)  # ``name = value`` values
        self.augmented: Counter[str] = Counter()  # ``name += value`` sites
        # Every load of a name: (node, parent, innermost function or lambda or None, cell);
        # the parent of a keyword argument's value is the call.
        self.loads: dict[str, list[tuple[ast.Name, ast.AST | None, ast.AST | None, Cell]]] = defaultdict(list)
        self.defs: dict[str, list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, Cell]]] = defaultdict(list)  # any depth
        self.module_defs: dict[str, list[tuple[ast.AST, Cell]]] = defaultdict(list)
        for cell in context.cells:
            tree = context.trees.get(id(cell))
            if tree is not None:
                self._scan(tree, cell)
        self.raising = self._raising_functions()

    # -- building -----------------------------------------------------------------

    def _scan(self, tree: ast.Module, cell: Cell) -> None:
        for statement in tree.body:
            if isinstance(statement, FUNCTIONS):
                self.module_defs[statement.name].append((statement, cell))
        # Any: one dispatch on the exact type per node (the hot loop of a run), not isinstance chains.
        stack: list[tuple[Any, ast.AST | None, ast.AST | None]] = [(tree, None, None)]
        while stack:
            node, parent, function = stack.pop()
            kind = type(node)
            if kind is ast.Name:
                if type(node.ctx) is ast.Load:
                    self.loads[node.id].append((node, parent, function, cell))
                else:
                    self.bindings[node.id] += 1
            elif kind is ast.Assign:
                for target in node.targets:
                    if type(target) is ast.Name:
                        self.assigned[target.id].append(node.value)
            elif kind is ast.AugAssign and type(node.target) is ast.Name:
                self.augmented[node.target.id] += 1
            elif kind in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef):
                self.bindings[node.name] += 1
                if kind is not ast.ClassDef:
                    self.defs[node.name].append((node, cell))
            elif kind is ast.arg:
                self.bindings[node.arg] += 1
            elif kind is ast.Import or kind is ast.ImportFrom:
                self._import(node)
            elif kind is ast.Global or kind is ast.Nonlocal:
                self.declared_global.update(node.names)
                for name in node.names:
                    self.bindings[name] += 2
            elif kind is ast.ExceptHandler and node.name:
                self.bindings[node.name] += 1
            elif kind in (ast.MatchAs, ast.MatchStar) and node.name:
                self.bindings[node.name] += 1
            inner = node if kind in (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda) else function
            holder = parent if kind is ast.keyword else node  # a keyword argument's value: parent is the call
            stack.extend((child, holder, inner) for child in ast.iter_child_nodes(node))

    def _import(self, node: ast.Import | ast.ImportFrom) -> None:
        for name, target in import_bindings(node):
            target = UNKNOWN_BINDING if target.startswith(".") else target  # relative to an unknown package
            self.bindings[name] += 1
            self.import_bindings[name] += 1
            self.import_targets[name].add(target)

    def _raising_functions(self) -> set[str]:
        """Names of the functions defined here that may raise or exit on purpose
        (a ``raise``, ``assert``, exit or exhausting call, or a call to another)."""
        direct: dict[str, set[str]] = {}
        raising = set()
        for name, definitions in self.defs.items():
            calls = direct.setdefault(name, set())
            for definition, _ in definitions:
                for node in body_nodes(definition.body):
                    if isinstance(node, (ast.Raise, ast.Assert)):
                        raising.add(name)
                    elif isinstance(node, ast.Call):
                        called = callee(node)
                        if called in LEAVING_CALLS:
                            raising.add(name)
                        elif called:
                            calls.add(called)
        changed = True
        while changed:
            changed = False
            for name, calls in direct.items():
                if name not in raising and calls & raising:
                    raising.add(name)
                    changed = True
        return raising

    # -- queries ------------------------------------------------------------------

    def resolve(self, node: ast.AST) -> str | None:
        """The qualified name an expression stands for (``it.count`` -> ``itertools.count``,
        ``print`` -> ``builtins.print``), or ``None`` when it is not certain.  A name
        bound nowhere in the document may be bound before it (``context.before``)."""
        attributes = []
        while isinstance(node, ast.Attribute):  # a loop, not recursion: chains may be thousands long
            attributes.append(node.attr)
            node = node.value
        base = self._resolve_name(node)
        if attributes and (base is None or base.startswith("builtins.")):
            return None
        return base and base + "".join(f".{attribute}" for attribute in reversed(attributes))

    def _resolve_name(self, node: ast.AST) -> str | None:
        if not isinstance(node, ast.Name):
            return None
        name = node.id
        if self.bindings[name] == 0:
            before = self.context.before.get(name)
            if before is not None:
                return None if before == UNKNOWN_BINDING else before
            return f"builtins.{name}" if name in BUILTIN_NAMES else None
        targets = self.import_targets.get(name)
        if targets and len(targets) == 1 and self.import_bindings[name] == self.bindings[name]:
            target = next(iter(targets))
            return None if target == "?" else target
        return None

    def unbound(self, name: str) -> bool:
        """Whether ``name`` is bound neither in the document nor before it: a builtin, or unknown."""
        return self.bindings[name] == 0 and name not in self.context.before

    def is_builtin(self, node: ast.AST, name: str) -> bool:
        return isinstance(node, ast.Name) and node.id == name and self.unbound(name)

    def unique_function(self, name: str) -> ast.FunctionDef | None:
        """The module-level ``def name`` when it is the only binding of ``name``."""
        definitions = self.module_defs.get(name, [])
        if len(definitions) == 1 and self.bindings[name] == 1:
            definition = definitions[0][0]
            return definition if isinstance(definition, ast.FunctionDef) else None
        return None

    def only_called(self, function: ast.FunctionDef) -> bool:
        """Whether a module-level function runs in the kernel's own thread: it is
        called by name somewhere else, and never handed over as a value (a thread
        target, a callback) nor decorated."""
        if function.decorator_list or self.unique_function(function.name) is not function:
            return False
        called = False
        for node, parent, scope, _ in self.loads[function.name]:
            if not (isinstance(parent, ast.Call) and parent.func is node) or isinstance(scope, ast.Lambda):
                return False
            called = called or scope is not function
        return called

    def call_may_leave(self, call: ast.Call) -> bool:
        """Whether a call may end the loop around it: an exit, a call that ends
        loops by raising, or a function of the notebook that may raise."""
        return call_leaves(call) or callee(call) in self.raising

    def escapes(self, loop: Loop) -> bool:
        """Whether a loop can be left other than by its header: a ``break`` of its
        own, ``return``, ``raise``, ``assert``, ``yield``, ``await``, or a call that
        may leave (see ``call_may_leave``)."""
        return self._block_escapes(loop.body, nested=False)

    def _block_escapes(self, statements: list[ast.stmt], nested: bool) -> bool:
        for statement in statements:
            kind = type(statement)
            if kind in (ast.Return, ast.Raise, ast.Assert) or (kind is ast.Break and not nested):
                return True
            if isinstance(statement, SCOPES):
                continue
            for field, value in ast.iter_fields(statement):
                if isinstance(value, ast.AST):
                    value = [value]
                elif not isinstance(value, list):
                    continue
                inner = nested or (kind in LOOPS and field == "body")
                for item in value:
                    if isinstance(item, ast.stmt):
                        if self._block_escapes([item], inner):
                            return True
                    elif isinstance(item, (ast.ExceptHandler, ast.match_case)):
                        if self._block_escapes(item.body, inner) or self._expr_escapes(item):
                            return True
                    elif isinstance(item, ast.AST) and self._expr_escapes(item):
                        return True
        return False

    def _expr_escapes(self, expression: ast.AST) -> bool:
        nodes = [expression] if not isinstance(expression, (ast.ExceptHandler, ast.match_case)) else []
        if isinstance(expression, ast.ExceptHandler) and expression.type is not None:
            nodes.append(expression.type)
        elif isinstance(expression, ast.match_case) and expression.guard is not None:
            nodes.append(expression.guard)
        for root in nodes:
            for node in (root, *scope_nodes(root)):
                if isinstance(node, (ast.Yield, ast.YieldFrom, ast.Await)):
                    return True
                if isinstance(node, ast.Call) and self.call_may_leave(node):
                    return True
        return False

    def never_ends(self, loop: Loop, ancestors: tuple[ast.AST, ...]) -> bool:
        """Whether a loop that nothing inside can leave certainly runs forever when
        it runs: it is not inside a ``try`` (whose handler would be its way out),
        and it is at module level or in a plain function called in the kernel's
        thread (not a generator, a coroutine, a method, a thread target)."""
        if self.escapes(loop) or in_try_body(ancestors, loop):
            return False
        scope = enclosing_scope(ancestors)
        if scope is None:
            return True
        if not isinstance(scope, ast.FunctionDef) or enclosing_scope(ancestors[: ancestors.index(scope)]) is not None:
            return False
        if any(isinstance(node, (ast.Yield, ast.YieldFrom)) for node in body_nodes(scope.body)):
            return False
        return self.only_called(scope)


def facts(context: LintContext) -> Facts:
    """The document's facts, built on first use and shared by all rules."""
    return cast(Facts, context.shared(Facts, lambda: Facts(context)))


def quick_value(node: ast.expr, context: LintContext) -> object:
    """The constant value of ``node``: literals first, notebook constants only
    when every name it reads may be one (building them walks the whole document)."""
    value = evaluate(node, lambda name: UNKNOWN)
    if value is UNKNOWN and _names(node) <= set(_constant_candidates(context)):
        value = evaluate(node, context.constant)
    return value


def tentative_value(node: ast.expr, context: LintContext) -> object:
    """What ``quick_value`` would give if each name read were bound only by its
    last top-level assignment: cheap, for ruling candidates out (confirm with
    ``quick_value`` before reporting)."""
    candidates = _constant_candidates(context)
    seen: set[str] = set()

    def lookup(name: str) -> object:
        if name in seen or name not in candidates:
            return UNKNOWN
        seen.add(name)
        return evaluate(candidates[name], lookup)

    return evaluate(node, lookup)


def _names(node: ast.expr) -> set[str]:
    """Names read by ``node`` other than the functions it calls."""
    called = {id(sub.func) for sub in ast.walk(node) if isinstance(sub, ast.Call)}
    return {sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name) and id(sub) not in called}


_FOLDABLE = (ast.Constant, ast.Name, ast.BinOp, ast.UnaryOp, ast.Tuple, ast.List, ast.Compare, ast.BoolOp, ast.IfExp,
             ast.Call, ast.Subscript, ast.Load, ast.operator, ast.unaryop, ast.cmpop, ast.boolop, ast.Slice)


def _constant_candidates(context: LintContext) -> dict[str, ast.expr]:
    """Names assigned at the top of a cell to an expression that may fold to a
    constant (literals, arithmetic, builtins), with their last such value: a
    cheap superset of the names ``context.constant`` knows."""
    return cast(dict[str, ast.expr], context.shared(_constant_candidates, lambda: _find_constant_candidates(context)))


def _find_constant_candidates(context: LintContext) -> dict[str, ast.expr]:
    found = {}
    for cell in context.cells:
        tree = context.trees.get(id(cell))
        for statement in tree.body if tree is not None else ():
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                target, value = statement.targets[0], statement.value
            elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
                target, value = statement.target, statement.value
            else:
                continue
            if isinstance(target, ast.Name) and all(
                isinstance(sub, _FOLDABLE) and not (isinstance(sub, ast.Call) and not isinstance(sub.func, ast.Name))
                for sub in ast.walk(value)
            ):
                found[target.id] = value
    return found


# -- shared shapes -----------------------------------------------------------------------

_FIXED_RESULTS = {"int": 0, "float": 0.0, "str": "", "bool": False, "bytes": b"", "list": [], "tuple": (), "dict": {},
                  "complex": 0j}


def endless_iterator(call: ast.expr, facts: Facts) -> bool:
    """``itertools.count()``, ``cycle(x)``, ``repeat(x)``, ``iter(int, 1)`` (also
    inside ``enumerate``): iterators that never run out."""
    if not isinstance(call, ast.Call):
        return False
    if facts.is_builtin(call.func, "enumerate") and call.args:
        return endless_iterator(call.args[0], facts)
    name = facts.resolve(call.func)
    args, keywords = call.args, call.keywords
    if name == "itertools.count":
        return True
    if name == "itertools.cycle":
        return len(args) == 1 and not _empty_literal(args[0])
    if name == "itertools.repeat":
        return len(args) == 1 and not keywords
    if name == "builtins.iter" and len(args) == 2 and not keywords:
        produced = _fixed_result(args[0], facts)
        sentinel = quick_value(args[1], facts.context)
        return produced is not None and sentinel is not UNKNOWN and sentinel != produced[0]
    return False


def _fixed_result(function: ast.expr, facts: Facts) -> tuple | None:
    """``(value,)`` when calling ``function()`` always returns ``value``."""
    if isinstance(function, ast.Name) and function.id in _FIXED_RESULTS and facts.unbound(function.id):
        return (_FIXED_RESULTS[function.id],)
    if isinstance(function, ast.Lambda) and isinstance(function.body, ast.Constant) and not function.args.args:
        return (function.body.value,)
    return None


def _empty_literal(node: ast.expr) -> bool:
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return not node.elts
    if isinstance(node, ast.Dict):
        return not node.keys
    return isinstance(node, ast.Constant) and not node.value


def endless_loop(loop: ast.AST, ancestors: tuple[ast.AST, ...], context: LintContext) -> bool:
    """A ``while`` with a constant true condition or a ``for`` over an endless
    iterator, that nothing inside can leave (see ``Facts.never_ends``).  The
    cheap syntactic checks come first: most loops never need the facts."""
    if isinstance(loop, ast.While):
        if not constant_true(loop.test, context):
            return False
    elif not (isinstance(loop, ast.For) and maybe_endless(loop.iter) and endless_iterator(loop.iter, facts(context))):
        return False
    return facts(context).never_ends(loop, ancestors)


def maybe_endless(iterable: ast.expr) -> bool:
    """Whether ``iterable`` looks like a call of an endless iterator (before resolving names)."""
    while isinstance(iterable, ast.Call) and callee(iterable) == "enumerate" and iterable.args:
        iterable = iterable.args[0]
    return isinstance(iterable, ast.Call) and callee(iterable) in ("count", "cycle", "repeat", "iter")


def constant_true(test: ast.expr, context: LintContext) -> bool:
    value = quick_value(test, context)
    return value is not UNKNOWN and bool(value)


def reads_only(node: ast.Name, parent: ast.AST | None, facts: Facts, methods: frozenset[str] = frozenset()) -> bool:
    """Whether this use of a name cannot change the object it names (``methods``:
    method names also known not to change it)."""
    if isinstance(parent, (ast.Compare, ast.BinOp, ast.BoolOp, ast.UnaryOp, ast.FormattedValue, ast.IfExp, ast.Expr)):
        return True
    if isinstance(parent, (ast.If, ast.While, ast.Assert)):
        return parent.test is node
    if isinstance(parent, ast.Subscript):
        return isinstance(parent.ctx, ast.Load) or parent.slice is node
    if isinstance(parent, ast.AugAssign):
        return parent.value is node
    if isinstance(parent, (ast.For, ast.comprehension)):
        return parent.iter is node
    if isinstance(parent, ast.Attribute):
        return parent.attr in methods
    if isinstance(parent, ast.Call):
        return (
            parent.func is not node
            and isinstance(parent.func, ast.Name)
            and parent.func.id in READ_ONLY_BUILTINS
            and facts.unbound(parent.func.id)
        )
    return False


def unconditional(ancestors: tuple[ast.AST, ...], node: ast.AST, *, loops: bool = True) -> bool:
    """Whether ``node`` runs whenever its scope (function or module) runs: not
    under an ``if``, a conditional expression, the right of ``and``/``or``, a
    comprehension's element, a ``match`` case or an ``except`` handler (and, with
    ``loops=False``, not in a loop body either)."""
    chain = local_ancestors(ancestors) + (node,)
    for parent, child in zip(chain, chain[1:]):
        if isinstance(parent, (ast.If, ast.While)) and child is not parent.test and not (
            loops and isinstance(parent, ast.While) and any(child is s for s in parent.body)
        ):
            return False
        if isinstance(parent, (ast.For, ast.AsyncFor)) and child is not parent.iter and not loops:
            return False
        if isinstance(parent, ast.IfExp) and child is not parent.test:
            return False
        if isinstance(parent, ast.BoolOp) and child is not parent.values[0]:
            return False
        if isinstance(parent, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            if not (child is parent.generators[0] or child is parent.generators[0].iter):
                return False
        if isinstance(parent, ast.comprehension) and child is not parent.iter:
            return False
        if isinstance(parent, (ast.ExceptHandler, ast.match_case, ast.Assert)) or (
            isinstance(parent, ast.Try) and any(child is s for s in parent.orelse)
        ):
            return False
    return True


def catches(handler: ast.ExceptHandler, error: type[BaseException]) -> bool:
    """Whether ``handler`` may catch ``error`` (an unknown name may be an alias: yes)."""
    names = handler_names(handler)
    if names is None:
        return True
    for name in names:
        kind = getattr(builtins, name, None)
        if not (isinstance(kind, type) and issubclass(kind, BaseException)) or issubclass(error, kind):
            return True
    return False
