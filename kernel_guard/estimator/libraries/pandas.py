"""pandas in the estimator: the frames of the namespace and the operations that blow up.

Frames and series are read by exact type only. Their keys are counted by
pandas' own code, and only where no user code can run: numeric, boolean,
datetime and categorical columns, and text whose every value is verified to be
an exact ``str`` (a ``str`` subclass or any other object could run its own
``__hash__``/``__eq__`` when hashed: such a column is not read).
"""

from __future__ import annotations

import itertools
import operator
import types
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from kernel_guard.estimator.abstract import Foreign, Made
from kernel_guard.estimator.libraries import Args, Library, attr, cost
from kernel_guard.estimator.values import UNKNOWN
from kernel_guard.sizes import format_bytes

# Seconds pandas takes per input row to merge on one key (hash, join, take), measured
# with benchmarks/bench_libraries.py on a busy 2-core machine: the operation's own time.
MERGE_SECONDS_PER_ROW = 50e-9
_HASHABLE_KINDS = "biufcmM"  # numpy kinds pandas hashes without any Python object
_MERGE_HOWS = ("inner", "left", "right", "outer", "cross", "left_anti", "right_anti")


@dataclass(frozen=True)
class Column:
    label: object
    dtype: str
    row_bytes: float  # bytes of the column's buffers per row (pointers for objects)
    kind: str  # numpy kind of the dtype, "O" for objects, "x" for other extension types


@dataclass(eq=False)
class Frame(Foreign):
    """A DataFrame or Series: ``live`` is the user's object (exact type) when it
    existed before the cell, ``None`` for one the cell makes (sizes only)."""

    library: ClassVar[str] = "pandas"
    live: Any = field(repr=False)  # a pandas object: typed loosely, pandas is never imported
    rows: int | None
    columns: tuple[Column, ...] | None
    series: bool = False

    @property
    def nbytes(self) -> int | None:
        if self.rows is None or self.columns is None:
            return None
        return int(sum(c.row_bytes for c in self.columns) * self.rows)


def _exact_index(value: object, module: types.ModuleType) -> bool:
    kind = type(value)
    return any(kind is attr(module, name) for name in (
        "Index", "RangeIndex", "MultiIndex", "CategoricalIndex", "DatetimeIndex", "TimedeltaIndex", "PeriodIndex"))


def _columns(frame: Any, module: types.ModuleType, series: bool) -> tuple[Column, ...]:
    """What each column takes per row, from pandas' shallow ``memory_usage`` (which
    never looks at the objects a column points to)."""
    rows = max(len(frame), 1)
    if series:
        return (Column(frame.name if type(frame.name) in (str, int) else None, str(frame.dtype),
                       frame.memory_usage(index=False, deep=False) / rows, _kind(frame.dtype)),)
    usage = frame.memory_usage(index=False, deep=False).to_numpy()
    return tuple(Column(label, str(dtype), float(size) / rows, _kind(dtype))
                 for label, dtype, size in zip(_labels(frame.columns), frame.dtypes.to_numpy(), usage))


def _labels(index: Any) -> list:
    """Labels as plain values when they are exact ``str``/``int``; ``None`` stands for any other."""
    return [label if type(label) is str or type(label) is int else None for label in index.tolist()]


# numpy's dtype classes (numpy.dtypes.Int64DType, ...), compared by identity.
_NUMPY_DTYPES = tuple({type(np.dtype(code)) for code in np.typecodes["All"] + "O"})


def _kind(dtype: object) -> str:
    if any(type(dtype) is known for known in _NUMPY_DTYPES):
        return dtype.kind  # type: ignore[attr-defined]
    name = type(dtype).__name__
    return "c" if name == "CategoricalDtype" else "S" if name == "StringDtype" else "x"


class Pandas(Library):
    module = "pandas"
    functions = frozenset({"pandas.merge", "pandas.get_dummies", "pandas.concat", "pandas.read_csv"})

    def read(self, value: Any, module: types.ModuleType) -> object | None:
        kind = type(value)
        series = kind is attr(module, "Series")
        if not series and kind is not attr(module, "DataFrame"):
            return None
        if not _exact_index(value.index, module) or not (series or _exact_index(value.columns, module)):
            return None
        return Frame(value, len(value.index), None, series)

    def call(self, qualname: str, args: Args, ctx, module: types.ModuleType) -> object:
        if qualname == "pandas.merge":
            left, right = args.get(0, "left"), args.get(1, "right")
            rest = Args(args.positional[2:], {k: v for k, v in args.keywords.items() if k not in ("left", "right")},
                        args.unwrap)
            return _merge(left, right, rest, module)
        return UNKNOWN

    def method(self, receiver: Foreign, name: str, args: Args, ctx, module: types.ModuleType) -> object:
        if type(receiver) is not Frame:
            return UNKNOWN
        if name == "merge" and not receiver.series:
            rest = Args(args.positional[1:], {k: v for k, v in args.keywords.items() if k != "right"}, args.unwrap)
            return _merge(receiver, args.get(0, "right"), rest, module)
        return UNKNOWN

    def attribute(self, receiver: Foreign, name: str, ctx, module: types.ModuleType) -> object:
        if type(receiver) is Frame and name == "shape" and receiver.rows is not None:
            if receiver.series:
                return (receiver.rows,)
            columns = _described(receiver, module).columns
            return UNKNOWN if columns is None else (receiver.rows, len(columns))
        return super().attribute(receiver, name, ctx, module)


