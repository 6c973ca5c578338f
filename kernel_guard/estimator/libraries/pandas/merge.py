"""``merge``/``join``: the result's rows, exactly, from the key counts of both sides.

For every key k, an inner merge makes count_left(k) × count_right(k) rows; a
left (right, outer) merge adds the left (right, both) rows whose key the other
side lacks, and pads the other side's columns with NaN.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np

from kernel_guard.estimator.libraries import Args, cost
from kernel_guard.estimator.libraries.pandas import keys
from kernel_guard.estimator.libraries.pandas.frames import (
    Column,
    Frame,
    column,
    described,
    made_frame,
    padded,
)
from kernel_guard.estimator.values import UNKNOWN
from kernel_guard.sizes import format_bytes

# Seconds pandas takes per input row to merge on one key (hash, join), measured with
# benchmarks/bench_libraries.py on a busy 2-core machine: the operation's own time.
SECONDS_PER_ROW = 60e-9
_HOWS = ("inner", "left", "right", "outer", "cross", "left_anti", "right_anti")


def merge(left: object, right: object, args: Args, module: types.ModuleType) -> object:
    """``pd.merge(left, right, how, on, left_on, right_on, left_index, right_index, ...)``,
    ``args`` holding the arguments after ``right``."""
    if type(left) is not Frame or type(right) is not Frame or left.live is None or right.live is None:
        return UNKNOWN
    if left.series or right.series:
        return UNKNOWN
    how = args.constant(0, "how", "inner")
    if how not in _HOWS:
        return UNKNOWN
    on = args.constant(1, "on")
    if how == "cross":
        return _cross(left, right)
    left_keys = _keys(on, args.constant(2, "left_on"), args.constant(4, "left_index", False), left, right)
    right_keys = _keys(on, args.constant(3, "right_on"), args.constant(5, "right_index", False), right, left)
    if left_keys is None or right_keys is None or len(left_keys) != len(right_keys) or not left_keys:
        return UNKNOWN
    shared = left_keys if left_keys == right_keys else []
    return _counted(left, right, left_keys, right_keys, how, shared, 0.0, "merge", module)


def join(left: object, other: object, args: Args, module: types.ModuleType) -> object:
    """``left.join(other, on=None, how='left', ...)``: ``on`` columns (or the index) of
    ``left`` against the index of ``other``."""
    if type(left) is not Frame or type(other) is not Frame or left.live is None or other.live is None:
        return UNKNOWN
    how = args.constant(1, "how", "left")
    if how not in _HOWS or how == "cross" or left.series:
        return UNKNOWN
    on = args.constant(0, "on")
    left_keys = [None] if on is None else [on] if type(on) in (str, int) else on
    if type(left_keys) not in (list, tuple) or not all(k is None or type(k) in (str, int) for k in left_keys):
        return UNKNOWN
    if len(left_keys) != 1:
        return UNKNOWN
    return _counted(left, other, list(left_keys), [None], how, [], 8.0, "join", module)


def _keys(on: Any, side_on: Any, side_index: object, frame: Frame, other: Frame) -> list | None:
    """The key labels of one side, ``None`` standing for its index."""
    if side_index is True:
        return [None]
    labels = on if on is not None else side_on
    if labels is None:  # the columns both sides have
        theirs = {c.label for c in described(other) if c.label is not None}
        labels = [c.label for c in described(frame) if c.label in theirs]
    if type(labels) in (str, int):
        labels = [labels]
    if type(labels) not in (list, tuple) or not all(type(k) in (str, int) for k in labels):
        return None
    return list(labels)


def _values(frame: Frame, label: object) -> np.ndarray | None:
    if label is None:
        index = frame.live.index
        return None if index.nlevels != 1 else keys.key_array(index)
    series = column(frame, label)
    return None if series is None else keys.key_array(series)


def _counted(left: Frame, right: Frame, left_keys: list, right_keys: list, how: str, shared: list,
             index_bytes: float, verb: str, module: types.ModuleType) -> object:
    assert left.rows is not None and right.rows is not None
    left_values = [_values(left, k) for k in left_keys]
    right_values = [_values(right, k) for k in right_keys]
    if any(v is None for v in left_values + right_values):
        return UNKNOWN  # a key that may run user code when hashed
    lv: list[np.ndarray] = left_values  # type: ignore[assignment]
    rv: list[np.ndarray] = right_values  # type: ignore[assignment]
    if any((a.dtype.kind == "O") != (b.dtype.kind == "O") for a, b in zip(lv, rv)):
        return UNKNOWN  # objects against numbers: pandas refuses or casts
    row_bytes = sum(c.row_bytes for c in described(left)) + sum(c.row_bytes for c in described(right))
    allowance = cost.Allowance(SECONDS_PER_ROW * (left.rows + right.rows), f"{how} {verb}")
    spans = [keys.span([a, b]) for a, b in zip(lv, rv)]
    what = "counting the keys of both sides"

    input_seconds = SECONDS_PER_ROW * (left.rows + right.rows)

    def teach(found: tuple) -> float:  # the first rows' pairs alone make that many rows
        return input_seconds + cost.SECONDS_PER_BYTE * int(np.dot(found[0], found[1])) * row_bytes

    predicted, first = allowance.probe(lambda n: keys.counts(lv, rv, module, spans, n), max(left.rows, right.rows),
                                       what, teach)
    allowance.spend(predicted, what)
    count_left, count_right, left_codes, _ = keys.counts(lv, rv, module, spans) if predicted else first
    matched = int(np.dot(count_left, count_right))  # Σ count_left(k) × count_right(k)
    # rows of one side whose key the other lacks, only where the merge keeps them
    only_left = int(count_left[count_right == 0].sum()) if how in ("left", "outer", "left_anti") else 0
    only_right = int(count_right[count_left == 0].sum()) if how in ("right", "outer", "right_anti") else 0
    rows = {"inner": matched, "left": matched + only_left, "right": matched + only_right,
            "outer": matched + only_left + only_right, "left_anti": only_left, "right_anti": only_right}[how]
    pad_left = how in ("right", "outer") and only_right > 0
    pad_right = how in ("left", "outer") and only_left > 0 or how == "left_anti"
    if how == "right_anti":
        pad_left = True
    columns = [padded(c) if pad_left else c for c in described(left)]
    columns += [padded(c) if pad_right else c for c in described(right) if c.label not in shared or c.label is None]
    if how.endswith("_anti"):
        side = how.partition("_")[0]
        why, fix = f"{rows:,} rows of the {side} have no key on the other side", "select the columns you need first"
    else:
        why, fix = _why(left_keys, lv, count_left, count_right, matched, left_codes)
    return _made(rows, columns, how, verb, why, fix, index_bytes)


def _why(labels: list, lv: list, count_left: np.ndarray, count_right: np.ndarray, matched: int,
         left_codes: np.ndarray) -> tuple[str, str]:
    names = ", ".join("the index" if k is None else repr(k) for k in labels)
    if not len(count_left) or max(int(count_left.max()), int(count_right.max())) <= 1:  # one row per key
        return f"{matched:,} rows match on {names}", "select the columns you need before merging"
    pairs = count_left * count_right
    worst = int(np.argmax(pairs))
    most = int(pairs[worst])
    if most <= 1:
        return f"{matched:,} rows match on {names}", "select the columns you need before merging"
    if count_left[worst] > 1 and count_right[worst] > 1:
        value = _shown(lv, int(np.argmax(left_codes == worst)))
        return ((f"key {names}{value} is on {int(count_left[worst]):,} rows of the left and "
                f"{int(count_right[worst]):,} of the right ({most:,} rows from it alone)"),
                "check the keys with validate='one_to_one' (or 'many_to_one'), or drop_duplicates(subset=...) first")
    side = "left" if count_left[worst] > 1 else "right"
    return (f"keys {names} repeat on the {side} ({most:,} rows for the most frequent one)",
            "check the keys with validate=..., or drop_duplicates(subset=...) first")


def _shown(lv: list, row: int) -> str:
    """`` = 'x'``: the key value (of the left's ``row``), when it is one plain string or integer."""
    if len(lv) != 1:
        return ""
    value = lv[0][row]
    if type(value) is str:
        text = repr(value)
    elif isinstance(value, (int, np.integer)) and type(value) is not bool:
        text = repr(int(value))
    else:
        return ""
    return f" = {text}" if len(text) <= 40 else f" = {text[:37]}..."


def _cross(left: Frame, right: Frame) -> object:
    assert left.rows is not None and right.rows is not None
    rows = left.rows * right.rows
    columns = list(described(left)) + list(described(right))
    why = f"every row of the left meets every row of the right ({left.rows:,} × {right.rows:,})"
    return _made(rows, columns, "cross", "merge", why, "merge on a key instead of how='cross'", 0.0)


def _made(rows: int, columns: list[Column], how: str, verb: str, why: str, fix: str, index_bytes: float) -> object:
    made = made_frame(rows, columns, "", index_bytes)
    made.cause = (f"{why}: the {how} {verb} makes {rows:,} rows × {len(columns)} columns, "
                  f"{format_bytes(made.nbytes)}; {fix}")
    return made
