"""Counting the keys of the user's columns with pandas' own code, never user code.

Hashing a column of Python objects calls each object's ``__hash__``/``__eq__``,
so such a column is counted only once every value is verified to be an exact
``str`` (or a float/``None`` for a missing value); numeric, boolean, datetime and
categorical columns are hashed by pandas without any Python object.
"""

from __future__ import annotations

import itertools
import operator
import types
from typing import Any

import numpy as np

from kernel_guard.estimator.libraries import attr
from kernel_guard.estimator.libraries.pandas.frames import kind_of

_HASHABLE_KINDS = "biufcmM"


def key_array(values: Any) -> np.ndarray | None:
    """A Series' or Index's values as an array pandas may hash, ``None`` if it cannot be
    read safely. Categoricals give their categories (codes differ between frames)."""
    kind = kind_of(values.dtype)
    if kind == "k":
        categorical = values.array
        categories = key_array(categorical.categories)
        if categories is None:
            return None
        codes = np.asarray(categorical.codes)
        if (codes < 0).any():
            categories = np.append(categories.astype(object), [None])
        return categories[codes]
    if kind in _HASHABLE_KINDS:
        return values.to_numpy()
    if kind in ("O", "T"):
        return values.to_numpy(dtype=object)  # verified by ``checked`` before it is hashed
    return None


def checked(values: np.ndarray) -> np.ndarray:
    """``values``, once verified to hold nothing that runs code when hashed; else ``ValueError``."""
    if values.dtype.kind != "O":
        return values
    kinds = list(map(type, values))
    if all(map(operator.is_, kinds, itertools.repeat(str))):
        return values
    if all(kind is str or kind is float or kind is type(None) for kind in kinds):
        return values
    raise ValueError("a key column holds objects other than exact strings")


def span(arrays: list[np.ndarray]) -> tuple[int, int] | None:
    """(lowest, highest) of integer arrays whose values lie in a short range (at most two
    per row): they are counted with ``bincount``, no hashing. ``None`` otherwise."""
    if not arrays or not all(a.dtype.kind in "iub" and len(a) for a in arrays):
        return None
    low = min(int(_ints(a).min()) for a in arrays)
    high = max(int(_ints(a).max()) for a in arrays)
    return (low, high) if high - low <= 2 * sum(len(a) for a in arrays) else None


def _ints(values: np.ndarray) -> np.ndarray:
    return values.view(np.int8) if values.dtype.kind == "b" else values


def codes(values: np.ndarray, module: types.ModuleType, short: tuple[int, int] | None = None) -> np.ndarray:
    """Dense codes of equal values (missing values are one value, as merge matches them);
    integers within ``short`` (a ``span``) need no hashing."""
    values = checked(values)
    if short is not None:
        if short[0] == 0 and values.dtype == np.intp:
            return values  # already codes
        return np.subtract(_ints(values), short[0], dtype=np.intp)
    return attr(module, "factorize")(values, use_na_sentinel=False)[0]


def combined(columns: list[np.ndarray], module: types.ModuleType, spans: list) -> np.ndarray:
    """Codes of the rows of several key columns taken together."""
    result = codes(columns[0], module, spans[0])
    for values, short in zip(columns[1:], spans[1:]):
        part = codes(values, module, short)
        result = codes(result * (int(part.max(initial=0)) + 1) + part, module)
    return result


def distinct(values: np.ndarray, module: types.ModuleType, short: tuple[int, int] | None,
             rows: int | None = None) -> int:
    """How many distinct values among the first ``rows``, missing values not counted (as
    pandas' ``nunique``). ``short``: the ``span`` of ``values``."""
    values = checked(values[:rows])
    if short is not None:
        return int(np.count_nonzero(np.bincount(codes(values, module, short))))
    return len(attr(module, "unique")(values[~attr(module, "isna")(values)]))


def counts(left: list[np.ndarray], right: list[np.ndarray], module: types.ModuleType, spans: list,
           rows: int | None = None) -> tuple[np.ndarray, ...]:
    """Rows per distinct key on each side (aligned) among the first ``rows`` of each, and
    the codes of the keys of each side's rows. ``spans``: ``span`` of each key's two sides."""
    left, right = [v[:rows] for v in left], [v[:rows] for v in right]
    if len(spans) == 1 and spans[0] is not None:  # no hashing, no concatenation
        left_codes, right_codes = codes(left[0], module, spans[0]), codes(right[0], module, spans[0])
    else:
        joined = combined([np.concatenate([lv, rv]) for lv, rv in zip(left, right)], module, spans)
        left_codes, right_codes = joined[: len(left[0])], joined[len(left[0]):]
    size = max(int(left_codes.max(initial=-1)), int(right_codes.max(initial=-1))) + 1
    return (np.bincount(left_codes, minlength=size), np.bincount(right_codes, minlength=size), left_codes,
            right_codes)
