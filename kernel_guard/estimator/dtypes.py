"""dtypes from their spellings, and result dtypes decided by numpy itself.

Result dtypes are computed by running the real operation on one-element
arrays of the operand dtypes (and the Python scalar operands themselves), so
promotion follows the installed numpy exactly: NEP 50's weak scalars, the
special cases of ``ndarray.__pow__`` (``bool_array ** 2`` is int8), and its
refusals (integers to negative powers).
"""

from __future__ import annotations

import warnings
from typing import cast

import numpy as np

from kernel_guard.estimator.abstract import Array, Ref


def _scalar_types() -> dict[str, np.dtype]:
    found: dict[str, np.dtype] = {}
    for module, prefix in ((np, "numpy."), (getattr(np, "dtypes", None), "numpy.dtypes.")):
        for name, obj in vars(module or object).items():
            if not isinstance(obj, type):
                continue
            try:
                if issubclass(obj, np.generic):
                    dtype = np.dtype(obj)
                elif module is not np and issubclass(obj, np.dtype):
                    dtype = obj()  # type: ignore[call-overload]  # a numpy.dtypes class: its stubs miss the no-argument call
                else:
                    continue
            except (TypeError, ValueError):
                continue  # abstract types (np.floating) have no dtype
            found[prefix + name] = dtype
    return found


NAMED = _scalar_types()
NAMED.update(
    {
        "builtins.float": np.dtype(float),
        "builtins.int": np.dtype(int),
        "builtins.bool": np.dtype(bool),
        "builtins.complex": np.dtype(complex),
        "builtins.object": np.dtype(object),
    }
)

FLOAT64 = np.dtype(np.float64)
INT64 = np.dtype(np.int64)
DEFAULT_INT = np.dtype(int)  # numpy's default integer (``np.int_``)
BOOL = np.dtype(bool)

_PARSED: dict[str, np.dtype | None] = {}


def as_dtype(value: object) -> np.dtype | None:
    """The dtype a ``dtype=`` argument names, ``None`` if unknown or not a dtype.

    Flexible dtypes without a size (``str``, ``'U'``) are unknown: their size
    depends on the data.
    """
    if type(value) is str:
        if value not in _PARSED:
            try:
                dtype = np.dtype(value) if len(value) <= 64 else None
            except (TypeError, ValueError, SyntaxError):
                dtype = None
            _PARSED[value] = dtype
        dtype = _PARSED[value]
    elif type(value) is Ref:
        dtype = NAMED.get(value.qualname)
    elif isinstance(value, np.dtype):  # our own values only: never a user object
        dtype = value
    else:
        return None
    if dtype is None or dtype.itemsize == 0:
        return None
    return dtype


def dtype_arg(value: object, default: np.dtype | None) -> np.dtype | None:
    """A ``dtype=`` argument: absent or ``None`` gives ``default``."""
    if value is None:
        return default
    return as_dtype(value)


def scalar_dtype(value: object) -> np.dtype | None:
    """The dtype numpy gives an array made from the Python scalar ``value``."""
    if type(value) in (bool, int, float, complex):
        try:
            return np.asarray(value).dtype
        except (OverflowError, ValueError):
            return None
    return None


_PROBES: dict[np.dtype, np.ndarray] = {}


def probe(operand: object) -> np.ndarray | complex | None:
    """What stands for ``operand`` when asking numpy for a result dtype: a
    one-element array of its dtype, or the Python scalar itself."""
    if type(operand) is Array:
        if operand.dtype is None:
            return None
        array = _PROBES.get(operand.dtype)
        if array is None:
            try:
                array = _PROBES[operand.dtype] = np.ones(1, operand.dtype)
            except (TypeError, ValueError):
                return None
        return array
    if type(operand) in (bool, int, float, complex):
        return cast(complex, operand)  # bool, int and float are complex to the type checker
    return None


def operation_dtype(function, *operands: object) -> np.dtype | None:
    """The dtype of ``function(*operands)`` as numpy computes it, or ``None``
    when numpy refuses. ``function`` is a ufunc (or one of its methods) or an
    ``operator`` function applied to the arrays."""
    key = (function, *(o.dtype if type(o) is Array else (type(o), o) for o in operands))
    try:
        return _RESULTS[key]
    except KeyError:
        pass
    except TypeError:  # an operand that cannot be a key (never a user object: ours only)
        return _operation_dtype(function, operands)
    if len(_RESULTS) > 4096:
        _RESULTS.clear()
    dtype = _RESULTS[key] = _operation_dtype(function, operands)
    return dtype


_RESULTS: dict[tuple, np.dtype | None] = {}


def _operation_dtype(function, operands: tuple[object, ...]) -> np.dtype | None:
    probes = [probe(operand) for operand in operands]
    if any(p is None for p in probes):
        return None
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = function(*probes)
    except Exception:  # numpy's own refusal (no loop for these dtypes, overflow): no estimate
        return None
    if type(result) is tuple:  # divmod, frexp, modf: several outputs
        result = result[0]
    dtype = getattr(result, "dtype", None)
    return dtype if isinstance(dtype, np.dtype) else None


def promoted(*operands: object) -> np.dtype | None:
    """``np.result_type`` of arrays and Python scalars (weak scalars, as numpy does)."""
    probes = [probe(operand) for operand in operands]
    if any(p is None for p in probes):
        return None
    try:
        return np.result_type(*probes)
    except (TypeError, ValueError, OverflowError):
        return None


def result_dtype(*dtypes: np.dtype | None) -> np.dtype | None:
    if any(d is None for d in dtypes):
        return None
    try:
        return np.result_type(*dtypes)
    except TypeError:
        return None


def const_dtype(value: object, dtype: np.dtype | None = None) -> np.dtype | None:
    """dtype of ``np.array(value)`` for a constant (nested lists of scalars)."""
    if dtype is not None:
        return dtype
    leaves: dict[tuple[type, object], object] = {}
    seen: set[int] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) in (list, tuple):
            if id(item) not in seen:  # [[0] * n] * m repeats one inner list
                seen.add(id(item))
                stack.extend(cast("list | tuple", item))
        else:
            leaves[(type(item), item)] = item
            if len(leaves) > 10_000:
                return None
    if not leaves:
        return FLOAT64
    try:
        result = np.array(list(leaves.values())).dtype
    except (OverflowError, ValueError, TypeError):
        return None
    return result if result.itemsize else None

