"""A frame as one array (``.values``, ``.to_numpy()``, ``np.asarray(df)``), and ``concat``.

A frame of numbers becomes rows × columns of their common dtype. Any other column
makes an object array, and every number in it becomes a new Python object too
(strings already exist: the array points to them).
"""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np

from kernel_guard.estimator.abstract import NEW, Array, Made
from kernel_guard.estimator.dtypes import as_dtype
from kernel_guard.estimator.libraries import Args, attr
from kernel_guard.estimator.libraries.pandas.frames import (
    Column,
    Frame,
    described,
    made_frame,
    padded,
)
from kernel_guard.estimator.values import UNKNOWN
from kernel_guard.sizes import format_bytes

# Bytes of the Python object each value of a numeric column becomes in an object array
# (True and False are shared; strings and categories already exist: the array points to them).
_BOXED = {"f": sys.getsizeof(1.5), "i": sys.getsizeof(1000), "u": sys.getsizeof(1000), "c": sys.getsizeof(1j),
          "b": 0}


def _boxed(kind: str, module: types.ModuleType) -> int:
    """Bytes of the object a value of this kind becomes; dates become pandas Timestamps/Timedeltas."""
    if kind in "mM":
        return sys.getsizeof(attr(module, "Timestamp" if kind == "M" else "Timedelta")(0))
    return _BOXED.get(kind, 0)


def as_array(frame: object, args: Args | None, copy_only: bool, module: types.ModuleType) -> object:
    """``frame.values`` / ``frame.to_numpy(dtype=...)`` / ``np.asarray(frame, dtype)``.

    A series of numbers is a view of its own buffer: no allocation (the ``Array`` is
    still returned, so that what follows is estimated). ``copy_only``: a view is not
    known to be one (``np.array`` copies)."""
    if type(frame) is not Frame or frame.rows is None:
        return UNKNOWN
    columns = described(frame) if frame.live is not None else frame.columns
    if columns is None:
        return UNKNOWN
    wanted = None
    if args is not None:
        given = args.constant(0, "dtype")
        if given is not None:
            wanted = as_dtype(given)
            if wanted is None:
                return UNKNOWN
    kinds = {c.kind for c in columns}
    if wanted is None:  # numbers share a dtype, and so do dates; anything else is an object
        alike = kinds <= set("biufc") or kinds == {"M"} or kinds == {"m"}
        wanted = np.result_type(*[np.dtype(c.dtype) for c in columns]) if alike and columns else np.dtype(object)
    shape = (frame.rows,) if frame.series else (frame.rows, len(columns))
    if _is_view(frame, wanted) and not copy_only:
        return Array(shape, wanted)
    nbytes = frame.rows * len(columns) * wanted.itemsize
    boxed = 0
    if wanted.kind == "O":
        boxed = sum(_boxed(c.kind, module) for c in columns) * frame.rows
    array = Array(shape, wanted, NEW)
    boxes = sum(_boxed(c.kind, module) > 0 for c in columns) * frame.rows
    cause = (f"{frame.rows:,} rows × {len(columns)} columns of {wanted.name}"
             + (f", and a new Python object for each of the {boxes:,} numbers and dates ({format_bytes(boxed)})"
                if boxed else "")
             + "; select the columns you need (of one numeric dtype) first, or work column by column")
    return Made(array, shape, wanted, nbytes + boxed, cause)


def _is_view(frame: Frame, dtype: np.dtype) -> bool:
    """pandas hands out its own buffer: a series (or a frame of one block) already of ``dtype``."""
    live = frame.live
    if live is None:
        return False
    if frame.series:
        return str(live.dtype) == dtype.name and dtype.kind != "O" or str(live.dtype) == "object"
    blocks = getattr(live, "_mgr", None)
    return blocks is not None and type(blocks).__module__.startswith("pandas.") and len(blocks.blocks) == 1 and \
        str(blocks.blocks[0].dtype) == dtype.name


def concat(objs: Any, args: Args) -> object:
    """``pd.concat(objs, axis=0, join='outer', ignore_index=False, ...)`` of known frames."""
    if type(objs) not in (list, tuple) or not objs or not all(type(f) is Frame for f in objs):
        return UNKNOWN
    frames: list[Frame] = list(objs)
    axis, join = args.constant(1, "axis", 0), args.constant(2, "join", "outer")
    ignore_index = args.constant(3, "ignore_index", False)
    sizes = [f.rows for f in frames if f.rows is not None]
    if axis not in (0, 1, "index", "columns") or join not in ("outer", "inner") or len(sizes) != len(frames):
        return UNKNOWN
    described_all = [described(f) if f.live is not None else f.columns for f in frames]
    if any(c is None for c in described_all):
        return UNKNOWN
    each: list[tuple[Column, ...]] = described_all  # type: ignore[assignment]
    series = all(f.series for f in frames) and axis in (0, "index")
    if axis in (0, "index"):
        rows = sum(sizes)
        columns = _union(each, join, series)
        index_bytes = 0.0 if ignore_index else 8.0
    else:
        rows = max(sizes)
        columns = [c for cs in each for c in cs]
        index_bytes = 8.0
    result = made_frame(rows, columns, "", index_bytes, series)
    result.cause = (f"concat of {len(frames)} objects makes {rows:,} rows × {len(columns)} columns, "
                    f"{format_bytes(result.nbytes)}; concatenate fewer at once or select columns first")
    return result


def _union(each: list[tuple[Column, ...]], join: str, series: bool) -> list[Column]:
    """The columns of frames stacked on each other: a column some lack is padded with NaN."""
    if series:
        return [max((cs[0] for cs in each), key=lambda c: c.row_bytes)]
    by_label: dict[object, Column] = {}
    present: dict[object, int] = {}
    for columns in each:
        for c in columns:
            by_label.setdefault(c.label, c)
            present[c.label] = present.get(c.label, 0) + 1
    result = []
    for label, c in by_label.items():
        if present[label] == len(each):
            result.append(c)
        elif join == "outer":
            result.append(padded(c))
    return result
