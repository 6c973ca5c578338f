"""The abstract values of pandas objects, and what their columns take per row.

A frame is read by exact type only, with an index and columns of pandas' own
index classes (a user ``Index`` subclass could run code on ``len`` or lookup).
Column sizes come from ``memory_usage(deep=False)``, which never looks at the
objects a column points to.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

import numpy as np

from kernel_guard.estimator.abstract import Foreign, Made
from kernel_guard.estimator.libraries import attr

_INDEXES = ("Index", "RangeIndex", "MultiIndex", "CategoricalIndex", "DatetimeIndex", "TimedeltaIndex",
            "PeriodIndex")
# numpy's dtype classes (numpy.dtypes.Int64DType, ...), compared by identity.
_NUMPY_DTYPES = tuple({type(np.dtype(code)) for code in np.typecodes["All"] + "O"})


@dataclass(frozen=True)
class Column:
    label: object  # an exact str or int, None for any other label
    dtype: str
    row_bytes: float  # bytes of the column's buffers per row (pointers for objects)
    kind: str  # numpy kind; "k" categorical, "T" pandas strings, "x" other extension types


@dataclass(eq=False)
class Frame(Foreign):
    """A DataFrame or Series: ``live`` is the user's object (exact type) when it
    existed before the cell, ``None`` for one the cell makes (sizes only)."""

    library: ClassVar[str] = "pandas"
    live: Any = field(repr=False)  # typed loosely: pandas is never imported
    rows: int | None
    columns: tuple[Column, ...] | None
    series: bool = False

    @property
    def nbytes(self) -> int | None:
        if self.rows is None or self.columns is None:
            return None
        return int(sum(c.row_bytes for c in self.columns) * self.rows)


@dataclass(eq=False)
class Grouped(Foreign):
    """``frame.groupby(keys, observed=...)``, with the columns selected from it."""

    library: ClassVar[str] = "pandas"
    frame: Frame
    keys: list
    observed: bool
    selection: list | None = None


def read_frame(value: Any, module: types.ModuleType) -> Frame | None:
    kind = type(value)
    series = kind is attr(module, "Series")
    if not series and kind is not attr(module, "DataFrame"):
        return None
    if not exact_index(value.index, module) or not (series or exact_index(value.columns, module)):
        return None
    if not _own_arrays(value, module):
        return None
    return Frame(value, len(value.index), None, series)


def _own_arrays(value: Any, module: types.ModuleType) -> bool:
    """Every column is held in a numpy array or one of pandas' own extension arrays: a
    user's ``ExtensionArray`` would run its code on ``nbytes``, ``dtype``, ``to_numpy``..."""
    exported = attr(module, "arrays")
    if type(exported) is not types.ModuleType:
        return False
    own = tuple(kind for kind in vars(exported).values() if type(kind) is type)
    manager = vars(value).get("_mgr")  # pandas' block manager (a private attribute, read without lookup hooks)
    blocks = getattr(manager, "blocks", None) if type(manager).__module__.startswith("pandas.") else None
    if type(blocks) not in (tuple, list):
        return False
    return all(type(block.values) is np.ndarray or any(type(block.values) is kind for kind in own)
               for block in cast("tuple | list", blocks))


def exact_index(value: object, module: types.ModuleType) -> bool:
    kind = type(value)
    return any(kind is attr(module, name) for name in _INDEXES)


def described(frame: Frame) -> tuple[Column, ...]:
    """The columns of ``frame``, read from the live object once."""
    if frame.columns is None:
        live = frame.live
        rows = max(len(live), 1)
        if frame.series:
            frame.columns = (Column(plain(live.name), str(live.dtype), live.memory_usage(index=False) / rows,
                                    kind_of(live.dtype)),)
        else:
            usage = live.memory_usage(index=False, deep=False).to_numpy()
            frame.columns = tuple(Column(label, str(dtype), float(size) / rows, kind_of(dtype)) for label, dtype, size
                                  in zip(labels(live.columns), live.dtypes.to_numpy(), usage))
    return frame.columns


def plain(label: object) -> object:
    return label if type(label) is str or type(label) is int else None


def labels(index: Any) -> list:
    """Labels as plain values when they are exact ``str``/``int``; ``None`` stands for any other."""
    return [plain(label) for label in index.tolist()]


def kind_of(dtype: object) -> str:
    if any(type(dtype) is known for known in _NUMPY_DTYPES):
        return dtype.kind  # type: ignore[attr-defined]
    name = type(dtype).__name__
    return "k" if name == "CategoricalDtype" else "T" if name == "StringDtype" else "x"


def column(frame: Frame, label: object) -> Any:
    """The live Series of the one column labelled ``label`` (an exact str or int), else ``None``.
    Labels are compared here, never through pandas' index lookup (which hashes every label)."""
    if frame.live is None or frame.series or not (type(label) is str or type(label) is int):
        return None
    positions = [i for i, found in enumerate(labels(frame.live.columns)) if type(found) is type(label)
                 and found == label]
    return frame.live.iloc[:, positions[0]] if len(positions) == 1 else None


def padded(c: Column) -> Column:
    """The column once rows it lacks are NaN: integers become float64, booleans objects."""
    if c.kind in "iu":
        return Column(c.label, "float64", 8.0, "f")
    if c.kind == "b":
        return Column(c.label, "object", 8.0, "O")
    return c


def made_frame(rows: int, columns: list[Column], cause: str, index_bytes: float = 0.0,
               series: bool = False) -> Made:
    """The allocation of a new frame of ``rows`` × ``columns`` (``index_bytes`` per row for its index)."""
    result = Frame(None, rows, tuple(columns), series)
    nbytes = int((result.nbytes or 0) + index_bytes * rows)
    dtypes = {c.dtype for c in columns}
    dtype = dtypes.pop() if len(dtypes) == 1 else "mixed"
    return Made(result, (rows,) if series else (rows, len(columns)), dtype, nbytes, cause)


def code_bytes(levels: int) -> int:
    """Bytes per row of a MultiIndex level's codes: pandas takes the smallest integer that fits."""
    return 1 if levels < 2**7 else 2 if levels < 2**15 else 4 if levels < 2**31 else 8
