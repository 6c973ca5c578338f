"""Reshapes whose result grows with the number of distinct values: ``get_dummies``
(one column per value), ``pivot``/``pivot_table``/``unstack`` (unique index ×
unique columns) and ``groupby`` on categoricals with ``observed=False`` (a row for
every combination of categories)."""

from __future__ import annotations

import math
import types
from typing import Any

import numpy as np

from kernel_guard.estimator.dtypes import as_dtype
from kernel_guard.estimator.libraries import Args, cost
from kernel_guard.estimator.libraries.pandas import keys
from kernel_guard.estimator.libraries.pandas.frames import (
    Column,
    Frame,
    Grouped,
    code_bytes,
    column,
    described,
    kind_of,
    made_frame,
)
from kernel_guard.estimator.values import UNKNOWN
from kernel_guard.sizes import format_bytes

# Seconds per input row pandas takes at least to factorize a column (integers; strings take
# ten times more), measured with benchmarks/bench_libraries.py on a busy 2-core machine.
SECONDS_PER_ROW = 10e-9
_ENCODED_KINDS = ("O", "T", "k")  # what get_dummies encodes in a DataFrame by default
_AGGREGATIONS = frozenset({"sum", "mean", "median", "min", "max", "first", "last", "std", "var", "prod", "count",
                           "nunique", "size", "agg", "aggregate"})


def _distinct(frame: Frame, label: object, allowance: cost.Allowance, module: types.ModuleType,
              bytes_per_value: float) -> int | None:
    """Distinct values of a column (``label``; ``None``: the series itself), within the allowance.
    What the first rows hold already bounds the result below: ``bytes_per_value`` bytes a row each."""
    series = frame.live if label is None and frame.series else column(frame, label)
    if series is None:
        return None
    if kind_of(series.dtype) == "k":
        return len(series.array.categories)  # every category, used or not
    values = keys.key_array(series)
    if values is None:
        return None
    rows = len(values)
    short = keys.span([values])
    what = f"counting the distinct values of {_name(label)}"
    predicted, first = allowance.probe(lambda n: keys.distinct(values, module, short, n), rows, what,
                                       lambda found: SECONDS_PER_ROW * rows + cost.SECONDS_PER_BYTE * found * rows
                                       * bytes_per_value)
    allowance.spend(predicted, what)
    return keys.distinct(values, module, short) if predicted else first


def _name(label: object) -> str:
    return "the series" if label is None else repr(label)


def get_dummies(data: object, args: Args, module: types.ModuleType) -> object:
    """``pd.get_dummies(data, prefix, prefix_sep, dummy_na, columns, sparse, drop_first, dtype)``."""
    if type(data) is not Frame or data.live is None or args.constant(5, "sparse", False) is not False:
        return UNKNOWN
    dummy_na, drop_first = args.constant(3, "dummy_na", False), args.constant(6, "drop_first", False)
    selected, dtype_arg = args.constant(4, "columns"), args.constant(7, "dtype")
    dtype = np.dtype(bool) if dtype_arg is None else as_dtype(dtype_arg)
    if dtype is None or type(dummy_na) is not bool or type(drop_first) is not bool:
        return UNKNOWN
    existing = described(data)
    if data.series:
        encoded: list = [None]
        kept: list[Column] = []
    else:
        if selected is None:
            encoded = [c.label for c in existing if c.kind in _ENCODED_KINDS]
        elif type(selected) in (list, tuple) and all(type(s) in (str, int) for s in selected):
            encoded = list(selected)
        else:
            return UNKNOWN
        kept = [c for c in existing if c.label not in encoded]
    if not encoded or any(label is None for label in encoded) and not data.series:
        return UNKNOWN
    assert data.rows is not None
    allowance = cost.Allowance(SECONDS_PER_ROW * data.rows * len(encoded), "get_dummies")
    made: list[tuple[object, int]] = []
    for label in encoded:
        found = _distinct(data, label, allowance, module, dtype.itemsize)
        if found is None:
            return UNKNOWN
        made.append((label, max(found + dummy_na - drop_first, 0)))
    new = sum(n for _, n in made)
    columns = kept + [Column(None, dtype.name, float(dtype.itemsize), dtype.kind)] * new
    result = made_frame(data.rows, columns, "")
    label, most = max(made, key=lambda item: item[1])
    where = "the series" if label is None else f"column {label!r}"
    result.cause = (f"{where} has {most:,} distinct values: get_dummies makes a {dtype.name} column for each, "
                    f"{data.rows:,} rows × {new:,} columns, {format_bytes(result.nbytes)}; encode an id-like column "
                    "as codes (.astype('category').cat.codes) or pass sparse=True")
    return result


