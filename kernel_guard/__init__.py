"""kernel_guard: keep Jupyter kernels alive.

Public API (SPEC section 6), imported lazily so that ``kernel-lint --help`` and
``%load_ext kernel_guard`` stay fast.
"""

from kernel_guard.errors import (
    GuardDiskLimit,
    GuardMemoryError,
    GuardOutputLimit,
    GuardRefused,
    GuardTimeout,
)

__version__ = "0.1.0"

__all__ = [
    "estimate",
    "lint_source",
    "GuardMemoryError",
    "GuardTimeout",
    "GuardOutputLimit",
    "GuardDiskLimit",
    "GuardRefused",
    "load_ipython_extension",
    "unload_ipython_extension",
]


def estimate(source, namespace=None):
    """Statically estimate the numpy allocations of ``source``; never calls user code."""
    from kernel_guard.estimator import estimate as _estimate

    return _estimate(source, namespace)


def lint_source(source, *, filename="<cell>", select=("KG",), ignore=(), namespace=None):
    """Lint one cell (IPython syntax allowed) or, for ``filename`` ending in ``.py``, a
    script; ``select``/``ignore`` take code prefixes (``("KG5",)``); imports found in
    ``namespace`` (a kernel's user namespace) are known to the cell."""
    from kernel_guard.lint.engine import lint_source as _lint_source

    return _lint_source(source, filename=filename, select=select, ignore=ignore, namespace=namespace)


def load_ipython_extension(ipython):
    from kernel_guard.extension import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython):
    from kernel_guard.extension import unload_ipython_extension as _unload

    _unload(ipython)