def _described(frame: Frame, module: types.ModuleType) -> Frame:
    """``frame`` with its columns known (read from the live object once)."""
    if frame.columns is None and frame.live is not None:
        frame.columns = _columns(frame.live, module, frame.series)
    return frame


# -- keys --------------------------------------------------------------------------


def _key_values(frame: Frame, key: object, module: types.ModuleType) -> np.ndarray | None:
    """The values of column ``key`` (or of the index for ``key is None``) that pandas
    may hash without user code, as an array; ``None`` if they cannot be read safely."""
    live = frame.live
    if live is None:
        return None
    if key is None:
        if type(live.index) is attr(module, "MultiIndex"):
            return None
        values = live.index
    elif frame.series:
        return None
    else:
        labels = _labels(live.columns)
        positions = [i for i, label in enumerate(labels) if type(label) is type(key) and label == key]
        if len(positions) != 1:
            return None
        values = live.iloc[:, positions[0]]
    kind = _kind(values.dtype)
    if kind == "c":  # the categories of each row: codes differ between frames
        categories = _key_array(values.array.categories)
        if categories is None:
            return None
        codes = np.asarray(values.array.codes)
        if (codes < 0).any():
            categories = np.append(categories.astype(object), [None])
        return categories[codes]
    return _key_array(values)


def _key_array(values: Any) -> np.ndarray | None:
    """A Series' or Index's values as an array, if pandas hashes them without Python objects
    or they are objects (to be verified as exact strings before hashing)."""
    kind = _kind(values.dtype)
    if kind in _HASHABLE_KINDS:
        return values.to_numpy()
    if kind in ("O", "S"):
        return values.to_numpy(dtype=object)  # verified to hold exact strings before hashing
    return None


def _exact_strings(objects: np.ndarray) -> bool:
    """Every value is an exact ``str`` (or NaN/None for missing): hashing them runs no user code."""
    if objects.dtype.kind != "O":
        return True
    kinds = list(map(type, objects))
    if all(map(operator.is_, kinds, itertools.repeat(str))):
        return True
    return all(kind is str or kind is float or kind is type(None) for kind in kinds)


def _counts(left: list[np.ndarray], right: list[np.ndarray], module: types.ModuleType) -> tuple[np.ndarray, ...]:
    """Rows per distinct key on each side (aligned), and a row holding each key.

    Raises ``ValueError`` for a column of objects that are not all exact strings."""
    if not all(_exact_strings(values) for values in left + right):
        raise ValueError("a key column holds objects other than exact strings")
    n_left = len(left[0])
    codes = None
    for lvalues, rvalues in zip(left, right):
        joined = np.concatenate([lvalues, rvalues])
        part = _codes(joined, module)
        codes = part if codes is None else _codes(codes * (int(part.max(initial=0)) + 1) + part, module)
    assert codes is not None
    size = int(codes.max()) + 1 if len(codes) else 0
    count_left = np.bincount(codes[:n_left], minlength=size)
    count_right = np.bincount(codes[n_left:], minlength=size)
    first = np.full(size, -1, dtype=np.int64)
    first[codes] = np.arange(len(codes))
    return count_left, count_right, first


def _codes(values: np.ndarray, module: types.ModuleType) -> np.ndarray:
    """Dense codes of equal values; integers in a short range need no hashing."""
    if values.dtype.kind in "iu" and len(values):
        low, high = int(values.min()), int(values.max())
        if high - low <= 4 * len(values):
            return (values - low).astype(np.int64, copy=False)
    return attr(module, "factorize")(values, use_na_sentinel=False)[0]


# -- merge -------------------------------------------------------------------------


