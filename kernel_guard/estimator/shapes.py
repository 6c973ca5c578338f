"""Result shapes of numpy operations, computed from shapes alone (numpy's rules).

Every function returns a tuple of ints, or ``None`` when the operation is not
understood or numpy would raise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

from kernel_guard.estimator.abstract import Array, Container

Shape = tuple[int, ...]


def as_shape(value: object) -> Shape | None:
    """A ``shape`` argument: an int or a sequence of non-negative ints."""
    if type(value) is int:
        value = (value,)
    elif type(value) is Container:
        value = value.const
    if type(value) not in (tuple, list):
        return None
    dims = cast("tuple | list", value)
    if not all(type(n) is int and n >= 0 for n in dims):
        return None
    return tuple(dims)


def size_shape(value: object) -> Shape | None:
    """The ``size=`` of a random function; ``()`` for ``None`` (one scalar)."""
    return () if value is None else as_shape(value)


def const_shape(value: object) -> Shape | None:
    """``np.shape`` of a constant: scalars are ``()``, nested lists must be regular."""
    if type(value) is Container:
        value = value.const
        if value is None:
            return None  # contents not known
    shape: list[int] = []
    level: list[object] = [value]
    while level and type(level[0]) in (list, tuple):
        length = len(cast("list | tuple", level[0]))
        seen: dict[int, list | tuple] = {}
        for item in level:
            if type(item) not in (list, tuple) or len(cast("list | tuple", item)) != length:
                return None
            seen.setdefault(id(item), cast("list | tuple", item))
        shape.append(length)
        level = [child for item in seen.values() for child in item]
    if any(type(item) in (list, tuple) for item in level):
        return None
    return tuple(shape)


def shape_of(value: object) -> Shape | None:
    """The shape of an operand: an abstract array, or a constant scalar/list."""
    if type(value) is Array:
        return value.shape
    if type(value) in (bool, int, float, complex):
        return ()
    if type(value) in (list, tuple, Container):
        return const_shape(value)
    return None


def _all_known(shapes: Sequence[Shape | None]) -> list[Shape] | None:
    known = [s for s in shapes if s is not None]
    return known if len(known) == len(shapes) else None


def broadcast(*shapes: Shape | None) -> Shape | None:
    known = _all_known(shapes)
    if known is None:
        return None
    ndim = max((len(s) for s in known), default=0)
    result = []
    for axis in range(-ndim, 0):
        dims = {s[axis] for s in known if len(s) >= -axis} - {1}
        if len(dims) > 1:
            return None
        result.append(dims.pop() if dims else 1)
    return tuple(result)


def normalize_axis(axis: object, ndim: int) -> int | None:
    if type(axis) is not int or not -ndim <= axis < ndim:
        return None
    return axis % ndim


def matmul(a: Shape | None, b: Shape | None) -> Shape | None:
    if a is None or b is None or not a or not b:
        return None
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        return None
    batch = broadcast(a2[:-2], b2[:-2])
    if batch is None:
        return None
    result = batch + (a2[-2], b2[-1])
    if len(a) == 1:
        result = result[:-2] + result[-1:]
    if len(b) == 1:
        result = result[:-1]
    return result


def dot(a: Shape | None, b: Shape | None) -> Shape | None:
    if a is None or b is None:
        return None
    if not a or not b:
        return broadcast(a, b)
    if len(b) == 1:
        return a[:-1] if a[-1] == b[0] else None
    if a[-1] != b[-2]:
        return None
    return a[:-1] + b[:-2] + b[-1:]


def index(shape: Shape, key: Sequence[object]) -> Shape | None:
    """Shape of ``a[key]`` for basic indexing (ints, slices, None, Ellipsis) plus
    one advanced index given as a 1-D int sequence. ``key`` holds folded values:
    ints, ``slice`` objects, ``None``, ``Ellipsis``, or a ``(length,)`` marker
    from ``advanced``."""
    consumed = sum(1 for k in key if k is not None and k is not Ellipsis)
    if consumed > len(shape) or sum(1 for k in key if k is Ellipsis) > 1:
        return None
    expanded: list[object] = []
    for k in key:
        if k is Ellipsis:
            expanded.extend([slice(None)] * (len(shape) - consumed))
        else:
            expanded.append(k)
    result: list[int] = []
    dims = iter(shape)
    advanced = 0
    for k in expanded:
        if k is None:
            result.append(1)
        elif type(k) is int:
            dim = next(dims)
            if not -dim <= k < dim:
                return None
        elif type(k) is slice:
            result.append(len(range(*k.indices(next(dims)))))
        elif type(k) is Advanced:
            next(dims)
            advanced += 1
            result.append(k.length)
        else:
            return None
    if advanced > 1:
        return None
    return tuple(result) + tuple(dims)


class Advanced:
    """An integer index array of known length inside a subscript."""

    __slots__ = ("length",)

    def __init__(self, length: int):
        self.length = length


def concatenate(shapes: Sequence[Shape | None], axis: object) -> Shape | None:
    known = _all_known(shapes)
    if not known:
        return None
    if axis is None:
        return (sum(math.prod(s) for s in known),)
    first = known[0]
    if not first or any(len(s) != len(first) for s in known):
        return None
    at = normalize_axis(axis, len(first))
    if at is None:
        return None
    rest = {s[:at] + s[at + 1 :] for s in known}
    if len(rest) != 1:
        return None
    return first[:at] + (sum(s[at] for s in known),) + first[at + 1 :]


def stack(shapes: Sequence[Shape | None], axis: object) -> Shape | None:
    known = _all_known(shapes)
    if not known or len(set(known)) != 1:
        return None
    first = known[0]
    at = normalize_axis(axis, len(first) + 1)
    if at is None:
        return None
    return first[:at] + (len(known),) + first[at:]


def atleast(shape: Shape | None, ndim: int) -> Shape | None:
    """``np.atleast_2d`` / ``atleast_3d`` shapes (1-D becomes a row; 2-D gets a last axis)."""
    if shape is None or len(shape) >= ndim:
        return shape
    if ndim == 1:
        return (1,)
    if ndim == 2:
        return (1,) * (2 - len(shape)) + shape
    return {0: (1, 1, 1), 1: (1,) + shape + (1,), 2: shape + (1,)}[len(shape)]


def tile(shape: Shape | None, reps: object) -> Shape | None:
    reps = as_shape(reps)
    if shape is None or reps is None:
        return None
    ndim = max(len(shape), len(reps))
    shape = (1,) * (ndim - len(shape)) + shape
    reps = (1,) * (ndim - len(reps)) + reps
    return tuple(s * r for s, r in zip(shape, reps))


def repeat(shape: Shape | None, repeats: object, axis: object) -> Shape | None:
    if shape is None or type(repeats) is not int or repeats < 0:
        return None
    if axis is None:
        return (math.prod(shape) * repeats,)
    axis = normalize_axis(axis, len(shape))
    if axis is None:
        return None
    return shape[:axis] + (shape[axis] * repeats,) + shape[axis + 1 :]


def kron(a: Shape | None, b: Shape | None) -> Shape | None:
    if a is None or b is None:
        return None
    ndim = max(len(a), len(b))
    a = (1,) * (ndim - len(a)) + a
    b = (1,) * (ndim - len(b)) + b
    return tuple(x * y for x, y in zip(a, b))


def reshape(shape: Shape | None, new: object) -> Shape | None:
    if shape is None:
        return None
    if type(new) is int:
        new = (new,)
    if type(new) not in (tuple, list):
        return None
    dims = cast("tuple[int, ...] | list[int]", new)
    if not all(type(n) is int and n >= -1 for n in dims):
        return None
    size = math.prod(shape)
    if list(dims).count(-1) > 1:
        return None
    if -1 in dims:
        known = math.prod(n for n in dims if n != -1)
        if known == 0 or size % known:
            return None
        dims = tuple(size // known if n == -1 else n for n in dims)
    return tuple(dims) if math.prod(dims) == size else None


def reduce(shape: Shape | None, axis: object, keepdims: object = False) -> Shape | None:
    """Shape after a reduction (``sum``, ``mean``...) over ``axis``."""
    if shape is None or type(keepdims) is not bool:
        return None
    if axis is None:
        return (1,) * len(shape) if keepdims else ()
    axes = axis if type(axis) is tuple else (axis,)
    normalized = {normalize_axis(a, len(shape)) for a in axes}
    if None in normalized:
        return None
    if keepdims:
        return tuple(1 if i in normalized else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in normalized)
