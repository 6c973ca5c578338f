"""Constant folding over ``ast`` expressions, without ever running user code.

``evaluate(node, lookup)`` folds literals, arithmetic, comparisons, indexing of
constant sequences and a few pure builtins (``min``, ``max``, ``len``, ``int``,
``abs``, ``float``, ``round``, ``sum``, ``range``).  Anything else, and anything
whose result would be large enough to cost real time or memory (``10**10**10``,
``[0] * 10**9``), is ``UNKNOWN``.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import cast


class _Unknown:
    """The one value meaning "not statically known"."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __reduce__(self):
        return (_Unknown, ())


UNKNOWN = _Unknown()

# Folding limits: an int wider than this, or a sequence/string longer, is UNKNOWN.
MAX_INT_BITS = 4096
MAX_LENGTH = 10_000

_SCALARS = (bool, int, float, complex, str, bytes, type(None))


def is_constant(value: object) -> bool:
    """True for the values ``evaluate`` may return (besides ``UNKNOWN``)."""
    kind = type(value)
    if kind in _SCALARS or kind is range:
        return True
    if kind is tuple or kind is list:
        return all(is_constant(item) for item in cast("tuple | list", value))
    return False


def _checked(value: object) -> object:
    kind = type(value)
    if type(value) is int and value.bit_length() > MAX_INT_BITS:
        return UNKNOWN
    if type(value) is float and not math.isfinite(value):
        return value  # inf/nan are legitimate constants (float("inf"))
    if kind in (str, bytes, tuple, list) and len(cast("str | bytes | tuple | list", value)) > MAX_LENGTH:
        return UNKNOWN
    return value


def _bits(value: object) -> int:
    return abs(int(cast(int, value))).bit_length() if type(value) in (int, bool) else 0


def _pow(left, right):
    if type(left) in (int, bool) and type(right) in (int, bool) and right > 0:
        # |left|**right has about bits(left) * right bits: refuse before computing.
        if (_bits(left) - 1) * right > MAX_INT_BITS:
            return UNKNOWN
    elif type(right) in (int, bool) and abs(right) > MAX_INT_BITS and type(left) is complex:
        return UNKNOWN
    return operator.pow(left, right)


def _mul(left, right):
    for seq, count in ((left, right), (right, left)):
        if type(seq) in (str, bytes, tuple, list) and type(count) in (int, bool):
            if len(seq) * max(count, 0) > MAX_LENGTH:
                return UNKNOWN
    return operator.mul(left, right)


def _mod(left, right):
    if type(left) in (str, bytes):
        return UNKNOWN  # printf-style formatting: "%9999999999d" % 1 would be huge
    return operator.mod(left, right)


def _lshift(left, right):
    if type(right) in (int, bool) and right > MAX_INT_BITS:
        return UNKNOWN
    return operator.lshift(left, right)


_BINOPS: dict[type, Callable] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: _mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: _mod,
    ast.Pow: _pow,
    ast.LShift: _lshift,
    ast.RShift: operator.rshift,
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
    ast.BitXor: operator.xor,
}

_UNARY: dict[type, Callable] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
    ast.Not: operator.not_,
    ast.Invert: operator.invert,
}

_COMPARE: dict[type, Callable] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
    ast.In: lambda a, b: operator.contains(b, a),
    ast.NotIn: lambda a, b: not operator.contains(b, a),
}


def _number(value: object) -> bool:
    return type(value) in (int, float, bool)


def _iterable(value: object) -> bool:
    """A non-empty sequence small enough to walk (``range`` may be huge)."""
    return type(value) in (tuple, list, range) and 0 < len(cast("tuple | list | range", value)) <= MAX_LENGTH


def _builtin_min_max(func):
    def fold(*args):
        if len(args) == 1:
            (args,) = args
            if not _iterable(args):
                return UNKNOWN
        if not all(_number(a) for a in args):
            return UNKNOWN
        return func(args)

    return fold


def _builtin_len(value):
    if type(value) in (str, bytes, tuple, list, range):
        return len(value)
    return UNKNOWN


def _builtin_int(value=0, *base):
    if base or type(value) not in (int, float, bool, str):
        return UNKNOWN
    return int(value)


def _builtin_float(value=0.0):
    if type(value) not in (int, float, bool, str):
        return UNKNOWN
    return float(value)


def _builtin_abs(value):
    return abs(value) if type(value) in (int, float, bool, complex) else UNKNOWN


def _builtin_round(value, ndigits=None):
    if not _number(value) or (ndigits is not None and type(ndigits) is not int):
        return UNKNOWN
    return round(value, ndigits)


def _builtin_sum(values, start=0):
    if type(values) is range and type(start) is int:
        return len(values) * (values[0] + values[-1]) // 2 + start if values else start
    if not _iterable(values) or not all(_number(v) for v in (*values, start)):
        return start if values == [] or values == () else UNKNOWN
    return sum(values, start)


def _builtin_range(*args):
    if not 1 <= len(args) <= 3 or not all(type(a) in (int, bool) for a in args):
        return UNKNOWN
    return range(*args)


# Pure builtins folded when their name is not rebound (``lookup`` returns UNKNOWN).
BUILTINS: dict[str, Callable] = {
    "min": _builtin_min_max(min),
    "max": _builtin_min_max(max),
    "len": _builtin_len,
    "int": _builtin_int,
    "float": _builtin_float,
    "abs": _builtin_abs,
    "round": _builtin_round,
    "sum": _builtin_sum,
    "range": _builtin_range,
}