def _merge(left: object, right: object, args: Args, module: types.ModuleType) -> object:
    """Rows of ``left.merge(right, ...)`` from the key counts of both sides, exactly."""
    if type(left) is not Frame or type(right) is not Frame or left.live is None or right.live is None:
        return UNKNOWN
    how = args.constant(0, "how", "inner")
    if how not in _MERGE_HOWS:
        return UNKNOWN
    on = args.constant(1, "on")
    left_on, right_on = args.constant(2, "left_on"), args.constant(3, "right_on")
    left_index, right_index = args.constant(4, "left_index", False), args.constant(5, "right_index", False)
    left, right = _described(left, module), _described(right, module)
    assert left.columns is not None and right.columns is not None and left.rows is not None
    assert right.rows is not None
    if how == "cross":
        rows = left.rows * right.rows
        return _made_merge(left, right, rows, set(), how, f"every row of the left meets every row of the right "
                           f"({left.rows:,} × {right.rows:,})", "merge on a key instead of how='cross'")
    lkeys = _keys(on, left_on, left_index, left, right)
    rkeys = _keys(on, right_on, right_index, right, left)
    if lkeys is None or rkeys is None or len(lkeys) != len(rkeys) or not lkeys:
        return UNKNOWN
    allowance = cost.Allowance(MERGE_SECONDS_PER_ROW * (left.rows + right.rows), f"{how} merge")
    lvalues = [_key_values(left, k, module) for k in lkeys]
    rvalues = [_key_values(right, k, module) for k in rkeys]
    if any(v is None for v in lvalues + rvalues) or any((v.dtype.kind == "O") != (w.dtype.kind == "O")
                                                        for v, w in zip(lvalues, rvalues)):  # type: ignore[union-attr]
        return UNKNOWN  # a key whose values may run user code, or keys pandas would not match

    def count(rows: int) -> object:
        return _counts([v[:rows] for v in lvalues], [v[:rows] for v in rvalues], module)  # type: ignore[index]

    allowance.spend(cost.probe(count, max(left.rows, right.rows)), "counting the keys of both sides")
    count_left, count_right, first = _counts(lvalues, rvalues, module)  # type: ignore[arg-type]
    pairs = count_left * count_right
    matched = int(pairs.sum())
    only_left = int(count_left[count_right == 0].sum())
    only_right = int(count_right[count_left == 0].sum())
    rows = {"inner": matched, "left": matched + only_left, "right": matched + only_right,
            "outer": matched + only_left + only_right, "left_anti": only_left, "right_anti": only_right}[how]
    missing = set()
    if how in ("left", "outer") and only_left:
        missing.add("right")
    if how in ("right", "outer") and only_right:
        missing.add("left")
    worst = int(np.argmax(pairs)) if len(pairs) else -1
    names = ", ".join(repr(k) if k is not None else "the index" for k in lkeys)
    if worst >= 0 and pairs[worst] > 1 and count_left[worst] > 1 and count_right[worst] > 1:
        value = _shown(lvalues, rvalues, int(first[worst]), left.rows)
        why = (f"key {names}{value} is on {count_left[worst]:,} rows of the left and {count_right[worst]:,} of the "
               f"right ({int(pairs[worst]):,} rows from it alone)")
        fix = ("check the keys with validate='one_to_one' (or 'many_to_one'), or drop_duplicates(subset=...) "
               "first")
    elif worst >= 0 and pairs[worst] > 1:
        side = "left" if count_left[worst] > 1 else "right"
        why = f"keys {names} repeat on the {side} ({int(pairs[worst]):,} rows for the most frequent one)"
        fix = "check the keys with validate=..., or drop_duplicates(subset=...) first"
    else:
        why = f"{matched:,} rows match on {names}"
        fix = "select the columns you need before merging"
    return _made_merge(left, right, rows, missing, how, why, fix, lkeys if lkeys == rkeys else None)


def _keys(on: object, side_on: object, side_index: object, frame: Frame, other: Frame) -> list | None:
    """The key labels of one side, ``None`` standing for its index."""
    if side_index is True:
        return [None]
    keys = on if on is not None else side_on
    if keys is None:
        assert frame.columns is not None and other.columns is not None
        theirs = {c.label for c in other.columns if c.label is not None}
        keys = [c.label for c in frame.columns if c.label in theirs]
    if type(keys) in (str, int):
        keys = [keys]
    if type(keys) not in (list, tuple) or not all(type(k) in (str, int) for k in keys):
        return None
    return list(keys)


def _shown(lvalues: list, rvalues: list, row: int, n_left: int) -> str:
    if len(lvalues) != 1:
        return ""
    values = lvalues[0] if row < n_left else rvalues[0]
    value = values[row if row < n_left else row - n_left]
    if type(value) is str or np.issubdtype(type(value), np.integer):
        text = repr(value if type(value) is str else int(value))
        return f" = {text[:40]}" if len(text) <= 40 else f" = {text[:37]}..."
    return ""


def _made_merge(left: Frame, right: Frame, rows: int, missing: set, how: str, why: str, fix: str,
                shared: list | None = None) -> Made:
    assert left.columns is not None and right.columns is not None
    skip = set(shared or ())
    columns = [*_side(left.columns, "left" in missing), *(
        c for c in _side(right.columns, "right" in missing) if c.label not in skip)]
    if how in ("left_anti",):
        columns = list(_side(left.columns, False)) + [c for c in _side(right.columns, True) if c.label not in skip]
    result = Frame(None, rows, tuple(columns))
    nbytes = result.nbytes or 0
    dtypes = {c.dtype for c in columns}
    cause = f"{why}: the {how} merge makes {rows:,} rows × {len(columns)} columns, {format_bytes(nbytes)}; {fix}"
    return Made(result, (rows, len(columns)), dtypes.pop() if len(dtypes) == 1 else "mixed", nbytes, cause)


def _side(columns: tuple[Column, ...], padded: bool) -> list[Column]:
    """The columns of one side in the result; rows it lacks are NaN, which turns
    integers into float64 and booleans into objects."""
    if not padded:
        return list(columns)
    return [Column(c.label, "float64", 8.0, "f") if c.kind in "iu" else Column(c.label, "object", 8.0, "O")
            if c.kind == "b" else c for c in columns]
