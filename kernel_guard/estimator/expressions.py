"""Expressions for the abstract interpreter: arithmetic on arrays, indexing,
attributes, comprehensions, and calls (numpy's table, builtins, methods of
arrays, generators and containers, functions defined in the code)."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, cast

import numpy as np

from kernel_guard.estimator import libraries, shapes
from kernel_guard.estimator.abstract import (
    Array,
    Container,
    Foreign,
    Instance,
    Loop,
    Method,
    Ref,
    Sized,
    UserFunction,
)
from kernel_guard.estimator.control import Stop
from kernel_guard.estimator.dtypes import NAMED, as_dtype
from kernel_guard.estimator.signatures import SIGNATURES, UFUNCS, new, operator_call, ufunc_call
from kernel_guard.estimator.values import BUILTINS, UNKNOWN, Folder, is_constant

MAX_CALL_DEPTH = 3
# Calls after which nothing more of the cell runs.
EXIT_CALLS = frozenset({"sys.exit", "builtins.exit", "builtins.quit", "os._exit", "os.abort"})
# Names a star import of numpy provides besides the signature table and dtypes.
STAR_REFS = frozenset({"numpy.random", "numpy.dtype", "numpy.linalg"})
# Module attributes that are plain constants.
NUMPY_CONSTANTS = {"numpy.newaxis": None, "numpy.pi": np.pi, "numpy.e": np.e, "numpy.inf": np.inf, "numpy.nan": np.nan}
GROWTH_METHODS = frozenset({"append", "appendleft", "extend", "extendleft", "insert", "add", "update", "setdefault"})


class Expressions(Folder):
    """The expression half of ``Program`` (which supplies names, loops,
    containers and statements); kept apart to keep each module to one job."""

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

    # State and statements ``Program`` supplies.
    bindings: dict[str, object]
    loops: list[Loop]
    _active: list[UserFunction]
    _returns: list[object] | None
    _quiet: int
    _current: ast.AST | None
    _anchor: ast.AST | None

    if TYPE_CHECKING:

        def _lookup(self, name: str) -> object: ...
        def unwrap(self, value: object) -> object: ...
        def allocate(self, value: object, node: ast.AST | None = None) -> object: ...
        def bind(self, name: str, value: object) -> None: ...
        def assign(self, target: ast.expr, value: object) -> None: ...
        def exec_block(self, body: list[ast.stmt]) -> None: ...
        def _function(self, node: ast.FunctionDef | ast.Lambda) -> UserFunction: ...
        def _trip(self, node: ast.AST, value: object) -> int | float | None: ...
        def _element(self, iterable: object) -> object: ...
        def _put(self, container: Container, value: object, node: ast.AST, target: str, distinct: bool) -> None: ...
        def _extend(self, container: Container, value: object, node: ast.AST, target: str) -> None: ...
        def _distinct_key(self, key_node: ast.AST) -> bool: ...

    def name(self, node: ast.Name) -> object:
        return self._lookup(node.id)

    def binop(self, node: ast.BinOp) -> object:
        left = self.visit(node.left)
        right = self.visit(node.right)
        return self.value_of_binop(node.op, left, right, node)

    def value_of_binop(self, op: ast.operator, left: object, right: object, node: ast.AST) -> object:
        if isinstance(left, Foreign) or isinstance(right, Foreign):
            return self.allocate(libraries.operator(type(op).__name__, [left, right], self), node)
        if type(left) is Array or type(right) is Array:
            return self._array_op(type(op).__name__, [left, right], node)
        left, right = self.unwrap(left), self.unwrap(right)
        if left is UNKNOWN or right is UNKNOWN:
            return UNKNOWN
        return self.fold_binop(op, left, right)

    def _array_op(self, op_name: str, operands: list[object], node: ast.AST) -> object:
        return self.allocate(operator_call(op_name, [self.unwrap(v) for v in operands]), node)

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
        if isinstance(base, Foreign):
            return self.allocate(libraries.subscript(base, self.unwrap(self.visit(node.slice)), self), node)
        if type(base) in (tuple, list) and not is_constant(base):
            items = cast("tuple | list", base)
            key = self.unwrap(self.visit(node.slice))
            return items[key] if type(key) is int and -len(items) <= key < len(items) else UNKNOWN
        return super().fold_subscript(node, self.unwrap(base))

    def _index_array(self, base: Array, node: ast.Subscript) -> object:
        parts = node.slice.elts if type(node.slice) is ast.Tuple else [node.slice]
        key: list[object] = []
        for part in parts:
            if type(part) is ast.Slice:
                ends = (part.lower, part.upper, part.step)
                bounds = [None if p is None else self.unwrap(self.visit(p)) for p in ends]
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
            elif type(value) in (list, tuple) and value and all(type(v) is int for v in cast("list | tuple", value)):
                key.append(shapes.Advanced(len(cast("list | tuple", value))))
            elif (
                type(value) is Array
                and value.dtype is not None
                and value.dtype.kind in "iu"
                and value.shape is not None
                and len(value.shape) == 1
            ):
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
        if type(base) is Ref:
            qualname = f"{base.qualname}.{attr}"
            return NUMPY_CONSTANTS[qualname] if qualname in NUMPY_CONSTANTS else Ref(qualname)
        if type(base) is Array:
            return self._array_attribute(base, attr)
        if kind in (Instance, Container):
            return Method(base, attr)
        if isinstance(base, Foreign):
            return self.allocate(libraries.attribute(base, attr, self), node)
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
            return base.dtype.itemsize * (cast(int, base.size) if attr == "nbytes" else 1)  # shape is known
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
            if isinstance(node, ast.DictComp):
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
                    positional.extend(cast("tuple | list", spread))
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
        if type(func) is Ref:
            return self._call_ref(func.qualname, positional, keywords, node)
        if type(func) is Method:
            return self._call_method(func, positional, keywords, node)
        if type(func) is UserFunction:
            return self.call_user(func, positional, keywords)
        return UNKNOWN

    def _call_ref(self, qualname: str, positional: list, keywords: dict, node: ast.Call) -> object:
        known = libraries.call(qualname, positional, keywords, self)
        if known is not None:
            return known
        sig = SIGNATURES.get(qualname)
        if sig is not None:
            args = sig.bind(positional, keywords)
            return UNKNOWN if args is None else sig.build(args, self)
        if qualname in UFUNCS:
            return ufunc_call(UFUNCS[qualname], None, positional, keywords)
        base, _, method = qualname.rpartition(".")
        if base in UFUNCS:
            return ufunc_call(UFUNCS[base], method, positional, keywords)
        if qualname in EXIT_CALLS:
            raise Stop
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
                if name == "tuple":
                    return ()
                return Container(kind, tuple(self.loops), [], None if kind != "list" else [], 0)
            source = positional[0]
            if type(source) is Container and source.kind != "generator" and name != "dict":
                items = list(source.items)
                copy = Container(kind, tuple(self.loops), items, source.const and list(source.const), source.length)
                return copy if name != "tuple" else UNKNOWN
            const = self.unwrap(source)
            if name in ("list", "tuple") and type(const) in (tuple, list, range, str):
                sequence = cast("tuple | list | range | str", const)
                if len(sequence) <= 10_000:
                    return list(sequence) if name == "list" else tuple(sequence)
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
        if isinstance(receiver, Foreign):
            return libraries.method(receiver, method.name, positional, keywords, self)
        if kind is Array:
            sig = SIGNATURES.get(f"numpy.ndarray.{method.name}")
            if sig is None:
                return UNKNOWN
            args = sig.bind([receiver, *positional], keywords)
            return UNKNOWN if args is None else sig.build(args, self)
        if type(receiver) is Instance:
            sig = SIGNATURES.get(f"{receiver.cls}.{method.name}")
            if sig is None:
                return UNKNOWN
            args = sig.bind(positional, keywords)
            return UNKNOWN if args is None else sig.build(args, self)
        if type(receiver) is Container and method.name in GROWTH_METHODS:
            target = target_name(node.func.value) if type(node.func) is ast.Attribute else receiver.kind
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
        if len(self._active) >= MAX_CALL_DEPTH or any(f.node is function.node for f in self._active):
            return UNKNOWN
        local = self._bind_parameters(function, positional, keywords)
        if local is None:
            return UNKNOWN
        outer, outer_returns, outer_anchor = self.bindings, self._returns, self._anchor
        self.bindings, self._returns = local, []
        self._anchor = outer_anchor or self._current
        self._active.append(function)
        try:
            if isinstance(function.node, ast.Lambda):
                return self.visit(function.node.body)
            try:
                self.exec_block(function.node.body)
                self._returns.append(None)  # the end of the body: returns None
            except Stop:
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


def target_name(node: ast.AST) -> str:
    return node.id if type(node) is ast.Name else ast.unparse(node)