class Folder:
    """Folds an expression tree; subclasses extend it to abstract values.

    One method per node kind (see ``_METHODS``); each returns a value or
    ``UNKNOWN`` and may raise the arithmetic errors ``value()`` turns into
    ``UNKNOWN``.
    """

    _METHODS = {
        ast.Constant: "constant",
        ast.Name: "name",
        ast.BinOp: "binop",
        ast.UnaryOp: "unaryop",
        ast.Tuple: "sequence",
        ast.List: "sequence",
        ast.Compare: "compare",
        ast.BoolOp: "boolop",
        ast.IfExp: "ifexp",
        ast.Subscript: "subscript",
        ast.Call: "call",
    }

    def __init__(self, lookup: Callable[[str], object]):
        self.lookup = lookup

    def value(self, node: ast.AST) -> object:
        """The value of ``node``, ``UNKNOWN`` on anything that cannot be folded."""
        try:
            value = self.visit(node)
        except (ArithmeticError, ValueError, TypeError, IndexError, KeyError, RecursionError):
            return UNKNOWN
        return value if value is UNKNOWN else _checked(value)

    def visit(self, node: ast.AST) -> object:
        method = self._METHODS.get(type(node))
        return UNKNOWN if method is None else getattr(self, method)(node)

    def constant(self, node: ast.Constant) -> object:
        value = node.value
        return value if type(value) in _SCALARS else UNKNOWN

    def name(self, node: ast.Name) -> object:
        value = self.lookup(node.id)
        return value if is_constant(value) else UNKNOWN

    def fold_binop(self, op: ast.operator, left: object, right: object) -> object:
        if not (is_constant(left) and is_constant(right)):
            return UNKNOWN
        return _checked(_BINOPS[type(op)](left, right))

    def binop(self, node: ast.BinOp) -> object:
        if type(node.op) not in _BINOPS:
            return UNKNOWN
        left = self.visit(node.left)
        if left is UNKNOWN:
            return UNKNOWN
        right = self.visit(node.right)
        if right is UNKNOWN:
            return UNKNOWN
        return self.fold_binop(node.op, left, right)

    def unaryop(self, node: ast.UnaryOp) -> object:
        return self.fold_unary(node, self.visit(node.operand))

    def fold_unary(self, node: ast.UnaryOp, operand: object) -> object:
        if not is_constant(operand):
            return UNKNOWN
        return _UNARY[type(node.op)](operand)

    def sequence(self, node: ast.Tuple | ast.List) -> object:
        if len(node.elts) > MAX_LENGTH:
            return UNKNOWN
        items: list[object] = []
        for elt in node.elts:
            if type(elt) is ast.Starred:
                inner = self.visit(elt.value)
                if type(inner) not in (tuple, list, range):
                    return UNKNOWN
                sequence = cast("tuple | list | range", inner)
                if len(sequence) > MAX_LENGTH:
                    return UNKNOWN
                items.extend(sequence)
            else:
                item = self.visit(elt)
                if item is UNKNOWN:
                    return UNKNOWN
                items.append(item)
        return tuple(items) if type(node) is ast.Tuple else _checked(items)

    def compare(self, node: ast.Compare) -> object:
        operands = [self.visit(node.left)] + [self.visit(c) for c in node.comparators]
        return self.fold_compare(node, operands)

    def fold_compare(self, node: ast.Compare, operands: list[object]) -> object:
        if not all(is_constant(operand) for operand in operands):
            return UNKNOWN
        for op, left, right in zip(node.ops, operands, operands[1:]):
            if not _COMPARE[type(op)](left, right):
                return False
        return True

    def boolop(self, node: ast.BoolOp) -> object:
        is_and = type(node.op) is ast.And
        value: object = UNKNOWN
        for operand in node.values:
            value = self.visit(operand)
            if not is_constant(value):
                return UNKNOWN
            if bool(value) != is_and:
                return value
        return value

    def ifexp(self, node: ast.IfExp) -> object:
        test = self.visit(node.test)
        if not is_constant(test):
            return UNKNOWN
        return self.visit(node.body if test else node.orelse)

    def subscript(self, node: ast.Subscript) -> object:
        return self.fold_subscript(node, self.visit(node.value))

    def fold_subscript(self, node: ast.Subscript, container: object) -> object:
        if type(container) not in (tuple, list, str, bytes, range):
            return UNKNOWN
        sequence = cast("tuple | list | str | bytes | range", container)
        index = node.slice
        if type(index) is ast.Slice:
            parts = []
            for part in (index.lower, index.upper, index.step):
                value = None if part is None else self.visit(part)
                if value is not None and type(value) not in (int, bool):
                    return UNKNOWN
                parts.append(value)
            return sequence[slice(*cast("list[int | None]", parts))]
        key = self.visit(index)
        if type(key) not in (int, bool):
            return UNKNOWN
        return sequence[cast(int, key)]

    def call(self, node: ast.Call) -> object:
        func = node.func
        if type(func) is not ast.Name or node.keywords:
            return UNKNOWN
        fold = BUILTINS.get(func.id)
        if fold is None or self.lookup(func.id) is not UNKNOWN:
            return UNKNOWN
        args = []
        for arg in node.args:
            if type(arg) is ast.Starred:
                return UNKNOWN
            value = self.visit(arg)
            if not is_constant(value):
                return UNKNOWN
            args.append(value)
        return fold(*args)


def evaluate(node: ast.AST, lookup: Callable[[str], object]) -> object:
    """The constant value of ``node``, or ``UNKNOWN``.

    ``lookup(name)`` gives the value bound to a name, ``UNKNOWN`` when it is not
    known.  A builtin such as ``len`` is folded only while ``lookup`` says
    ``UNKNOWN`` for its name (a name bound to anything else has been rebound).
    Never raises for a well-formed tree; never executes user code.
    """
    return Folder(lookup).value(node)