def pivot(frame: object, args: Args, module: types.ModuleType, table: bool) -> object:
    """``df.pivot(columns=, index=, values=)`` (unique pairs) and ``df.pivot_table(values=,
    index=, columns=, aggfunc=)``: distinct index × distinct columns cells per value column."""
    if type(frame) is not Frame or frame.live is None or frame.series:
        return UNKNOWN
    if table:
        values, index, columns = args.constant(0, "values"), args.constant(1, "index"), args.constant(2, "columns")
        aggfunc = args.constant(3, "aggfunc", "mean")
        functions = len(aggfunc) if type(aggfunc) in (list, tuple) else 1 if type(aggfunc) is str else 0
    else:
        columns, index, values = args.constant(0, "columns"), args.constant(1, "index"), args.constant(2, "values")
        functions = 1
    index_labels, column_labels = _labels(index), _labels(columns)
    if not index_labels or not column_labels or not functions:
        return UNKNOWN
    existing = described(frame)
    value_labels = _labels(values) if values is not None else [
        c.label for c in existing if c.label not in index_labels + column_labels]
    if not value_labels or None in value_labels:
        return UNKNOWN
    assert frame.rows is not None
    allowance = cost.Allowance(SECONDS_PER_ROW * frame.rows * 2, "pivot_table" if table else "pivot")
    rows = _combinations(frame, index_labels, allowance, module)
    wide = _combinations(frame, column_labels, allowance, module)
    if rows is None or wide is None:
        return UNKNOWN
    cells = rows * wide
    holes = cells > frame.rows  # cells without a row are NaN
    by_label = {c.label: c for c in existing}
    result_columns = []
    for label in value_labels:
        source = by_label.get(label)
        if source is None:
            return UNKNOWN
        float_out = table or holes and source.kind in "iub"
        item = 8.0 if float_out else source.row_bytes
        result_columns += [Column(None, "float64" if float_out else source.dtype, item, "f")] * (wide * functions)
    result = made_frame(rows, result_columns, "", 8.0 * len(index_labels))
    what = "pivot_table" if table else "pivot"
    result.cause = (f"{_names(index_labels)} {_has(rows)} and {_names(column_labels)} {_has(wide)}: the {what} "
                    f"makes {rows:,} × {wide * functions * len(value_labels):,} cells, "
                    f"{format_bytes(result.nbytes)}{', mostly empty' if cells > 2 * frame.rows else ''}; keep the "
                    "long format (groupby) or pivot fewer values")
    return result


def _labels(value: Any) -> list:
    if type(value) in (str, int):
        return [value]
    if type(value) in (list, tuple) and all(type(v) in (str, int) for v in value):
        return list(value)
    return []


def _names(labels: list) -> str:
    return " × ".join(repr(label) for label in labels)


def _has(count: int) -> str:
    return f"has {count:,} distinct values" if count != 1 else "has one value"


def _combinations(frame: Frame, labels: list, allowance: cost.Allowance, module: types.ModuleType) -> int | None:
    """Distinct combinations of the columns ``labels`` that occur."""
    if len(labels) == 1:
        return _distinct(frame, labels[0], allowance, module, 8.0)
    found = [keys.key_array(s) if s is not None else None for s in (column(frame, label) for label in labels)]
    arrays = [a for a in found if a is not None]
    if len(arrays) != len(found):
        return None
    rows = frame.rows or 0
    spans = [keys.span([a]) for a in arrays]
    what = f"counting the combinations of {_names(labels)}"
    predicted, first = allowance.probe(
        lambda n: len(np.unique(keys.combined([a[:n] for a in arrays], module, spans))), rows, what)
    allowance.spend(predicted, what)
    return len(np.unique(keys.combined(arrays, module, spans))) if predicted else first


