"""dask.array in the estimator: ``.compute()`` and ``np.asarray(x)`` of a dask array.

A dask array is a plan: its shape, dtype and so its ``nbytes`` are metadata, known
without computing anything. Computing it gathers every chunk into one numpy array in
the kernel, which is where notebooks whose data outgrew the machine die. Live arrays
are read by exact type (``dask.array.Array``); constructors with constant sizes
(``da.ones((n, n))``, ``da.random.random(...)``) are known without dask (``static``).
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from kernel_guard.estimator import shapes
from kernel_guard.estimator.abstract import Array, Foreign
from kernel_guard.estimator.dtypes import DEFAULT_INT, FLOAT64, dtype_arg, scalar_dtype
from kernel_guard.estimator.libraries import Args, Library, attr
from kernel_guard.estimator.libraries.dense import dense, described, int_shape, numpy_dtype
from kernel_guard.estimator.signatures import operator_call
from kernel_guard.estimator.values import UNKNOWN

_FILLED = ("ones", "zeros", "empty")
_RANDOM = {"random": (), "random_sample": (), "normal": ("loc", "scale"), "uniform": ("low", "high"),
           "standard_normal": (), "exponential": ("scale",), "poisson": ("lam",)}
_SAME_SHAPE = ("rechunk", "copy")
_REDUCTIONS = ("sum", "mean", "std", "var", "min", "max", "prod", "any", "all")
FIX = ("reduce it before .compute() (x.mean(axis=0), x[:1000]), .persist() it on a distributed "
        "cluster, or write it out with x.to_zarr(...) / dd.to_parquet(...)")


@dataclass(eq=False)
class Lazy(Foreign):
    """A dask array: what computing it would make."""

    library: ClassVar[str] = "dask.array"
    shape: tuple[int, ...]
    dtype: np.dtype
    chunks: int | None = None
    live: Any = field(default=None, repr=False)


class Dask(Library):
    module = "dask.array"
    static = True

    def read(self, value: Any, module: types.ModuleType) -> object | None:
        if type(value) is not attr(module, "Array"):
            return None
        shape, dtype = int_shape(value.shape), numpy_dtype(value.dtype)  # NaN for unknown chunk sizes
        if shape is None or dtype is None:
            return None
        chunks = value.npartitions
        return Lazy(shape, dtype, chunks if type(chunks) is int else None, value)

    def call(self, qualname: str, args: Args, ctx, module: types.ModuleType | None) -> object:
        lazy = [v for v in [*args.positional, *args.keywords.values()] if type(v) is Lazy]
        first = args.get(0, "a" if qualname == "numpy.asarray" else "object")
        if qualname in ("numpy.asarray", "numpy.array") and lazy and lazy[0] is first:
            dtype = dtype_arg(args.get(1, "dtype", None), lazy[0].dtype)
            return UNKNOWN if dtype is None else _computed(lazy[0], dtype, f"np.{qualname[6:]}()")
        return _constructor(qualname.removeprefix("dask.array."), args)

    def method(self, receiver: Foreign, name: str, args: Args, ctx, module: types.ModuleType | None) -> object:
        if type(receiver) is not Lazy:
            return UNKNOWN
        if name == "compute":
            return _computed(receiver, receiver.dtype, ".compute()")
        if name in _SAME_SHAPE:
            return Lazy(receiver.shape, receiver.dtype, None)
        if name == "astype":
            dtype = dtype_arg(args.get(0, "dtype", None), None)
            return UNKNOWN if dtype is None else Lazy(receiver.shape, dtype, receiver.chunks)
        if name in _REDUCTIONS:
            shape = shapes.reduce(receiver.shape, args.constant(0, "axis"), args.constant(None, "keepdims", False))
            dtype = receiver.dtype if name in ("min", "max") else np.dtype(bool) if name in ("any", "all") else FLOAT64
            return UNKNOWN if shape is None else Lazy(shape, dtype, None)
        return UNKNOWN

    def operator(self, op: str, operands: list, ctx, module: types.ModuleType | None) -> object:
        """Elementwise arithmetic (and ``@``) stays lazy: shape and dtype as numpy would give them."""
        stand_ins = [Array(v.shape, v.dtype) if type(v) is Lazy else ctx.unwrap(v) for v in operands]
        result = operator_call(op, stand_ins)
        if type(result) is not Array or result.shape is None or result.dtype is None:
            return UNKNOWN
        return Lazy(result.shape, result.dtype)

    def attribute(self, receiver: Foreign, name: str, ctx, module: types.ModuleType | None) -> object:
        if type(receiver) is Lazy:
            if name == "shape":
                return receiver.shape
            if name == "nbytes":
                return math.prod(receiver.shape) * receiver.dtype.itemsize
            if name == "T":
                return Lazy(receiver.shape[::-1], receiver.dtype, receiver.chunks)
        return super().attribute(receiver, name, ctx, module)


def _computed(array: Lazy, dtype: np.dtype, how: str) -> object:
    chunks = f"of {array.chunks:,} chunks " if array.chunks else ""
    cause = (f"{how} gathers the dask array {chunks}into one numpy array in this kernel: "
             f"{described(array.shape, dtype)}; {FIX}")
    return dense(array.shape, dtype, cause)


def _constructor(name: str, args: Args) -> object:
    """``da.ones((n, n), chunks=...)``, ``da.random.random(size)``, ``da.from_array(a)``, ``da.arange(n)``."""
    if name in _FILLED or name == "full":
        shape = int_shape(args.constant(0, "shape"))
        fill = args.constant(1, "fill_value") if name == "full" else None
        default = FLOAT64 if name != "full" else scalar_dtype(fill)
        dtype = dtype_arg(args.get(None if name != "full" else 2, "dtype", None), default)
        return UNKNOWN if shape is None or dtype is None else Lazy(shape, dtype)
    if name.startswith("random."):
        params = _RANDOM.get(name[7:])
        if params is None:
            return UNKNOWN
        size = args.constant(len(params), "size")
        shape = int_shape(size)
        return UNKNOWN if shape is None else Lazy(shape, DEFAULT_INT if name == "random.poisson" else FLOAT64)
    if name == "random.randint":
        shape = int_shape(args.constant(2, "size"))
        return UNKNOWN if shape is None else Lazy(shape, DEFAULT_INT)
    if name == "from_array":
        source = args.get(0, "x")
        if type(source) is Array and source.shape is not None and source.dtype is not None:
            return Lazy(source.shape, source.dtype)
        return UNKNOWN
    if name == "arange":
        stop = args.constant(0, "stop")
        if type(stop) is int and len(args.positional) <= 1 and stop >= 0:
            return Lazy((stop,), dtype_arg(args.get(None, "dtype", None), DEFAULT_INT) or DEFAULT_INT)
    return UNKNOWN
