"""What the pre-run check of a pandas line costs against the operation itself.

    .venv/bin/python benchmarks/bench_libraries.py [--repeat 5] [--rows 2000000]

For each case: ``estimate(line, namespace)`` (what ``%%guard`` runs before the
cell) and the line itself, alternated, medians of ``--repeat`` runs. Reported:
both times, their ratio (SPEC: at most 10%, never more than 0.5 s) and what the
check concluded (the size it found, or the notice it gave up with). Everything
stays under ~600 MB: run it outside a cgroup on a shared machine only with the
default sizes.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from kernel_guard.estimator import estimate
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


def timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rows", type=int, default=2_000_000)
    options = parser.parse_args()
    print("| case | pre-run check | operation | ratio | the check found |")
    print("|---|---|---|---|---|")
    for title, line, namespace in cases(options.rows):
        checks, operations = [], []
        found = estimate(line, namespace)  # warm up: imports, first calls
        for _ in range(options.repeat):
            checks.append(timed(lambda: estimate(line, namespace)))
            operations.append(timed(lambda: exec(line, dict(namespace))))
        check, operation = statistics.median(checks), statistics.median(operations)
        if found.allocations:
            allocation = found.allocations[0]
            outcome = f"{allocation.shape[0]:,} rows, {format_bytes(allocation.nbytes)}"
        else:
            outcome = "notice: " + found.notices[0].text.split(":")[1].split(";")[0].strip() if found.notices else "-"
        print(f"| {title} | {check * 1000:.1f} ms | {operation * 1000:.0f} ms | {check / operation:.1%} | {outcome} |")


if __name__ == "__main__":
    main()
