"""The estimator's table of numpy signatures against numpy's own.

A parameter name that differs from numpy's silently drops the estimate of a call that
passes it by keyword (``np.empty_like(prototype=b)``), so every name the table binds must
be the name numpy binds at that position.
"""

from __future__ import annotations

import importlib
import inspect

import numpy as np
import pytest

from kernel_guard.estimator.signatures import SIGNATURES

# C methods whose ``__text_signature__`` stops early or misnames: what numpy really accepts,
# checked by calling it (``a.sum(0, None, None, True)``, ``a.dot(b=a)``; ``a.dot(other=a)`` raises).
_TEXT_SIGNATURE_GAPS = {
    "numpy.ndarray.dot": ("b", "out"),
    "numpy.ndarray.sum": ("axis", "dtype", "out", "keepdims"),
    "numpy.ndarray.prod": ("axis", "dtype", "out", "keepdims"),
    "numpy.ndarray.max": ("axis", "out", "keepdims"),
    "numpy.ndarray.min": ("axis", "out", "keepdims"),
    "numpy.ndarray.mean": ("axis", "dtype", "out", "keepdims"),
    "numpy.ndarray.std": ("axis", "dtype", "out", "ddof", "keepdims"),
    "numpy.ndarray.var": ("axis", "dtype", "out", "ddof", "keepdims"),
}


def _resolve(qualname: str) -> object | None:
    parts = qualname.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attr in parts[split:]:
            obj = getattr(obj, attr, None)
        return obj
    return None


def _numpy_params(qualname: str, obj: object) -> tuple[tuple[str, ...], bool] | None:
    if qualname in _TEXT_SIGNATURE_GAPS:
        return _TEXT_SIGNATURE_GAPS[qualname], False
    try:
        signature = inspect.signature(obj)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    params = signature.parameters.values()
    names = tuple(p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
    if names[:1] == ("self",):
        names = names[1:]
    return names, any(p.kind is p.VAR_POSITIONAL for p in params)


@pytest.mark.parametrize("qualname", sorted(SIGNATURES))
def test_table_binds_numpy_parameter_names(qualname):
    obj = _resolve(qualname)
    if obj is None:
        pytest.skip(f"{qualname} is not in numpy {np.__version__}")
    found = _numpy_params(qualname, obj)
    if found is None:
        pytest.skip(f"numpy {np.__version__} gives no signature for {qualname}")
    names, varargs = found
    sig = SIGNATURES[qualname]
    ours = sig.params[1:] if qualname.startswith("numpy.ndarray.") else sig.params
    if sig.varargs:  # arange(start_or_stop, /, ...), meshgrid(*xi): bound by position in the builder
        return
    assert ours == names[: len(ours)] or (varargs and not names), (qualname, ours, names)


def test_empty_like_by_keyword_is_estimated():
    from kernel_guard import estimate

    found = estimate("b = np.ones((1000, 1000))\nc = np.empty_like(prototype=b)", {"np": np})
    assert [a.nbytes for a in found.allocations] == [8_000_000, 8_000_000]
