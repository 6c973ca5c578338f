"""The pre-run check of scipy.sparse, scikit-learn, dask, torch and pd.DataFrame lines: its
estimate against the real result's size, and its cost against the operation's own time.

    .venv/bin/python benchmarks/bench_libs.py [--repeat 5]

Every result here stays under 320 MiB (the machine is shared); prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import numpy as np

from kernel_guard.estimator import estimate
from kernel_guard.sizes import format_bytes


def namespace() -> dict:
    import dask.array as da
    import dask.dataframe as dd
    import pandas as pd
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    k = 400_000
    tfidf = sp.csr_matrix((rng.random(k), (rng.integers(0, 4_000, k), rng.integers(0, 10_000, k))),
                          shape=(4_000, 10_000))
    return {
        "np": np, "pd": pd, "tfidf": tfidf,
        "docs": sp.csr_matrix(tfidf[:, :300]), "queries": sp.csr_matrix(tfidf[:2000, :300]),
        "x": da.random.random((4_000, 10_000), chunks=(500, 10_000)),
        "frame": dd.from_pandas(pd.DataFrame({"a": np.arange(4_000_000), "b": rng.random(4_000_000)}),
                                npartitions=16),
        "arr": rng.random((4_000, 5_000)),
    }


CASES = [
    ("tfidf.toarray()", "real.nbytes"),
    ("tfidf.todense()", "real.nbytes"),
    ("cosine_similarity(docs)", "real.nbytes"),
    ("euclidean_distances(queries, docs)", "real.nbytes"),
    ("x.compute()", "real.nbytes"),
    ("np.asarray(x.T)", "real.nbytes"),
    ("frame.compute()", "real.memory_usage(deep=True).sum()"),
    ("pd.DataFrame(arr)", "real.memory_usage(index=False).sum()"),
    ("torch.zeros(4_000, 10_000)", "real.element_size() * real.nelement()"),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    warnings.simplefilter("ignore")
    import torch
    from sklearn.metrics.pairwise import cosine_similarity, euclidean_distances

    ns = namespace() | {"torch": torch, "cosine_similarity": cosine_similarity,
                        "euclidean_distances": euclidean_distances}
    print(f"load average {os.getloadavg()[0]:.1f}; medians of {repeat} runs; "
          "CPU time: the check's thread, the operation's process\n")
    print("| line | estimate | real | error | check | operation | ratio |")
    print("|---|---|---|---|---|---|---|")
    for expr, size in CASES:
        cell = f"result = {expr}"
        checks, runs = [], []
        for _ in range(repeat):
            started = time.thread_time()
            found = estimate(cell, ns).allocations[-1]
            checks.append(time.thread_time() - started)
            started = time.process_time()  # dask computes in a pool of threads
            real = eval(expr, ns)
            runs.append(time.process_time() - started)
            nbytes = int(eval(size, {"real": real}))
            del real
        check, run = statistics.median(checks), statistics.median(runs)
        error = (found.nbytes - nbytes) / nbytes
        print(f"| `{expr}` | {format_bytes(found.nbytes)} | {format_bytes(nbytes)} | {error:+.1%} | "
              f"{check * 1000:.2f} ms | {run * 1000:.0f} ms | {check / run:.2%} |")


if __name__ == "__main__":
    main()
