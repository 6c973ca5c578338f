"""The numpy functions the estimator understands, as a table.

``SIGNATURES`` maps a qualified name (``numpy.zeros``, ``numpy.random.Generator.normal``,
``numpy.ndarray.astype``) to a ``Sig``: numpy's positional parameter order and
a builder that turns the bound (abstract) arguments into the result: an
``Array`` whose ``site`` is ``NEW`` for memory the call allocates, a view, a
tuple of those, or ``UNKNOWN`` (a scalar, or not known).

Elementwise ufuncs (``numpy.exp``, ``numpy.add.outer``...) are not listed one by
one: ``ufunc_call`` handles every ``numpy.ufunc`` through numpy's own type
resolution.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import cast

import numpy as np

from kernel_guard.estimator import shapes
from kernel_guard.estimator.abstract import NEW, Array, Container, UserFunction
from kernel_guard.estimator.dtypes import (
    DEFAULT_INT,
    FLOAT64,
    INT64,
    const_dtype,
    dtype_arg,
    operation_dtype,
    promoted,
    result_dtype,
    scalar_dtype,
)
from kernel_guard.estimator.values import UNKNOWN

_MISSING = object()


class Args:
    """Call arguments bound to numpy's parameter names."""

    __slots__ = ("values", "varargs")

    def __init__(self, values: dict[str, object], varargs: tuple[object, ...]):
        self.values = values
        self.varargs = varargs

    def get(self, name: str, default: object = None) -> object:
        return self.values.get(name, default)

    def has(self, name: str) -> bool:
        return name in self.values


@dataclass(frozen=True)
class Sig:
    params: tuple[str, ...]
    build: Callable[[Args, object], object]
    varargs: bool = False  # ``rand(*dims)``, ``meshgrid(*xi)``

    def bind(self, positional: list[object], keywords: dict[str, object]) -> Args | None:
        if self.varargs:
            return Args(dict(keywords), tuple(positional))
        if len(positional) > len(self.params):
            return None
        values = dict(zip(self.params, positional))
        for name, value in keywords.items():
            if name in values:
                return None  # numpy would raise: given twice
            values[name] = value
        return Args(values, ())


def new(shape: tuple[int, ...] | None, dtype: np.dtype | None) -> object:
    """An array this call allocates, or ``UNKNOWN`` without full shape and dtype.

    Shape ``()`` is a numpy scalar: its dtype matters for promotion (numpy
    scalars are not weak like Python's), it allocates nothing worth counting."""
    if shape is None or dtype is None:
        return UNKNOWN
    return Array(shape, dtype, NEW if shape else None)


def array_of(value: object, dtype: np.dtype | None = None) -> Array | None:
    """An operand as an abstract array (constants included), or ``None``."""
    if type(value) is Array:
        return value
    shape = shapes.shape_of(value)
    if shape is None:
        return None
    const = value.const if type(value) is Container else value
    return Array(shape, dtype or const_dtype(const))


def _arrays_of(values: Iterable[object]) -> list[Array] | None:
    """Each value as an abstract array; ``None`` if one is not."""
    arrays = [array_of(value) for value in values]
    known = [array for array in arrays if array is not None]
    return known if len(known) == len(arrays) else None


def _self(a: Args) -> Array:
    """The array an ``ndarray`` method is called on (methods are looked up on arrays only)."""
    return cast(Array, a.get("self"))


def _scalar_or(value: object, operand: Array) -> object:
    """Python scalars stay scalars for dtype promotion (numpy treats them as weak)."""
    return value if type(value) in (bool, int, float, complex) else operand


def _dtype(a: Args, default: np.dtype | None, name: str = "dtype") -> np.dtype | None:
    return dtype_arg(a.get(name), default)


# -- creation -------------------------------------------------------------------


def _filled(a: Args, interp) -> object:
    return new(shapes.as_shape(a.get("shape", _MISSING)), _dtype(a, FLOAT64))


