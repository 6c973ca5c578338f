"""scikit-learn's pairwise functions in the estimator: a dense n × m result.

``cosine_similarity(tfidf)`` of 100,000 documents compares every pair: a 100,000 ×
100,000 float64 matrix, 74.5 GiB, however sparse the input. The row counts come from
the inputs (numpy arrays, scipy sparse matrices, pandas frames); scikit-learn works
in float32 only when every input is float32. Known without scikit-learn (``static``).
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np

from kernel_guard.estimator.abstract import Array
from kernel_guard.estimator.dtypes import FLOAT64
from kernel_guard.estimator.libraries import Args, Library
from kernel_guard.estimator.libraries.dense import dense, described
from kernel_guard.estimator.libraries.pandas import Frame
from kernel_guard.estimator.libraries.scipy_sparse import Sparse
from kernel_guard.estimator.values import UNKNOWN

FLOAT32 = np.dtype("float32")
PAIRWISE = ("cosine_similarity", "linear_kernel", "euclidean_distances", "pairwise_distances")
# Functions whose output stays sparse for sparse input when asked (``dense_output=False``).
_SPARSE_OUTPUT = ("cosine_similarity", "linear_kernel")


class SklearnPairwise(Library):
    module = "sklearn"
    static = True
    functions = frozenset({f"sklearn.metrics.pairwise.{name}" for name in PAIRWISE}
                          | {"sklearn.metrics.pairwise_distances"})

    def call(self, qualname: str, args: Args, ctx, module: types.ModuleType | None) -> object:
        owner, _, name = qualname.rpartition(".")
        if name not in PAIRWISE or owner not in ("sklearn.metrics.pairwise", "sklearn.metrics"):
            return UNKNOWN
        if owner == "sklearn.metrics" and name != "pairwise_distances":
            return UNKNOWN
        x, y = args.get(0, "X"), args.get(1, "Y", None)
        if y is None:
            y = x
        rows = [_rows(v) for v in (x, y)]
        if rows[0] is None or rows[1] is None:
            return UNKNOWN
        sparse_in = type(x) is Sparse or type(y) is Sparse
        if name in _SPARSE_OUTPUT and sparse_in and args.constant(2, "dense_output", True) is not True:
            return UNKNOWN
        both32 = all(_dtype(v) == FLOAT32 for v in (x, y))
        metric = args.constant(2, "metric", "euclidean") if name == "pairwise_distances" else "euclidean"
        dtype = FLOAT32 if both32 and metric == "euclidean" else FLOAT64  # scipy's metrics work in float64
        shape = (rows[0], rows[1])
        other = "Y" if args.get(1, "Y", None) is not None else "X"
        cause = (f"{name} compares every row of X with every row of {other}"
                 f"{', and its result is dense however sparse the input' if sparse_in else ''}: "
                 f"{described(shape, dtype)}; keep the nearest few per row (sklearn.neighbors.NearestNeighbors), "
                 "or go through it in blocks (sklearn.metrics.pairwise_distances_chunked)")
        return dense(shape, dtype, cause)


def _rows(value: Any) -> int | None:
    kind = type(value)
    if kind is Array and value.shape is not None and len(value.shape) == 2:
        return value.shape[0]
    if kind is Sparse and len(value.shape) == 2:
        return value.shape[0]
    if kind is Frame and not value.series:
        return value.rows
    return None


def _dtype(value: Any) -> np.dtype | None:
    kind = type(value)
    if kind is Array or kind is Sparse:
        return value.dtype
    return None
