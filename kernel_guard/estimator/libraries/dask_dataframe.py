"""dask.dataframe in the estimator: ``.compute()`` of a frame whose partition lengths are known.

A dask frame made from a pandas frame (``dd.from_pandas``), with columns selected or
not, knows how many rows each partition has: dask's own expression holds them, and its
``_meta`` (an empty pandas frame) holds the dtypes. Computing it gathers every partition
into one pandas frame in the kernel. Other sources (files, filters) have lengths known
only by computing: they are not estimated. Only columns of plain numpy dtypes are sized.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from typing import Any, ClassVar

from kernel_guard.estimator.abstract import Foreign, Made
from kernel_guard.estimator.libraries import Args, Library, attr
from kernel_guard.estimator.libraries.dask import FIX
from kernel_guard.estimator.libraries.dense import numpy_dtype
from kernel_guard.estimator.libraries.pandas.frames import Column, Frame
from kernel_guard.estimator.values import UNKNOWN
from kernel_guard.sizes import format_bytes, format_shape

_EXPR_MODULES = ("dask.dataframe.dask_expr._expr", "dask.dataframe.dask_expr.io.io")


@dataclass(eq=False)
class LazyFrame(Foreign):
    library: ClassVar[str] = "dask.dataframe"
    rows: int
    partitions: int
    columns: tuple[Column, ...]
    live: Any = field(default=None, repr=False)


class DaskFrames(Library):
    module = "dask.dataframe"

    def read(self, value: Any, module: types.ModuleType) -> object | None:
        if type(value) is not attr(module, "DataFrame"):
            return None
        lengths = _lengths(value.expr)
        meta = value._meta
        pandas = sys.modules.get("pandas")
        if lengths is None or pandas is None or type(meta) is not attr(pandas, "DataFrame"):
            return None
        columns = []
        for label, dtype in zip(meta.columns.tolist(), meta.dtypes.tolist(), strict=True):
            dtype = numpy_dtype(dtype)
            if dtype is None or dtype.kind == "O":  # object and extension columns: sizes not known
                return None
            columns.append(Column(label if type(label) in (str, int) else None, dtype.name, dtype.itemsize,
                                  dtype.kind))
        return LazyFrame(sum(lengths), len(lengths), tuple(columns), value)

    def method(self, receiver: Foreign, name: str, args: Args, ctx, module: types.ModuleType | None) -> object:
        if type(receiver) is not LazyFrame or name != "compute":
            return UNKNOWN
        width = len(receiver.columns)
        nbytes = int(sum(c.row_bytes for c in receiver.columns) * receiver.rows)
        dtypes = {c.dtype for c in receiver.columns}
        dtype = dtypes.pop() if len(dtypes) == 1 else "mixed"
        cause = (f".compute() gathers the dask frame's {receiver.partitions:,} partitions into one pandas frame in "
                 f"this kernel: {format_shape((receiver.rows, width))} (rows × columns), {format_bytes(nbytes)}; {FIX}")
        return Made(Frame(None, receiver.rows, receiver.columns), (receiver.rows, width), dtype, nbytes, cause)


    def subscript(self, receiver: Foreign, key: Any, ctx, module: types.ModuleType | None) -> object:
        """``ddf[["a", "b"]]``: the same partitions, fewer columns."""
        if type(receiver) is not LazyFrame or type(key) not in (list, tuple):
            return UNKNOWN
        by_label = {c.label: c for c in receiver.columns if type(c.label) is str}
        if not key or not all(type(k) is str and k in by_label for k in key):
            return UNKNOWN
        return LazyFrame(receiver.rows, receiver.partitions, tuple(by_label[k] for k in key))


def _lengths(expr: Any) -> tuple[int, ...] | None:
    """Rows per partition of a frame read from pandas, through column selections."""
    core, io = (sys.modules.get(name) for name in _EXPR_MODULES)
    if type(core) is not types.ModuleType or type(io) is not types.ModuleType:
        return None
    projection, from_pandas = attr(core, "Projection"), attr(io, "FromPandas")
    while projection is not None and type(expr) is projection:
        expr = expr.frame
    if from_pandas is None or type(expr) is not from_pandas:
        return None
    lengths = expr._get_lengths()
    if type(lengths) is not tuple or not all(type(n) is int for n in lengths):
        return None
    return lengths
