"""What the pre-run check of a pandas line costs against the operation itself.

    .venv/bin/python benchmarks/bench_libraries.py [--repeat 5] [--rows 2000000]

1. Accuracy: every pandas form on 200,000-row frames (with an allowance that never
   runs out: sizes are measured here, not the time bound), the estimate against the real
   result (``memory_usage(deep=False)`` with the index; ``read_csv``: ``deep=True``,
   the strings are new; an object array: its pointers and the numbers it boxes).
2. Cost: for each case, ``estimate(line, namespace)`` (what ``%%guard`` runs before the
cell) and the line itself, alternated, medians of ``--repeat`` runs, in CPU time of
the thread (what the allowance counts; on a busy machine wall time mostly measures
the other processes) and in wall time. Reported: both times, their ratio (SPEC: at
most 10%, never more than 0.5 s) and what the check concluded (the size it found, or
the notice it gave up with). Everything
stays under ~600 MB: run it outside a cgroup on a shared machine only with the
default sizes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import numpy as np
import pandas as pd

from kernel_guard.estimator import estimate
from kernel_guard.estimator.libraries import cost
from kernel_guard.sizes import format_bytes


def cases(rows: int) -> list[tuple[str, str, dict]]:
    rng = np.random.default_rng(0)
    ints = pd.DataFrame({"key": rng.permutation(rows), "a": rng.random(rows), "b": rng.integers(0, 100, rows)})
    other = pd.DataFrame({"key": rng.permutation(rows), "c": rng.random(rows)})
    words = pd.DataFrame({"key": ints["key"].astype(str), "a": ints["a"]})
    words_other = pd.DataFrame({"key": other["key"].astype(str), "c": other["c"]})
    dup = rows // 20  # 20 rows per key on both sides: the merge makes 20 times the rows
    dup_left = pd.DataFrame({"key": np.repeat(np.arange(dup // 20), 20), "a": 1.0})
    dup_right = pd.DataFrame({"key": np.repeat(np.arange(dup // 20), 20), "c": 2.0})
    codes = pd.DataFrame({"code": rng.integers(0, 100, rows), "city": rng.choice([f"c{i}" for i in range(300)], rows)})
    return [
        ("merge, 2 M × 2 M rows, int keys 1:1", "m = left.merge(right, on='key')", {"left": ints, "right": other}),
        ("merge, 2 M × 2 M rows, str keys 1:1", "m = left.merge(right, on='key')",
         {"left": words, "right": words_other}),
        (f"merge, {dup:,} × {dup:,} rows, 20 × 20 per key", "m = left.merge(right, on='key')",
         {"left": dup_left, "right": dup_right}),
        ("get_dummies, 2 M rows, 100 int values", "d = pd.get_dummies(df['code'])", {"df": codes, "pd": pd}),
        ("get_dummies, 2 M rows, 300 str values", "d = pd.get_dummies(df['city'])", {"df": codes, "pd": pd}),
    ]


def accuracy_cases(directory: str) -> list[tuple[str, dict]]:
    rng = np.random.default_rng(1)
    n = 200_000
    df = pd.DataFrame({"user": rng.integers(0, 5000, n), "item": rng.integers(0, 300, n), "v": rng.random(n),
                       "city": rng.choice([f"c{i}" for i in range(400)], n),
                       "c1": pd.Categorical(rng.integers(0, 400, n)), "c2": pd.Categorical(rng.integers(0, 300, n))})
    other = pd.DataFrame({"user": rng.integers(0, 5000, n // 10), "w": rng.random(n // 10)})
    counts = df.groupby(["user", "item"]).size()
    path = f"{directory}/data.csv"
    df.to_csv(path, index=False)
    mixed = pd.DataFrame({"f": rng.random(n), "i": rng.integers(10**6, 10**7, n), "s": df["city"]})
    return [
        ("m = df.merge(other, on='user', how='outer')", {"df": df, "other": other}),
        ("d = pd.get_dummies(df['city'])", {"df": df, "pd": pd}),
        ("d = pd.get_dummies(df, columns=['item'], dtype='uint8')", {"df": df, "pd": pd}),
        ("p = df.pivot_table(index='user', columns='item', values='v')", {"df": df}),
        ("u = counts.unstack()", {"counts": counts}),
        ("g = df.groupby(['c1', 'c2'], observed=False)['v'].sum()", {"df": df}),
        ("a = mixed.to_numpy()", {"mixed": mixed}),
        ("c = pd.concat([df, df])", {"df": df, "pd": pd}),
        (f"r = pd.read_csv({path!r})", {"pd": pd}),
    ]


def real_size(line: str, namespace: dict) -> int:
    scope = dict(namespace)
    exec(line, scope)  # noqa: S102 - the benchmark's own lines
    result = scope[line.split(" = ")[0]]
    if isinstance(result, np.ndarray):
        boxed = sum(sys.getsizeof(v) for v in result.ravel() if type(v) is not str)
        return result.nbytes + boxed
    usage = result.memory_usage(deep="read_csv" in line, index=True)
    return int(usage.sum() if hasattr(usage, "sum") else usage)


def timed(run) -> tuple[float, float]:
    """(CPU seconds of this thread, wall seconds) that ``run()`` took."""
    cpu, wall = time.thread_time(), time.perf_counter()
    run()
    return time.thread_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rows", type=int, default=2_000_000)
    options = parser.parse_args()
    print("| line | estimate | real | error | check (CPU) |")
    print("|---|---|---|---|---|")
    floor, cost.FLOOR = cost.FLOOR, 5.0  # sizes here, not the time bound: no check gives up
    with tempfile.TemporaryDirectory() as directory:
        for line, namespace in accuracy_cases(directory):
            estimate(line, namespace)  # warm up
            (spent, _), found = timed(lambda: estimate(line, namespace)), estimate(line, namespace)  # noqa: B023
            [allocation] = found.allocations
            real = real_size(line, namespace)
            print(f"| `{line.split(' = ')[1][:60]}` | {format_bytes(allocation.nbytes)} | {format_bytes(real)} "
                  f"| {(allocation.nbytes - real) / real:+.1%} | {spent * 1000:.1f} ms |")
    cost.FLOOR = floor
    print()
    print("| case | pre-run check (CPU) | operation (CPU) | ratio | wall: check / operation | the check found |")
    print("|---|---|---|---|---|---|")
    for title, line, namespace in cases(options.rows):
        checks, operations = [], []
        found = estimate(line, namespace)  # warm up: imports, first calls
        for _ in range(options.repeat):
            checks.append(timed(lambda: estimate(line, namespace)))  # noqa: B023
            operations.append(timed(lambda: exec(line, dict(namespace))))  # noqa: B023, S102
        check, operation = (statistics.median(t[0] for t in checks), statistics.median(t[0] for t in operations))
        wall = statistics.median(t[1] for t in checks), statistics.median(t[1] for t in operations)
        if found.allocations:
            allocation = found.allocations[0]
            outcome = f"{allocation.shape[0]:,} rows, {format_bytes(allocation.nbytes)}"
        else:
            outcome = "gave up: " + found.notices[0].text.split(":")[1].split(",")[0].strip() if found.notices else "-"
        print(f"| {title} | {check * 1000:.1f} ms | {operation * 1000:.0f} ms | {check / operation:.1%} "
              f"| {wall[0] * 1000:.1f} / {wall[1] * 1000:.0f} ms | {outcome} |")


if __name__ == "__main__":
    main()
