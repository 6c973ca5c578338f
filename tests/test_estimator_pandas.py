"""pandas in the estimator: every form against the real result's size, and no user code run."""

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from kernel_guard.estimator import estimate


def real_nbytes(result) -> int:
    """What the result's buffers take (pointers for objects, as in the estimate)."""
    return int(result.memory_usage(deep=False, index=False).sum())


def only(source, namespace):
    allocations = estimate(source, namespace).allocations
    assert len(allocations) == 1, allocations
    return allocations[0]


def close(estimated: int, real: int, share: float = 0.05) -> bool:
    return abs(estimated - real) <= share * real


def frames(n_keys: int, dup_left: int, dup_right: int, text: bool = False):
    keys = [f"k{i}" for i in range(n_keys)] if text else list(range(n_keys))
    left = pd.DataFrame({"key": np.repeat(keys, dup_left), "a": np.arange(n_keys * dup_left, dtype=np.int32)})
    right = pd.DataFrame({"key": np.repeat(keys[n_keys // 3:] + keys[:1], dup_right),
                          "b": np.ones((n_keys - n_keys // 3 + 1) * dup_right)})
    return left, right


@pytest.mark.parametrize("how", ["inner", "left", "right", "outer", "cross"])
@pytest.mark.parametrize("text", [False, True])
def test_merge_rows_are_exact_for_every_how(how, text):
    left, right = frames(300, 3, 4, text)
    on = "" if how == "cross" else ", on='key'"
    found = only(f"m = left.merge(right, how={how!r}{on})", {"left": left, "right": right})
    real = left.merge(right, how=how, **({} if how == "cross" else {"on": "key"}))
    assert found.shape == real.shape
    assert close(found.nbytes, real_nbytes(real))
    assert found.cause and f"{len(real):,} rows" in found.cause


def test_merge_cause_names_the_key_both_sides_repeat():
    left = pd.DataFrame({"name": ["x"] * 2000, "v": np.arange(2000)})
    right = pd.DataFrame({"name": ["x"] * 2000, "w": np.arange(2000.0)})
    found = only("import pandas as pd\nm = pd.merge(left, right, on='name')", {"left": left, "right": right})
    assert found.line == 2 and found.shape == (4_000_000, 3)
    assert "key 'name' = 'x' is on 2,000 rows of the left and 2,000 of the right" in found.cause
    assert "validate=" in found.cause and "drop_duplicates" in found.cause


def test_merge_without_pandas_imported_reads_nothing(monkeypatch):
    import sys

    left, right = frames(10, 2, 2)
    monkeypatch.delitem(sys.modules, "pandas")
    assert estimate("m = left.merge(right, on='key')", {"left": left, "right": right}).allocations == []
