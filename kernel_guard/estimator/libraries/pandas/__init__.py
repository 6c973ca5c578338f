"""pandas in the estimator: frames and series of the namespace, and the operations
on them that blow up a kernel (SPEC section 3).

Frames are read by exact type only; pandas' own code runs on them to count keys,
within ``cost.Allowance``. What each form computes is in its module: ``merge``
(merge, join), ``reshape`` (get_dummies, pivot, pivot_table, unstack, categorical
groupby), ``arrays`` (.values, .to_numpy(), np.asarray, concat), ``files`` (read_csv).
"""

from __future__ import annotations

import types
from typing import Any

from kernel_guard.estimator.abstract import Foreign
from kernel_guard.estimator.libraries import Args, Library
from kernel_guard.estimator.libraries.pandas import arrays, files, merge, reshape
from kernel_guard.estimator.libraries.pandas.frames import (
    Frame,
    Grouped,
    column,
    described,
    read_frame,
)
from kernel_guard.estimator.values import UNKNOWN

_ARRAY_FUNCTIONS = frozenset({"numpy.asarray", "numpy.array", "numpy.asanyarray", "numpy.ascontiguousarray"})


def _after(args: Args, skip: int, names: tuple[str, ...]) -> Args:
    """The arguments that follow the first ``skip`` positional ones (also given by name)."""
    return Args(args.positional[skip:], {k: v for k, v in args.keywords.items() if k not in names}, args.unwrap)


class Pandas(Library):
    module = "pandas"
    functions = frozenset({"pandas.merge", "pandas.get_dummies", "pandas.concat", *files.READERS})

    def read(self, value: Any, module: types.ModuleType) -> object | None:
        return read_frame(value, module)

    def call(self, qualname: str, args: Args, ctx, module: types.ModuleType) -> object:
        if qualname == "pandas.merge":
            return merge.merge(args.get(0, "left"), args.get(1, "right"), _after(args, 2, ("left", "right")), module)
        if qualname == "pandas.get_dummies":
            return reshape.get_dummies(args.get(0, "data"), _after(args, 1, ("data",)), module)
        if qualname == "pandas.concat":
            return arrays.concat(args.get(0, "objs"), args)
        if qualname in files.READERS and ctx.namespace is not None:
            # a live kernel only: kernel-lint's findings must not depend on the files it can see
            return files.read(qualname, args, module)
        if qualname in _ARRAY_FUNCTIONS and args.positional:
            return arrays.as_array(args.positional[0], _after(args, 1, ("a", "object")),
                                   copy_only=qualname == "numpy.array", module=module)
        return UNKNOWN

    def method(self, receiver: Foreign, name: str, args: Args, ctx, module: types.ModuleType) -> object:
        if type(receiver) is Grouped:
            return reshape.aggregate(receiver, name, args, module)
        if type(receiver) is not Frame:
            return UNKNOWN
        if name == "merge":
            return merge.merge(receiver, args.get(0, "right"), _after(args, 1, ("right",)), module)
        if name == "join":
            return merge.join(receiver, args.get(0, "other"), _after(args, 1, ("other",)), module)
        if name == "to_numpy":
            return arrays.as_array(receiver, args, copy_only=args.constant(1, "copy", False) is True, module=module)
        if name in ("pivot", "pivot_table"):
            return reshape.pivot(receiver, args, module, name == "pivot_table")
        if name == "unstack":
            return reshape.unstack(receiver, args)
        if name == "groupby":
            return reshape.groupby(receiver, args, module)
        return UNKNOWN

    def attribute(self, receiver: Foreign, name: str, ctx, module: types.ModuleType) -> object:
        if type(receiver) is Frame and name == "values":
            return arrays.as_array(receiver, None, copy_only=False, module=module)
        if type(receiver) is Frame and name == "shape" and receiver.rows is not None:
            columns = described(receiver) if receiver.live is not None else receiver.columns
            if receiver.series or columns is None:
                return (receiver.rows,) if receiver.series else UNKNOWN
            return (receiver.rows, len(columns))
        return super().attribute(receiver, name, ctx, module)

    def subscript(self, receiver: Foreign, key: object, ctx, module: types.ModuleType) -> object:
        if type(receiver) is Grouped:
            return reshape.select(receiver, key)
        if type(receiver) is Frame and not receiver.series:
            series = column(receiver, key)
            if series is not None:
                return Frame(series, len(series), None, True)
        return UNKNOWN