def unstack(frame: object, args: Args) -> object:
    """``obj.unstack(level=-1)`` of an object with a MultiIndex: the level's distinct codes
    become columns, the other levels' distinct combinations rows."""
    if type(frame) is not Frame or frame.live is None:
        return UNKNOWN
    level, fill_value = args.constant(0, "level", -1), args.constant(1, "fill_value")
    index = frame.live.index
    if index.nlevels < 2 or type(level) is not int or not -index.nlevels <= level < index.nlevels:
        return UNKNOWN
    codes = [np.asarray(c) for c in index.codes]
    moved = codes.pop(level)
    wide = int(np.count_nonzero(np.bincount(moved[moved >= 0]))) if len(moved) else 0
    if len(codes) == 1:
        rows = int(np.count_nonzero(np.bincount(codes[0][codes[0] >= 0]))) if len(codes[0]) else 0
    else:
        stacked = np.stack(codes, axis=1)
        rows = len(np.unique(stacked, axis=0))
    cells = rows * wide
    holes = cells > len(index) and fill_value is None
    result_columns = []
    for c in described(frame):
        float_out = holes and c.kind in "iub"
        result_columns += [Column(None, "float64" if float_out else c.dtype, 8.0 if float_out else c.row_bytes,
                                  "f" if float_out else c.kind)] * wide
    result = made_frame(rows, result_columns, "", 8.0 * len(codes))
    result.cause = (f"the unstacked level has {wide:,} distinct values and the other levels {rows:,}: unstack makes "
                    f"{rows:,} × {len(result_columns):,} cells, {format_bytes(result.nbytes)}; keep the long format "
                    "or select fewer values first")
    return result


def groupby(frame: object, args: Args, module: types.ModuleType) -> object:
    """``df.groupby(by, ..., observed=...)``: kept as ``Grouped`` for the aggregation that follows."""
    if type(frame) is not Frame or frame.live is None or frame.series:
        return UNKNOWN
    by = _labels(args.constant(0, "by"))
    default = not str(vars(module).get("__version__", "3")).startswith(("0.", "1.", "2."))  # True since pandas 3
    observed = args.constant(None, "observed", default)
    if not by or type(observed) is not bool:
        return UNKNOWN
    return Grouped(frame, by, observed)


def select(grouped: Grouped, key: object) -> object:
    selection = _labels(key)
    return Grouped(grouped.frame, grouped.keys, grouped.observed, selection) if selection else UNKNOWN


def aggregate(grouped: Grouped, name: str, args: Args, module: types.ModuleType) -> object:
    """An aggregation of a categorical groupby with ``observed=False``: a row for every
    combination of categories (and the observed values of other keys), used or not."""
    if grouped.observed or name not in _AGGREGATIONS:
        return UNKNOWN
    frame = grouped.frame
    series_of = [column(frame, label) for label in grouped.keys]
    if any(s is None for s in series_of) or not any(kind_of(s.dtype) == "k" for s in series_of):
        return UNKNOWN
    sizes = []
    for label, series in zip(grouped.keys, series_of):
        if kind_of(series.dtype) == "k":
            sizes.append(len(series.array.categories))
        else:
            allowance = cost.Allowance(SECONDS_PER_ROW * (frame.rows or 0), "groupby")
            found = _distinct(frame, label, allowance, module, 8.0)
            if found is None:
                return UNKNOWN
            sizes.append(found)
    rows = math.prod(sizes)
    if name == "size":
        values = [Column(None, "int64", 8.0, "i")]
    else:
        chosen = grouped.selection or [c.label for c in described(frame) if c.label not in grouped.keys]
        by_label = {c.label: c for c in described(frame)}
        if any(label not in by_label for label in chosen):
            return UNKNOWN
        functions = args.constant(0, "func", "sum") if name in ("agg", "aggregate") else name
        count = len(functions) if type(functions) in (list, tuple) else 1
        values = [Column(None, "float64", 8.0, "f")] * (len(chosen) * count)
    index_bytes = float(sum(code_bytes(n) for n in sizes))
    result = made_frame(rows, values, "", index_bytes, series=name == "size" or len(values) == 1)
    parts = ", ".join(f"{label!r} ({n:,} {'categories' if kind_of(s.dtype) == 'k' else 'values'})"
                      for label, n, s in zip(grouped.keys, sizes, series_of))
    result.cause = (f"groupby on {parts} with observed=False makes a row for every combination of categories, "
                    f"{rows:,} rows, {format_bytes(result.nbytes)}; pass observed=True")
    return result
