"""How long ``estimate()`` takes on a typical 50-line notebook cell.

    .venv/bin/python benchmarks/bench_estimate.py [--repeat 2000]

It runs before every guarded cell, so the target is well under 5 ms. Reported:
the median and 95th percentile of many runs (parse included), for the cell
alone and with a kernel-like namespace holding a few arrays and user objects.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from kernel_guard.estimator import estimate

CELL = '''\
import numpy as np
import pandas as pd
from numpy.random import default_rng

rng = default_rng(42)
n_samples = 10_000
n_features = 64
X = rng.normal(0.0, 1.0, size=(n_samples, n_features))
w = rng.standard_normal(n_features)
noise = 0.1 * rng.standard_normal(n_samples)
y = X @ w + noise

def standardize(a, axis=0):
    mean = a.mean(axis=axis)
    std = a.std(axis=axis)
    return (a - mean) / std

Xs = standardize(X)
train = Xs[: n_samples * 4 // 5]
test = Xs[n_samples * 4 // 5 :]
y_train, y_test = y[: len(train)], y[len(train) :]

coef = np.linalg.lstsq(train, y_train, rcond=None)[0]
pred = test @ coef
rmse = np.sqrt(np.mean((pred - y_test) ** 2))
print(f"RMSE: {rmse:.3f}")

grid = np.linspace(-3, 3, 200)
gx, gy = np.meshgrid(grid, grid)
density = np.exp(-(gx**2 + gy**2) / 2) / (2 * np.pi)

history = []
for epoch in range(20):
    batch = rng.integers(0, n_samples, size=256)
    grad = train[batch].T @ (train[batch] @ coef - y_train[batch]) / 256
    coef = coef - 0.01 * grad
    history.append(float(np.linalg.norm(grad)))

corr = np.corrcoef(X, rowvar=False)
mask = np.triu(np.ones_like(corr, dtype=bool))
pairs = [(i, j) for i in range(n_features) for j in range(i + 1, n_features)]
top = sorted(pairs, key=lambda p: abs(corr[p]), reverse=True)[:10]
df = pd.DataFrame(X[:, :5], columns=[f"f{i}" for i in range(5)])
summary = df.describe()
outer = np.outer(w, w)
blocks = np.concatenate([X[:100], X[-100:]], axis=0)
tiles = np.tile(grid, (4, 1)).astype(np.float32)
counts = np.bincount(rng.integers(0, 10, size=1000))
print(summary)
'''

NAMESPACE = {
    "np": np,
    "data": np.zeros((100, 100)),
    "n_rows": 5000,
    "labels": list(range(1000)),
    "config": {"lr": 0.01},
    "model": object(),
}


def measure(namespace, repeat: int) -> tuple[float, float]:
    for _ in range(50):
        estimate(CELL, namespace)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        estimate(CELL, namespace)
        times.append(time.perf_counter() - start)
    times.sort()
    return statistics.median(times) * 1000, times[int(len(times) * 0.95)] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    lines = CELL.count("\n")
    found = estimate(CELL).allocations
    print(f"cell: {lines} lines, {len(found)} allocations estimated")
    for label, namespace in (("no namespace", None), ("kernel namespace", NAMESPACE)):
        median, p95 = measure(namespace, args.repeat)
        print(f"estimate() {label:>16}: median {median:.3f} ms, p95 {p95:.3f} ms ({args.repeat} runs)")


if __name__ == "__main__":
    main()
