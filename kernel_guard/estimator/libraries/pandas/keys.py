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


def codes(values: np.ndarray, module: types.ModuleType) -> np.ndarray:
    """Dense codes of equal values (missing values are one value, as merge matches them);
    integers in a short range need no hashing."""
    values = checked(values)
    if values.dtype.kind == "b":
        values = values.view(np.int8)
    if values.dtype.kind in "iu" and len(values):
        low, high = int(values.min()), int(values.max())
        if high - low <= 4 * len(values):
            return (values - low).astype(np.int64, copy=False)
    return attr(module, "factorize")(values, use_na_sentinel=False)[0]


def combined(columns: list[np.ndarray], module: types.ModuleType) -> np.ndarray:
    """Codes of the rows of several key columns taken together."""
    result = codes(columns[0], module)
    for values in columns[1:]:
        part = codes(values, module)
        result = codes(result * (int(part.max(initial=0)) + 1) + part, module)
    return result


def distinct(values: np.ndarray, module: types.ModuleType) -> int:
    """How many distinct values, missing values not counted (as pandas' ``nunique``)."""
    values = checked(values)
    if values.dtype.kind in "iub" and len(values):
        return int(np.count_nonzero(np.bincount(codes(values, module))))
    return len(attr(module, "unique")(values[~attr(module, "isna")(values)]))


def counts(left: list[np.ndarray], right: list[np.ndarray], module: types.ModuleType) -> tuple[np.ndarray, ...]:
    """Rows per distinct key on each side (aligned), and a row holding each key
    (rows of ``right`` follow those of ``left``)."""
    joined = combined([np.concatenate([lv, rv]) for lv, rv in zip(left, right)], module)
    n_left = len(left[0])
    size = int(joined.max()) + 1 if len(joined) else 0
    count_left = np.bincount(joined[:n_left], minlength=size)
    count_right = np.bincount(joined[n_left:], minlength=size)
    first = np.full(size, -1, dtype=np.int64)
    first[joined] = np.arange(len(joined))
    return count_left, count_right, first