def _full(a: Args, interp) -> object:
    fill = a.get("fill_value", _MISSING)
    fill_dtype = fill.dtype if type(fill) is Array else scalar_dtype(fill)
    return new(shapes.as_shape(a.get("shape", _MISSING)), _dtype(a, fill_dtype))


def _like(a: Args, interp) -> object:
    proto = array_of(a.get("prototype", a.get("a", _MISSING)))  # empty_like names it prototype
    if proto is None:
        return UNKNOWN
    shape = a.get("shape")
    return new(proto.shape if shape is None else shapes.as_shape(shape), _dtype(a, proto.dtype))


def _eye(a: Args, interp) -> object:
    n, m = a.get("N", _MISSING), a.get("M")
    return new(shapes.as_shape((n, n if m is None else m)), _dtype(a, FLOAT64))


def _identity(a: Args, interp) -> object:
    n = a.get("n", _MISSING)
    return new(shapes.as_shape((n, n)), _dtype(a, FLOAT64))


def _tri(a: Args, interp) -> object:
    n, m = a.get("N", _MISSING), a.get("M")
    return new(shapes.as_shape((n, n if m is None else m)), _dtype(a, FLOAT64))


def _indices(a: Args, interp) -> object:
    dims = shapes.as_shape(a.get("dimensions", _MISSING))
    if dims is None or a.get("sparse", False) is not False:
        return UNKNOWN
    return new((len(dims),) + dims, _dtype(a, DEFAULT_INT))


