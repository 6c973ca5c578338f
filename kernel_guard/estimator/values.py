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
from typing import Callable


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
        return all(is_constant(item) for item in value)
    return False


def _checked(value: object) -> object:
    kind = type(value)
    if kind is int and value.bit_length() > MAX_INT_BITS:
        return UNKNOWN
    if kind is float and not math.isfinite(value):
        return value  # inf/nan are legitimate constants (float("inf"))
    if kind in (str, bytes, tuple, list) and len(value) > MAX_LENGTH:
        return UNKNOWN
    return value


def _bits(value: object) -> int:
    return abs(int(value)).bit_length() if type(value) in (int, bool) else 0


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
    return type(value) in (tuple, list, range) and 0 < len(value) <= MAX_LENGTH


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


def evaluate(node: ast.AST, lookup: Callable[[str], object]) -> object:
    """The constant value of ``node``, or ``UNKNOWN``.

    ``lookup(name)`` gives the value bound to a name, ``UNKNOWN`` when it is not
    known.  A builtin such as ``len`` is folded only while ``lookup`` says
    ``UNKNOWN`` for its name (a name bound to anything else has been rebound).
    Never raises for a well-formed tree; never executes user code.
    """
    try:
        value = _eval(node, lookup)
    except (ArithmeticError, ValueError, TypeError, IndexError, KeyError, RecursionError):
        return UNKNOWN
    return value if value is UNKNOWN else _checked(value)


def _eval(node: ast.AST, lookup: Callable[[str], object]) -> object:
    kind = type(node)
    if kind is ast.Constant:
        value = node.value
        return value if type(value) in _SCALARS else UNKNOWN
    if kind is ast.Name:
        value = lookup(node.id)
        return value if is_constant(value) else UNKNOWN
    if kind is ast.BinOp:
        op = _BINOPS.get(type(node.op))
        left = _eval(node.left, lookup)
        if op is None or left is UNKNOWN:
            return UNKNOWN
        right = _eval(node.right, lookup)
        if right is UNKNOWN:
            return UNKNOWN
        return _checked(op(left, right))
    if kind is ast.UnaryOp:
        operand = _eval(node.operand, lookup)
        if operand is UNKNOWN:
            return UNKNOWN
        return _UNARY[type(node.op)](operand)
    if kind is ast.Tuple or kind is ast.List:
        if len(node.elts) > MAX_LENGTH:
            return UNKNOWN
        items = []
        for elt in node.elts:
            if type(elt) is ast.Starred:
                inner = _eval(elt.value, lookup)
                if type(inner) not in (tuple, list, range):
                    return UNKNOWN
                items.extend(inner)
            else:
                item = _eval(elt, lookup)
                if item is UNKNOWN:
                    return UNKNOWN
                items.append(item)
        return tuple(items) if kind is ast.Tuple else _checked(items)
    if kind is ast.Compare:
        left = _eval(node.left, lookup)
        if left is UNKNOWN:
            return UNKNOWN
        for op, comparator in zip(node.ops, node.comparators):
            right = _eval(comparator, lookup)
            if right is UNKNOWN:
                return UNKNOWN
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if kind is ast.BoolOp:
        is_and = type(node.op) is ast.And
        value = UNKNOWN
        for operand in node.values:
            value = _eval(operand, lookup)
            if value is UNKNOWN:
                return UNKNOWN
            if bool(value) != is_and:
                return value
        return value
    if kind is ast.IfExp:
        test = _eval(node.test, lookup)
        if test is UNKNOWN:
            return UNKNOWN
        return _eval(node.body if test else node.orelse, lookup)
    if kind is ast.Subscript:
        return _subscript(node, lookup)
    if kind is ast.Call:
        return _call(node, lookup)
    return UNKNOWN


def _subscript(node: ast.Subscript, lookup) -> object:
    container = _eval(node.value, lookup)
    if type(container) not in (tuple, list, str, bytes, range):
        return UNKNOWN
    index = node.slice
    if type(index) is ast.Slice:
        parts = []
        for part in (index.lower, index.upper, index.step):
            value = None if part is None else _eval(part, lookup)
            if value is not None and type(value) not in (int, bool):
                return UNKNOWN
            parts.append(value)
        return container[slice(*parts)]
    key = _eval(index, lookup)
    if type(key) not in (int, bool):
        return UNKNOWN
    return container[key]


def _call(node: ast.Call, lookup) -> object:
    func = node.func
    if type(func) is not ast.Name or node.keywords:
        return UNKNOWN
    fold = BUILTINS.get(func.id)
    if fold is None or lookup(func.id) is not UNKNOWN:
        return UNKNOWN
    args = []
    for arg in node.args:
        if type(arg) is ast.Starred:
            return UNKNOWN
        value = _eval(arg, lookup)
        if value is UNKNOWN:
            return UNKNOWN
        args.append(value)
    return fold(*args)
