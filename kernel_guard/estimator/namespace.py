"""Reading a kernel's namespace without running a line of user code.

Only exact builtin and numpy types (and, through ``libraries``, exact types of
libraries already imported) are read (``type(v) is int``, never
``isinstance``, which can consult a user ``__class__``). Anything else is
``OPAQUE``: present, but not looked into. No ``__index__``, ``__len__``,
``__int__``, property or ``__getattr__`` of a user object can run from here.
"""

from __future__ import annotations

import builtins
import types

import numpy as np

from kernel_guard.estimator import libraries
from kernel_guard.estimator.abstract import OPAQUE, Array, Container, Instance, Ref, Sized
from kernel_guard.estimator.dtypes import NAMED
from kernel_guard.estimator.signatures import SIGNATURES, UFUNCS
from kernel_guard.estimator.values import MAX_LENGTH

_SCALARS = (int, float, bool, complex, type(None))
_STRINGS = (str, bytes)


def _exactly(kind: type, types: tuple[type, ...]) -> bool:
    """``kind in types`` by identity only: ``==`` on a type can run a user metaclass."""
    return any(kind is t for t in types)
_NUMPY_MODULES = ("numpy", "numpy.random", "numpy.linalg", "numpy.fft")

_known: dict[int, tuple[object, object]] | None = None


def _known_objects() -> dict[int, tuple[object, object]]:
    """id -> (object, abstract value) for the numpy/builtin objects we understand.

    Identity (``is``) confirms a hit, so nothing of the user's is compared.
    """
    global _known
    if _known is not None:
        return _known
    known: dict[int, tuple[object, object]] = {}

    def add(obj: object, value: object) -> None:
        known[id(obj)] = (obj, value)

    modules = {name: __import__(name, fromlist=["_"]) for name in _NUMPY_MODULES}
    for name, module in modules.items():
        add(module, Ref(name))
    wanted = set(SIGNATURES) | set(UFUNCS) | {q for q in NAMED if q.startswith("numpy.")}
    wanted |= {"numpy.random.default_rng", "numpy.random.Generator", "numpy.random.RandomState", "numpy.dtype"}
    for qualname in wanted:
        module_name, _, attr = qualname.rpartition(".")
        module = modules.get(module_name)
        if module is not None and attr in vars(module):
            add(vars(module)[attr], Ref(qualname))
    for name in dir(builtins):
        if not name.startswith("_"):
            add(getattr(builtins, name), Ref(f"builtins.{name}"))
    _known = known
    return known


_DTYPE_TYPES = {id(type(d)): type(d) for d in NAMED.values()}
_NUMPY_SCALAR_TYPES = {id(d.type): d.type for d in NAMED.values()}


def _constant_tuple(value: tuple, depth: int = 0) -> tuple | None:
    if len(value) > MAX_LENGTH or depth > 3:
        return None
    items = []
    for item in value:
        kind = type(item)
        if _exactly(kind, _SCALARS) or kind is str:
            items.append(item)
        elif kind is tuple:
            inner = _constant_tuple(item, depth + 1)
            if inner is None:
                return None
            items.append(inner)
        elif _NUMPY_SCALAR_TYPES.get(id(kind)) is kind:
            items.append(item.item())
        else:
            return None
    return tuple(items)


def read(value: object) -> object:
    """The abstract value the estimator may use for a namespace value."""
    kind = type(value)
    if _exactly(kind, _SCALARS):
        return value
    if _exactly(kind, _STRINGS):
        return value if len(value) <= MAX_LENGTH else Sized(len(value))
    if kind is np.ndarray:
        return Array(tuple(value.shape), value.dtype)
    if kind is tuple:
        const = _constant_tuple(value)
        return Sized(len(value)) if const is None else const
    if kind is list:
        const = list(_constant_tuple(tuple(value)) or ()) if len(value) <= MAX_LENGTH else None
        if const is not None and len(const) != len(value):
            const = None
        return Container("list", const=const, length=len(value))
    if _exactly(kind, (dict, set, frozenset)):
        return Container("dict" if kind is dict else "set", length=len(value))
    if _NUMPY_SCALAR_TYPES.get(id(kind)) is kind:
        return value.item()
    if _DTYPE_TYPES.get(id(kind)) is kind:
        return value
    if kind is np.random.Generator:
        return Instance("numpy.random.Generator")
    if kind is np.random.RandomState:
        return Instance("numpy.random.RandomState")
    hit = _known_objects().get(id(value))
    if hit is not None and hit[0] is value:
        return hit[1]
    foreign = libraries.read(value)
    if foreign is not None:
        return foreign
    if kind is types.ModuleType:
        name = vars(value).get("__name__")
        return Ref(name) if type(name) is str else OPAQUE
    return OPAQUE