def _arange(a: Args, interp) -> object:
    args = list(a.varargs)
    if len(args) > 4:
        return UNKNOWN
    if len(args) == 4:  # arange(start, stop, step, dtype)
        a.values.setdefault("dtype", args.pop())
    if len(args) == 1:
        start, stop, step = a.get("start", 0), args[0], a.get("step", 1)
    elif args:
        start, stop, step = (args + [a.get("step", 1)])[:3]
    else:
        start, stop, step = a.get("start", 0), a.get("stop"), a.get("step", 1)
        if stop is None:
            start, stop = 0, start
    numbers = (start, stop, step)
    if not all(type(v) in (int, float, bool) for v in numbers) or step == 0:
        return UNKNOWN
    start, stop, step = cast("tuple[float, float, float]", numbers)
    if all(type(v) in (int, bool) for v in numbers):
        ints = cast("tuple[int, int, int]", numbers)
        length = -((ints[0] - ints[1]) // ints[2])
    else:
        length = math.ceil((stop - start) / step)
    default = scalar_dtype(start + stop + step)  # int64 for ints, float64 otherwise
    return new((max(length, 0),), _dtype(a, default))


def _spaced(a: Args, interp) -> object:
    start, stop, num = a.get("start", _MISSING), a.get("stop", _MISSING), a.get("num", 50)
    if type(num) is not int or num < 0:
        return UNKNOWN
    if not all(type(v) in (int, float, bool, complex) for v in (start, stop)):
        return UNKNOWN
    default = np.dtype(complex) if complex in (type(start), type(stop)) else FLOAT64
    array = new((num,), _dtype(a, default))
    if a.get("retstep", False) is True:
        return (array, UNKNOWN)
    return array


def _fromfunction(a: Args, interp) -> object:
    shape = shapes.as_shape(a.get("shape", _MISSING))
    dtype = _dtype(a, FLOAT64)
    if shape is None or dtype is None:
        return UNKNOWN
    # numpy calls function(*indices(shape, dtype)): first the index grid, then the body.
    grid = interp.allocate(Array((len(shape),) + shape, dtype, NEW))
    index = Array(shape, dtype, grid.site)
    function = a.get("function")
    if type(function) is not UserFunction:
        return UNKNOWN
    return interp.call_user(function, [index] * len(shape), {})


def _array(a: Args, interp) -> object:
    value = a.get("object", _MISSING)
    dtype = _dtype(a, None)
    copy = a.get("copy", True)
    if type(value) is Array:
        if copy is False or (copy is None and dtype in (None, value.dtype)):
            return value
        return new(value.shape, dtype or value.dtype)
    stacked = _stacked_items(value)
    if stacked is not None:
        return new(stacked[0], dtype or stacked[1])
    operand = array_of(value, dtype)
    return UNKNOWN if operand is None else new(operand.shape, operand.dtype)


def _asarray(a: Args, interp) -> object:
    value = a.get("a", _MISSING)
    dtype = _dtype(a, None)
    if type(value) is Array and dtype in (None, value.dtype):
        return value
    a.values["object"] = value
    return _array(a, interp)


def _stacked_items(value: object) -> tuple[tuple[int, ...], np.dtype] | None:
    """Shape and dtype of ``np.array(list_of_equal_arrays)``."""
    items = _items(value)
    if not items or not all(type(item) is Array for item in items):
        return None
    arrays = cast("list[Array]", items)
    shape = shapes.stack([item.shape for item in arrays], 0)
    dtype = result_dtype(*(item.dtype for item in arrays))
    return None if shape is None or dtype is None else (shape, dtype)


def _items(value: object) -> list[object] | None:
    """The elements of a sequence argument, repeated items expanded."""
    if type(value) in (tuple, list):
        return list(cast("tuple | list", value))
    if type(value) is Container and value.kind == "list" and value.length is not None:
        items = [item for item, copies in value.items for _ in range(copies)]
        return items if len(items) == value.length else None
    return None


def _copy(a: Args, interp) -> object:
    source = array_of(a.get("a", _MISSING))
    return UNKNOWN if source is None else new(source.shape, source.dtype)


# -- joining and repeating ------------------------------------------------------------


def _operands(value: object) -> list[Array] | None:
    items = _items(value)
    if not items or len(items) > 10_000:
        return None
    return _arrays_of(items)


def _joined(reshape: Callable[[tuple[int, ...]], tuple[int, ...] | None], axis_of, join) -> Callable:
    def build(a: Args, interp) -> object:
        arrays = _operands(a.get("arrays", a.get("tup", _MISSING)))
        if arrays is None:
            return UNKNOWN
        parts = [reshape(x.shape) if x.shape is not None else None for x in arrays]
        if any(p is None for p in parts):
            return UNKNOWN
        axis = axis_of(a, parts)
        shape = join(parts, axis)
        dtype = _dtype(a, result_dtype(*(x.dtype for x in arrays)))
        return new(shape, dtype)

    return build


def _same(shape):
    return shape


_concatenate = _joined(_same, lambda a, parts: a.get("axis", 0), shapes.concatenate)
_stack = _joined(_same, lambda a, parts: a.get("axis", 0), shapes.stack)
_vstack = _joined(lambda s: shapes.atleast(s, 2), lambda a, parts: 0, shapes.concatenate)
_dstack = _joined(lambda s: shapes.atleast(s, 3), lambda a, parts: 2, shapes.concatenate)
_hstack = _joined(
    lambda s: shapes.atleast(s, 1), lambda a, parts: 0 if len(parts[0]) == 1 else 1, shapes.concatenate
)
_column_stack = _joined(
    lambda s: s + (1,) if len(s) == 1 else s if len(s) == 2 else None,
    lambda a, parts: 1,
    shapes.concatenate,
)


def _tile(a: Args, interp) -> object:
    source = array_of(a.get("A", _MISSING))
    if source is None:
        return UNKNOWN
    return new(shapes.tile(source.shape, a.get("reps", _MISSING)), source.dtype)


def _repeat(a: Args, interp) -> object:
    source = array_of(a.get("a", _MISSING))
    if source is None:
        return UNKNOWN
    return new(shapes.repeat(source.shape, a.get("repeats", _MISSING), a.get("axis")), source.dtype)


def _pair(a: Args, first: str, second: str) -> tuple[Array, Array] | None:
    x, y = array_of(a.get(first, _MISSING)), array_of(a.get(second, _MISSING))
    return None if x is None or y is None else (x, y)


def _outer(a: Args, interp) -> object:
    pair = _pair(a, "a", "b")
    if pair is None or a.get("out") is not None:
        return UNKNOWN
    x, y = pair
    if x.size is None or y.size is None:
        return UNKNOWN
    return new((x.size, y.size), operation_dtype(np.multiply, x, y))


def _kron(a: Args, interp) -> object:
    pair = _pair(a, "a", "b")
    if pair is None:
        return UNKNOWN
    x, y = pair
    return new(shapes.kron(x.shape, y.shape), operation_dtype(np.multiply, x, y))


def _product(shape_rule, names: tuple[str, str] = ("a", "b")) -> Callable:
    def build(a: Args, interp) -> object:
        pair = _pair(a, *names)
        if pair is None or a.get("out") is not None:
            return UNKNOWN
        x, y = pair
        return new(shape_rule(x.shape, y.shape), operation_dtype(np.multiply, x, y))

    return build


def _meshgrid(a: Args, interp) -> object:
    inputs = _arrays_of(a.varargs)
    indexing, sparse, copy = a.get("indexing", "xy"), a.get("sparse", False), a.get("copy", True)
    if not inputs or indexing not in ("xy", "ij"):
        return UNKNOWN
    sizes = [x.size for x in inputs if x.size is not None]
    if type(sparse) is not bool or type(copy) is not bool or len(sizes) != len(inputs):
        return UNKNOWN
    order = list(range(len(inputs)))
    if indexing == "xy" and len(inputs) > 1:
        order[0], order[1] = 1, 0  # output axis -> input
    full = tuple(sizes[i] for i in order)
    outputs = []
    for position, x in enumerate(inputs):
        if sparse:
            shape = tuple(sizes[position] if i == position else 1 for i in order)
        else:
            shape = full
        result = new(shape, x.dtype) if copy else Array(shape, x.dtype, x.site)
        outputs.append(result)
    return tuple(outputs)


def _where(a: Args, interp) -> object:
    cond, x, y = a.get("condition", _MISSING), a.get("x", _MISSING), a.get("y", _MISSING)
    operands = _arrays_of((cond, x, y))
    if operands is None:
        return UNKNOWN
    dtype = promoted(*(_scalar_or(v, op) for v, op in zip((x, y), operands[1:])))
    return new(shapes.broadcast(*(v.shape for v in operands)), dtype)


# -- random ------------------------------------------------------------------------


def _distribution(params: tuple[str, ...], dtype: np.dtype, dtype_param: bool = False) -> Sig:
    def build(a: Args, interp) -> object:
        size = a.get("size")
        if size is None:  # one draw per broadcast parameter element
            shape = shapes.broadcast(*(shapes.shape_of(a.get(p, 0.0)) for p in params))
        else:
            shape = shapes.as_shape(size)
        if not shape:
            return UNKNOWN  # a scalar draw
        return new(shape, _dtype(a, dtype) if dtype_param else dtype)

    names = params + ("size",) + (("dtype",) if dtype_param else ())
    return Sig(names, build)


def _rand(a: Args, interp) -> object:
    if not a.varargs:
        return UNKNOWN
    return new(shapes.as_shape(a.varargs), FLOAT64)


def _integers(default: np.dtype) -> Callable:
    def build(a: Args, interp) -> object:
        shape = shapes.size_shape(a.get("size"))
        if not shape:
            return UNKNOWN
        return new(shape, _dtype(a, default))

    return build


def _choice(a: Args, interp) -> object:
    population, size = a.get("a", _MISSING), shapes.size_shape(a.get("size"))
    if not size:
        return UNKNOWN
    if type(population) is int:
        return new(size, INT64)
    source = array_of(population)
    if source is None or not source.shape:
        return UNKNOWN
    axis = shapes.normalize_axis(a.get("axis", 0), len(source.shape))
    if axis is None:
        return UNKNOWN
    return new(source.shape[:axis] + size + source.shape[axis + 1 :], source.dtype)


def _permutation(a: Args, interp) -> object:
    value = a.get("x", _MISSING)
    if type(value) is int:
        return new((value,), INT64) if value >= 0 else UNKNOWN
    return _copy(Args({"a": value}, ()), interp)


def _vector_draw(length_param: str, dtype: np.dtype) -> Callable:
    """multivariate_normal(mean, cov, size), dirichlet(alpha, size), multinomial(n, pvals, size)."""

    def build(a: Args, interp) -> object:
        vector = array_of(a.get(length_param, _MISSING))
        size = shapes.size_shape(a.get("size"))
        if vector is None or size is None or vector.shape is None or len(vector.shape) != 1:
            return UNKNOWN
        return new(size + vector.shape, dtype)

    return build


_FLOAT_DISTRIBUTIONS = {
    "normal": ("loc", "scale"),
    "uniform": ("low", "high"),
    "exponential": ("scale",),
    "gamma": ("shape", "scale"),
    "beta": ("a", "b"),
    "lognormal": ("mean", "sigma"),
    "laplace": ("loc", "scale"),
    "logistic": ("loc", "scale"),
    "gumbel": ("loc", "scale"),
    "weibull": ("a",),
    "pareto": ("a",),
    "power": ("a",),
    "rayleigh": ("scale",),
    "chisquare": ("df",),
    "noncentral_chisquare": ("df", "nonc"),
    "standard_t": ("df",),
    "standard_cauchy": (),
    "triangular": ("left", "mode", "right"),
    "vonmises": ("mu", "kappa"),
    "wald": ("mean", "scale"),
    "f": ("dfnum", "dfden"),
    "noncentral_f": ("dfnum", "dfden", "nonc"),
}
_INT_DISTRIBUTIONS = {
    "poisson": ("lam",),
    "binomial": ("n", "p"),
    "negative_binomial": ("n", "p"),
    "geometric": ("p",),
    "hypergeometric": ("ngood", "nbad", "nsample"),
    "zipf": ("a",),
    "logseries": ("p",),
}


def _random_tables() -> dict[str, Sig]:
    legacy: dict[str, Sig] = {}
    generator: dict[str, Sig] = {}
    for name, params in _FLOAT_DISTRIBUTIONS.items():
        legacy[name] = generator[name] = _distribution(params, FLOAT64)
    for name, params in _INT_DISTRIBUTIONS.items():
        legacy[name] = generator[name] = _distribution(params, INT64)
    for name in ("standard_normal", "standard_exponential", "random_sample", "random", "ranf", "sample"):
        legacy[name] = _distribution((), FLOAT64)
    legacy["standard_gamma"] = _distribution(("shape",), FLOAT64)
    legacy["rand"] = Sig((), _rand, varargs=True)
    legacy["randn"] = Sig((), _rand, varargs=True)
    legacy["randint"] = Sig(("low", "high", "size", "dtype"), _integers(DEFAULT_INT))
    legacy["random_integers"] = Sig(("low", "high", "size"), _integers(DEFAULT_INT))
    legacy["choice"] = Sig(("a", "size", "replace", "p"), _choice)
    legacy["permutation"] = Sig(("x",), _permutation)
    legacy["multivariate_normal"] = Sig(("mean", "cov", "size"), _vector_draw("mean", FLOAT64))
    legacy["dirichlet"] = Sig(("alpha", "size"), _vector_draw("alpha", FLOAT64))
    legacy["multinomial"] = Sig(("n", "pvals", "size"), _vector_draw("pvals", INT64))

    generator["random"] = Sig(("size", "dtype", "out"), _distribution((), FLOAT64, True).build)
    generator["standard_normal"] = Sig(("size", "dtype", "out"), _distribution((), FLOAT64, True).build)
    generator["standard_exponential"] = Sig(
        ("size", "dtype", "method", "out"), _distribution((), FLOAT64, True).build
    )
    generator["standard_gamma"] = Sig(
        ("shape", "size", "dtype", "out"), _distribution(("shape",), FLOAT64, True).build
    )
    generator["integers"] = Sig(("low", "high", "size", "dtype", "endpoint"), _integers(INT64))
    generator["choice"] = Sig(("a", "size", "replace", "p", "axis", "shuffle"), _choice)
    generator["permutation"] = Sig(("x", "axis"), _permutation)
    generator["multivariate_normal"] = legacy["multivariate_normal"]
    generator["dirichlet"] = legacy["dirichlet"]
    generator["multinomial"] = legacy["multinomial"]

    table = {f"numpy.random.{name}": sig for name, sig in legacy.items()}
    table.update({f"numpy.random.RandomState.{name}": sig for name, sig in legacy.items()})
    table.update({f"numpy.random.Generator.{name}": sig for name, sig in generator.items()})
    return table


# -- ndarray methods ------------------------------------------------------------------


def _astype(a: Args, interp) -> object:
    source, dtype = _self(a), _dtype(a, None)
    if dtype is None:
        return UNKNOWN
    if a.get("copy", True) is False and dtype == source.dtype:
        return source
    return new(source.shape, dtype)


def _method_copy(a: Args, interp) -> object:
    source = _self(a)
    return new(source.shape, source.dtype)


def _flatten(a: Args, interp) -> object:
    source = _self(a)
    return new(None if source.size is None else (source.size,), source.dtype)


def _reshape(a: Args, interp) -> object:
    source = cast(Array, a.varargs[0])  # the array the method is called on
    new_shape = a.varargs[1:] if len(a.varargs) > 2 else a.varargs[1] if len(a.varargs) == 2 else a.get("shape")
    shape = shapes.reshape(source.shape, new_shape)
    return UNKNOWN if shape is None else Array(shape, source.dtype, source.site)


def _transpose(a: Args, interp) -> object:
    source = cast(Array, a.varargs[0])  # the array the method is called on
    axes = a.varargs[1:]
    if source.shape is None:
        return UNKNOWN
    if not axes:
        return Array(source.shape[::-1], source.dtype, source.site)
    if len(axes) == 1 and type(axes[0]) in (tuple, list):
        axes = tuple(cast("tuple | list", axes[0]))
    ndim = len(source.shape)
    if sorted(shapes.normalize_axis(x, ndim) or 0 for x in axes) != list(range(ndim)):
        return UNKNOWN
    return Array(tuple(source.shape[cast(int, x)] for x in axes), source.dtype, source.site)


def _ravel(a: Args, interp) -> object:
    source = _self(a)
    return UNKNOWN if source.size is None else Array((source.size,), source.dtype, source.site)


def _reduction(ufunc: np.ufunc | None, dtype_rule: str = "reduce") -> Callable:
    """sum/prod/min/max via the ufunc's reduce dtype; mean/std/var give float64 for ints."""

    def build(a: Args, interp) -> object:
        source = a.get("self", a.get("a"))
        source = array_of(source)
        if source is None or a.get("out") is not None:
            return UNKNOWN
        shape = shapes.reduce(source.shape, a.get("axis"), a.get("keepdims", False))
        if dtype_rule == "mean":
            dtype = _dtype(a, operation_dtype(np.true_divide, source, 1))
        else:
            dtype = _dtype(a, _reduce_dtype(cast(np.ufunc, ufunc), source))  # only "mean" goes without one
        return new(shape, dtype)

    return build


def _reduce_dtype(ufunc: np.ufunc, source: Array) -> np.dtype | None:
    if source.dtype is None:
        return None
    try:
        return ufunc.reduce(np.zeros(1, source.dtype)).dtype
    except Exception:  # numpy refuses this dtype: no estimate
        return None


def _accumulate(ufunc: np.ufunc) -> Callable:
    def build(a: Args, interp) -> object:
        source = array_of(a.get("self", a.get("a")))
        if source is None or source.shape is None or a.get("out") is not None:
            return UNKNOWN
        axis = a.get("axis")
        shape = (cast(int, source.size),) if axis is None else source.shape  # (the shape is known)
        return new(shape, _dtype(a, _reduce_dtype(ufunc, source)))

    return build


def _same_shape_copy(a: Args, interp) -> object:
    source = array_of(a.get("self", a.get("a")))
    return UNKNOWN if source is None else new(source.shape, source.dtype)


def _dot_method(a: Args, interp) -> object:
    return _product(shapes.dot)(Args({"a": a.get("self"), "b": a.get("b", _MISSING)}, ()), interp)


_ARRAY_METHODS = {
    "astype": Sig(("self", "dtype", "order", "casting", "subok", "copy"), _astype),
    "copy": Sig(("self", "order"), _method_copy),
    "flatten": Sig(("self", "order"), _flatten),
    "reshape": Sig((), _reshape, varargs=True),
    "transpose": Sig((), _transpose, varargs=True),
    "ravel": Sig(("self", "order"), _ravel),
    "dot": Sig(("self", "b", "out"), _dot_method),
    "sum": Sig(("self", "axis", "dtype", "out", "keepdims"), _reduction(np.add)),
    "prod": Sig(("self", "axis", "dtype", "out", "keepdims"), _reduction(np.multiply)),
    "max": Sig(("self", "axis", "out", "keepdims"), _reduction(np.maximum)),
    "min": Sig(("self", "axis", "out", "keepdims"), _reduction(np.minimum)),
    "mean": Sig(("self", "axis", "dtype", "out", "keepdims"), _reduction(None, "mean")),
    "std": Sig(("self", "axis", "dtype", "out", "ddof", "keepdims"), _reduction(None, "mean")),
    "var": Sig(("self", "axis", "dtype", "out", "ddof", "keepdims"), _reduction(None, "mean")),
    "cumsum": Sig(("self", "axis", "dtype", "out"), _accumulate(np.add)),
    "cumprod": Sig(("self", "axis", "dtype", "out"), _accumulate(np.multiply)),
    "round": Sig(("self", "decimals", "out"), _same_shape_copy),
    "clip": Sig(("self", "min", "max", "out"), _same_shape_copy),
}


# -- the table ---------------------------------------------------------------------


def _numpy_functions() -> dict[str, Sig]:
    creation = ("shape", "dtype", "order")
    like = ("a", "dtype", "order", "subok", "shape")
    joined = ("arrays", "axis", "out")
    table = {
        "zeros": Sig(creation, _filled),
        "ones": Sig(creation, _filled),
        "empty": Sig(creation, _filled),
        "full": Sig(("shape", "fill_value", "dtype", "order"), _full),
        "zeros_like": Sig(like, _like),
        "ones_like": Sig(like, _like),
        "empty_like": Sig(("prototype", *like[1:]), _like),
        "full_like": Sig(("a", "fill_value", "dtype", "order", "subok", "shape"), _like),
        "eye": Sig(("N", "M", "k", "dtype", "order"), _eye),
        "identity": Sig(("n", "dtype"), _identity),
        "tri": Sig(("N", "M", "k", "dtype"), _tri),
        "indices": Sig(("dimensions", "dtype", "sparse"), _indices),
        "arange": Sig((), _arange, varargs=True),
        "linspace": Sig(("start", "stop", "num", "endpoint", "retstep", "dtype", "axis"), _spaced),
        "logspace": Sig(("start", "stop", "num", "endpoint", "base", "dtype", "axis"), _spaced),
        "geomspace": Sig(("start", "stop", "num", "endpoint", "dtype", "axis"), _spaced),
        "fromfunction": Sig(("function", "shape"), _fromfunction),
        "array": Sig(("object", "dtype"), _array),
        "asarray": Sig(("a", "dtype", "order"), _asarray),
        "copy": Sig(("a", "order", "subok"), _copy),
        "tile": Sig(("A", "reps"), _tile),
        "repeat": Sig(("a", "repeats", "axis"), _repeat),
        "concatenate": Sig(joined, _concatenate),
        "stack": Sig(joined, _stack),
        "vstack": Sig(("tup",), _vstack),
        "row_stack": Sig(("tup",), _vstack),
        "hstack": Sig(("tup",), _hstack),
        "dstack": Sig(("tup",), _dstack),
        "column_stack": Sig(("tup",), _column_stack),
        "outer": Sig(("a", "b", "out"), _outer),
        "kron": Sig(("a", "b"), _kron),
        "dot": Sig(("a", "b", "out"), _product(shapes.dot)),
        "matmul": Sig(("x1", "x2"), _product(shapes.matmul, ("x1", "x2"))),
        "meshgrid": Sig((), _meshgrid, varargs=True),
        "where": Sig(("condition", "x", "y"), _where),
        "sum": Sig(("a", "axis", "dtype", "out", "keepdims"), _reduction(np.add)),
        "prod": Sig(("a", "axis", "dtype", "out", "keepdims"), _reduction(np.multiply)),
        "mean": Sig(("a", "axis", "dtype", "out", "keepdims"), _reduction(None, "mean")),
        "cumsum": Sig(("a", "axis", "dtype", "out"), _accumulate(np.add)),
        "cumprod": Sig(("a", "axis", "dtype", "out"), _accumulate(np.multiply)),
    }
    result = {f"numpy.{name}": sig for name, sig in table.items()}
    result.update({f"numpy.ndarray.{name}": sig for name, sig in _ARRAY_METHODS.items()})
    result.update(_random_tables())
    return result


SIGNATURES: dict[str, Sig] = _numpy_functions()

# Every ufunc numpy exports (exp, add, greater, ...), handled by ``ufunc_call``.
UFUNCS: dict[str, np.ufunc] = {
    f"numpy.{name}": obj for name, obj in vars(np).items() if isinstance(obj, np.ufunc)
}


def ufunc_call(ufunc: np.ufunc, method: str | None, positional: list[object], keywords: dict) -> object:
    """``np.exp(a)``, ``np.add(a, b)``, ``np.multiply.outer(a, b)``."""
    if keywords.get("out") is not None or set(keywords) - {"dtype", "out"}:
        return UNKNOWN
    if method not in (None, "outer"):
        return UNKNOWN
    if len(positional) != ufunc.nin or (method == "outer" and ufunc.nin != 2):
        return UNKNOWN
    operands = _arrays_of(positional)
    if operands is None:
        return UNKNOWN
    if all(type(x) is not Array for x in positional) and not any(x.shape for x in operands):
        return UNKNOWN  # scalars in, scalar out
    if method == "outer":
        first, second = operands[0].shape, operands[1].shape
        shape = None if first is None or second is None else first + second
    else:
        shape = shapes.broadcast(*(x.shape for x in operands))
    function = getattr(ufunc, method) if method else ufunc
    probes = [_scalar_or(x, op) for x, op in zip(positional, operands)]
    dtype = dtype_arg(keywords.get("dtype"), operation_dtype(function, *probes))
    if ufunc.nout != 1:
        return UNKNOWN
    return new(shape, dtype)


# Python operators on arrays, by ast operator name: the dtype comes from the
# operator itself (``ndarray.__pow__`` has special cases the ufunc has not).
OPERATORS = {
    "Add": operator.add,
    "Sub": operator.sub,
    "Mult": operator.mul,
    "Div": operator.truediv,
    "FloorDiv": operator.floordiv,
    "Mod": operator.mod,
    "Pow": operator.pow,
    "LShift": operator.lshift,
    "RShift": operator.rshift,
    "BitAnd": operator.and_,
    "BitOr": operator.or_,
    "BitXor": operator.xor,
    "MatMult": operator.matmul,
    "Eq": operator.eq,
    "NotEq": operator.ne,
    "Lt": operator.lt,
    "LtE": operator.le,
    "Gt": operator.gt,
    "GtE": operator.ge,
    "USub": operator.neg,
    "UAdd": operator.pos,
    "Invert": operator.invert,
}


def operator_call(op_name: str, operands: list[object]) -> object:
    """``a * b``, ``a[:, None] - b``, ``-a``, ``a @ b``, ``a > 0`` with arrays among the operands."""
    function = OPERATORS.get(op_name)
    arrays = _arrays_of(operands)
    if function is None or arrays is None:
        return UNKNOWN
    if op_name == "MatMult":
        shape = shapes.matmul(arrays[0].shape, arrays[1].shape)
    else:
        shape = shapes.broadcast(*(x.shape for x in arrays))
    return new(shape, operation_dtype(function, *(_scalar_or(x, a) for x, a in zip(operands, arrays))))
