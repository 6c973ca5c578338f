"""The abstract values the interpreter binds names to.

Constants are plain Python values (see ``values``); everything else the
estimator knows about is one of the small classes below.  None of them wraps a
user object: values read from a kernel namespace are copied into these forms.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field

import numpy as np

# A trip count that never ends (``while True`` without exit, ``itertools.count()``).
INFINITE = math.inf


@dataclass(eq=False)
class Loop:
    """One loop being interpreted: its trip count is an int, None (unknown) or INFINITE."""

    trip: int | float | None
    stored: frozenset[str] = frozenset()  # names the loop body rebinds


@dataclass(eq=False)
class Site:
    """One array the interpreted code allocates (an ``Allocation`` in the making).

    Library objects (a DataFrame of mixed columns) give their size in ``size``
    and their dtype as a name; ``cause`` says in the user's terms why it is that large.
    """

    node: ast.AST
    shape: tuple[int, ...]
    dtype: np.dtype | str
    loops: tuple[Loop, ...]
    count: int = 1
    unbounded: bool = False
    size: int | None = None
    cause: str | None = None
    device: str | None = None  # memory of an accelerator (``cuda:0``), not of this host

    @property
    def nbytes(self) -> int:
        if self.size is not None:
            return self.size
        return math.prod(self.shape) * self.dtype.itemsize  # type: ignore[union-attr]  # a dtype name comes with a size


class _New:
    def __repr__(self) -> str:
        return "NEW"


# ``Array.site`` for an array a numpy call is about to allocate (a site is made for it).
NEW = _New()


@dataclass(eq=False)
class Array:
    """An ndarray: shape and dtype when known, and the site that owns its buffer.

    ``site`` is ``None`` for arrays that existed before (kernel namespace) or
    whose origin is unknown; views share the site of their base.
    """

    shape: tuple[int, ...] | None
    dtype: np.dtype | None
    site: Site | _New | None = None

    @property
    def ndim(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    @property
    def size(self) -> int | None:
        return None if self.shape is None else math.prod(self.shape)


@dataclass(frozen=True)
class Ref:
    """A module, or a name reached from one by attribute access (``numpy.random.rand``)."""

    qualname: str


@dataclass(frozen=True)
class Instance:
    """An object of a known library class (``numpy.random.Generator``)."""

    cls: str


@dataclass(frozen=True)
class Method:
    """A method looked up on an abstract value, not yet called."""

    receiver: object
    name: str


@dataclass(eq=False)
class Container:
    """A list, dict, set or deque: what was put in it, for growth and liveness.

    ``items`` holds (value, copies) pairs; ``const`` is the equal Python value
    while the contents are exactly known constants; ``length`` when known.
    """

    kind: str
    loops: tuple[Loop, ...] = ()
    items: list[tuple[object, int]] = field(default_factory=list)
    const: list | None = None
    length: int | None = 0
    bounded: bool = False  # deque(maxlen=...) drops old items


@dataclass(frozen=True)
class Sized:
    """An immutable object of which only the length is known (a big tuple or str)."""

    length: int


@dataclass(eq=False)
class UserFunction:
    """A function or lambda defined in the interpreted code."""

    node: ast.FunctionDef | ast.Lambda
    defaults: tuple[object, ...] = ()
    kw_defaults: dict[str, object] = field(default_factory=dict)


@dataclass(eq=False)
class Foreign:
    """Base of the abstract values of library objects (``estimator.libraries``).

    ``site`` is the allocation that made it in the interpreted code (``None`` for
    an object that existed before); a library module subclasses it with what it knows.
    """

    site: Site | None = field(default=None, kw_only=True)


@dataclass(eq=False)
class Made:
    """What a library call returns when it allocates: ``value`` is what the
    expression evaluates to (an ``Array`` with site ``NEW`` or a ``Foreign``), the
    rest becomes its ``Site`` (``dtype`` may be a name, such as ``"mixed"``)."""

    value: object
    shape: tuple[int, ...]
    dtype: np.dtype | str
    nbytes: int
    cause: str | None = None
    device: str | None = None  # made on an accelerator that has no room for it (``cuda:0``)


class _Opaque:
    def __repr__(self) -> str:
        return "OPAQUE"


# Bound to something the estimator does not look into (user objects, classes).
OPAQUE = _Opaque()
