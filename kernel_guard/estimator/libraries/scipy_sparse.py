"""scipy.sparse in the estimator: ``toarray()``/``todense()`` of a sparse matrix or array.

A sparse matrix holds its stored values only; densifying it allocates every cell:
a 100,000 × 50,000 TF-IDF matrix of 5 M values (60 MiB) becomes 37 GiB. Live
matrices are read by exact type (``csr_matrix``, ``coo_array``...): shape, dtype and,
for the formats that keep it as a count (compressed and coordinate), ``nnz``. The
constructors whose sizes are constants in the code (``sparse.random(n, m)``,
``sparse.eye(n)``, ``sparse.csr_matrix((n, m))``) are known without scipy (``static``).
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from kernel_guard.estimator.abstract import Foreign
from kernel_guard.estimator.dtypes import FLOAT64, dtype_arg
from kernel_guard.estimator.libraries import Args, Library, attr
from kernel_guard.estimator.libraries.dense import dense, described, int_shape, numpy_dtype
from kernel_guard.estimator.values import UNKNOWN

_FORMATS = ("csr", "csc", "coo", "bsr", "dia", "dok", "lil")
_CLASSES = tuple(f"{fmt}_{kind}" for fmt in _FORMATS for kind in ("matrix", "array"))
_COUNTED = ("csr", "csc", "coo", "bsr")  # nnz is a length there, not a walk over rows


@dataclass(eq=False)
class Sparse(Foreign):
    """A scipy sparse matrix or array: ``nnz`` when known."""

    library: ClassVar[str] = "scipy.sparse"
    shape: tuple[int, ...]
    dtype: np.dtype
    nnz: int | None = None
    live: Any = field(default=None, repr=False)


class ScipySparse(Library):
    module = "scipy.sparse"
    static = True

    def read(self, value: Any, module: types.ModuleType) -> object | None:
        kind = type(value)
        name = next((name for name in _CLASSES if kind is attr(module, name)), None)
        if name is None:
            return None
        shape, dtype = int_shape(value.shape), numpy_dtype(value.dtype)
        if shape is None or dtype is None:
            return None
        nnz = value.nnz if name[:3] in _COUNTED else None
        return Sparse(shape, dtype, nnz if type(nnz) is int else None, value)

    def call(self, qualname: str, args: Args, ctx, module: types.ModuleType | None) -> object:
        name = qualname.rpartition(".")[2]
        if name in ("random", "rand"):
            shape = int_shape((args.constant(0, "m"), args.constant(1, "n")))
            return _random(shape, args, 2, 4)
        if name == "random_array":
            return _random(int_shape(args.constant(0, "shape")), args, None, None)
        if name in ("eye", "eye_array", "identity"):
            n = args.constant(0, "m" if name != "identity" else "n")
            m = args.constant(1, "n") if name != "identity" else None
            shape = int_shape((n, n if m is None else m))
            dtype = dtype_arg(args.get(None if name != "identity" else 1, "dtype", None), FLOAT64)
            return UNKNOWN if shape is None or dtype is None else Sparse(shape, dtype, min(shape))
        if name in _CLASSES:  # csr_matrix((n, m)): an empty matrix of that shape
            shape = int_shape(args.constant(0, "arg1"))
            dtype = dtype_arg(args.get(2, "dtype", None), FLOAT64)
            if shape is None or len(shape) != 2 or dtype is None:
                return UNKNOWN
            return Sparse(shape, dtype, 0)
        return UNKNOWN

    def method(self, receiver: Foreign, name: str, args: Args, ctx, module: types.ModuleType | None) -> object:
        if type(receiver) is not Sparse or name not in ("toarray", "todense"):
            return UNKNOWN
        if args.get(1, "out", None) is not None:
            return UNKNOWN  # written into the user's own array
        return dense(receiver.shape, receiver.dtype, densify_cause(receiver, f".{name}()"))


def _random(shape: tuple[int, ...] | None, args: Args, density_at: int | None, dtype_at: int | None) -> object:
    """``random(m, n, density, format, dtype)``; ``random_array(shape, *, density, ..., dtype)``."""
    density = args.constant(density_at, "density", 0.01)
    dtype = dtype_arg(args.get(dtype_at, "dtype", None), FLOAT64)
    if shape is None or type(density) not in (int, float) or not 0 <= density <= 1 or dtype is None:
        return UNKNOWN
    cells = 1
    for d in shape:
        cells *= d
    return Sparse(shape, dtype, round(density * cells))


def densify_cause(matrix: Sparse, how: str) -> str:
    stored = "" if matrix.nnz is None else f" stores {matrix.nnz:,} values, but"
    return (f"the sparse matrix{stored} {how} makes every cell: {described(matrix.shape, matrix.dtype)}; "
            "keep it sparse (scipy and most scikit-learn estimators take sparse input), "
            "or densify a block of rows at a time (X[i:i + k].toarray())")
