"""Dense results of library calls: the ``Made`` a hook returns, and the words for its size."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kernel_guard.estimator.abstract import NEW, Array, Made
from kernel_guard.sizes import format_bytes, format_shape


def described(shape: tuple[int, ...], dtype: np.dtype) -> str:
    """``20,000 × 20,000 float64 = 3.0 GiB``."""
    return f"{format_shape(shape)} {dtype.name} = {format_bytes(math.prod(shape) * dtype.itemsize)}"


def dense(shape: tuple[int, ...], dtype: np.dtype, cause: str | None) -> Made:
    """A new numpy array of ``shape`` and ``dtype`` that the call allocates."""
    return Made(Array(shape, dtype, NEW), shape, dtype, math.prod(shape) * dtype.itemsize, cause)


def int_shape(value: Any) -> tuple[int, ...] | None:
    """A shape of known, non-negative ints (a live library's may hold NaN: unknown)."""
    if type(value) is int:
        value = (value,)
    if type(value) not in (tuple, list) or not all(type(d) is int and d >= 0 for d in value):
        return None
    return tuple(value)


# numpy's dtype classes (numpy.dtypes.Float64DType, ...), compared by identity.
_DTYPE_CLASSES = tuple({type(np.dtype(code)) for code in np.typecodes["All"] + "O?"})


def numpy_dtype(value: object) -> np.dtype | None:
    """A live numpy dtype, by exact type (never a user's subclass), or ``None``."""
    kind = type(value)
    return value if any(kind is known for known in _DTYPE_CLASSES) else None  # type: ignore[return-value]
