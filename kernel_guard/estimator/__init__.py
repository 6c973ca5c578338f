"""Static estimate of the numpy arrays a cell allocates, without running it."""

from kernel_guard.estimator.values import UNKNOWN, evaluate

__all__ = ["UNKNOWN", "evaluate"]
