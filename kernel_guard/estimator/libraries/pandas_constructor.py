"""``pd.DataFrame(array)``: the frame pandas builds from a 2-D numpy array.

Since pandas 3 (copy-on-write), ``DataFrame(ndarray)`` copies the array unless
``copy=False``: ``pd.DataFrame(np.random.rand(n, m))`` holds two arrays of that size
at its peak. Known from the array's shape alone (``static``), so kernel-lint sees it;
with pandas 2 loaded in the kernel (which shares the array) nothing is counted.
"""

from __future__ import annotations

import sys
import types

from kernel_guard.estimator.abstract import Array, Made
from kernel_guard.estimator.libraries import Args, Library, attr
from kernel_guard.estimator.libraries.dense import described
from kernel_guard.estimator.libraries.pandas.frames import Column, Frame
from kernel_guard.estimator.values import UNKNOWN

_WIDE = 10_000


class PandasConstructor(Library):
    module = "pandas.DataFrame"
    static = True

    def call(self, qualname: str, args: Args, ctx, module: types.ModuleType | None) -> object:
        if qualname != "pandas.DataFrame" or len(args.positional) > 1 or set(args.keywords) - {"data", "copy"}:
            return UNKNOWN  # columns=/index=/dtype= change what is built: not estimated
        data = args.get(0, "data", None)
        if type(data) is not Array or data.shape is None or len(data.shape) != 2 or data.dtype is None:
            return UNKNOWN
        if args.constant(None, "copy", None) is False or not _copies():
            return UNKNOWN
        rows, width = data.shape
        column = Column(None, data.dtype.name, data.dtype.itemsize, data.dtype.kind)
        # one shared description per column, labels 0..width-1; past _WIDE columns not described
        columns = tuple(Column(i, column.dtype, column.row_bytes, column.kind) for i in range(width)) \
            if width <= _WIDE else None
        cause = (f"pandas copies the array into the frame: {described(data.shape, data.dtype)} more while both are "
                 "alive; pass copy=False to share it, or build the frame from a smaller dtype")
        nbytes = rows * width * data.dtype.itemsize
        return Made(Frame(None, rows, columns), data.shape, data.dtype, nbytes, cause)


def _copies() -> bool:
    """pandas 3 copies a 2-D ndarray by default; an older pandas already loaded shares it."""
    pandas = sys.modules.get("pandas")
    version = attr(pandas, "__version__") if type(pandas) is types.ModuleType else None
    return type(version) is not str or version[:2] not in ("0.", "1.", "2.")
