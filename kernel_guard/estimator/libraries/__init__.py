"""Library objects in the estimator: pandas, scipy.sparse, scikit-learn, dask, torch.

How a library module plugs in (one module per library, registered in ``LIBRARIES`` below):

- Subclass ``Library`` with ``module`` set to the module name (``"pandas"``,
  ``"scipy.sparse"``: calls of ``Ref``s under it come to the library). Nothing of
  the library is looked at unless ``sys.modules`` already holds that module:
  kernel_guard never imports it. Every hook gets the live module as ``module`` and
  reads names from it with ``vars(module)`` (never ``getattr``: a module
  ``__getattr__`` is code).
- ``read(value, module)`` turns a live namespace value into an abstract value, or
  returns ``None``. Only by EXACT type (``type(value) is vars(module)["DataFrame"]``),
  never a subclass, never ``isinstance``. The abstract value is a dataclass
  subclassing ``abstract.Foreign`` with ``library`` (a ``ClassVar``) set to
  ``module``; it may keep the live object to run the library's own code on it later.
- ``functions``: qualnames (``"pandas.merge"``) of the library's callables; a name
  bound to one of them in the namespace (``from pandas import merge``) is
  recognised by identity and becomes ``Ref(qualname)``.
- ``call(qualname, args, ctx, module)``: a call of ``Ref(qualname)`` under the
  library's module, or of any callable (``numpy.asarray(df)``) when an argument is
  one of the library's ``Foreign`` values. ``method(receiver, name, args, ctx,
  module)``: ``receiver.name(...)``. ``attribute(receiver, name, ctx, module)``:
  ``receiver.name`` (default: a ``Method`` to be called). ``subscript(receiver,
  key, ctx, module)``: ``receiver[key]``, ``key`` a constant or ``UNKNOWN``.
  ``operator(op, operands, ctx, module)``: ``a + b`` (``op`` the ast operator's
  name, ``"Add"``) where an operand is one of the library's ``Foreign`` values.
  Each returns an abstract value, ``UNKNOWN`` when it does not know, or ``Made``
  (``abstract.Made(value, shape, dtype, nbytes, cause)``) for an allocation: the
  interpreter records a site with that size and ``cause`` (the sentence shown in
  the refusal: why it is that large, and the fix) and binds ``value`` (an ``Array``
  with site ``NEW`` or a ``Foreign``, whose ``site`` it sets).
- ``args`` (``Args``) holds the abstract arguments; ``args.constant(i, name)``
  gives a plain Python constant or ``UNKNOWN``. ``ctx`` is the interpreter:
  ``ctx.unwrap(value)``, ``ctx.notice(text)``.
- Time: running the library's code on the user's data is allowed within
  ``cost.Allowance`` (10% of the operation's own time predicted from sizes, at
  most 0.5 s, in CPU time of the checking thread). A hook times its work on the
  first rows (``allowance.probe(work, rows, what)``: ``work(n)`` does it for the
  first ``n`` rows), tells what that taught about the operation's size
  (``allowance.learn(seconds)``) and calls ``allowance.spend(predicted, what)``;
  both raise ``cost.GiveUp`` when it would not fit, which the registry turns
  into a one-line notice on that line and ``UNKNOWN``.
  Any other exception from library code means "not known" (``UNKNOWN``).
- ``static = True``: the library's calls and ``Foreign`` values are also estimated
  when its module is NOT loaded (``module`` is then ``None``): forms whose sizes
  come from the code alone (``torch.zeros(n, n)``, ``da.ones((n, n)).compute()``),
  for kernel-lint and for a cell that imports the library itself. Such hooks read
  live objects only when ``module`` is given.
- A call goes first to the libraries its qualname is under (the most specific
  first: ``pandas.DataFrame`` before ``pandas``), then to the owners of its
  ``Foreign`` arguments; the first answer other than ``UNKNOWN`` wins.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

from kernel_guard.estimator.abstract import Foreign, Method, Ref
from kernel_guard.estimator.libraries.cost import GiveUp
from kernel_guard.estimator.values import UNKNOWN

__all__ = ["LIBRARIES", "Args", "Library", "attribute", "call", "loaded", "method", "operator", "read", "subscript"]


def loaded(name: str) -> types.ModuleType | None:
    """The module ``name`` if something already imported it, else ``None``."""
    module = sys.modules.get(name)
    return module if type(module) is types.ModuleType else None


def attr(module: types.ModuleType, name: str) -> Any:
    """``module.name`` without running a module ``__getattr__`` (``None`` if absent)."""
    return vars(module).get(name)


@dataclass
class Args:
    """The abstract arguments of a call."""

    positional: list
    keywords: dict
    unwrap: Callable[[object], object]

    def get(self, index: int | None, name: str, default: object = UNKNOWN) -> Any:
        if name in self.keywords:
            return self.keywords[name]
        if index is not None and index < len(self.positional):
            return self.positional[index]
        return default

    def constant(self, index: int | None, name: str, default: object = None) -> Any:
        """The argument as a Python constant (``UNKNOWN`` if not one); ``default`` when absent."""
        missing = object()
        value = self.get(index, name, missing)
        return default if value is missing else self.unwrap(value)

    def names(self) -> set[str]:
        return set(self.keywords)


class Library:
    """One library the estimator understands; see the module docstring."""

    module: ClassVar[str] = ""
    functions: ClassVar[frozenset[str]] = frozenset()
    static: ClassVar[bool] = False

    def read(self, value: object, module: types.ModuleType) -> object | None:
        return None

    # ``module`` is None only for a ``static`` library whose module is not loaded.
    def call(self, qualname: str, args: Args, ctx, module: Any) -> object:
        return UNKNOWN

    def method(self, receiver: Foreign, name: str, args: Args, ctx, module: Any) -> object:
        return UNKNOWN

    def attribute(self, receiver: Foreign, name: str, ctx, module: Any) -> object:
        return Method(receiver, name)

    def subscript(self, receiver: Foreign, key: object, ctx, module: Any) -> object:
        return UNKNOWN

    def operator(self, op: str, operands: list, ctx, module: Any) -> object:
        return UNKNOWN


def _registry() -> dict[str, Library]:
    from kernel_guard.estimator.libraries.dask import Dask
    from kernel_guard.estimator.libraries.dask_dataframe import DaskFrames
    from kernel_guard.estimator.libraries.pandas import Pandas
    from kernel_guard.estimator.libraries.pandas_constructor import PandasConstructor
    from kernel_guard.estimator.libraries.scipy_sparse import ScipySparse
    from kernel_guard.estimator.libraries.sklearn_pairwise import SklearnPairwise
    from kernel_guard.estimator.libraries.torch import Torch

    return {library.module: library for library in (Pandas(), ScipySparse(), Dask(), SklearnPairwise(), Torch(),
                                                    PandasConstructor(), DaskFrames())}


LIBRARIES: dict[str, Library] = _registry()


def _guarded(run: Callable[[], object], ctx) -> object:
    try:
        return run()
    except GiveUp as reason:
        ctx.notice(str(reason))
        return UNKNOWN
    except Exception:  # the library's own code refused the user's data: size not known
        return UNKNOWN


def _usable(library: Library | None) -> tuple[Library, types.ModuleType | None] | None:
    """The library with its module, if loaded (or not needed: ``static``)."""
    if library is None:
        return None
    module = loaded(library.module)
    return None if module is None and not library.static else (library, module)


def _owner(value: object) -> tuple[Library, types.ModuleType | None] | None:
    return _usable(LIBRARIES.get(getattr(type(value), "library", ""))) if isinstance(value, Foreign) else None


def read(value: object) -> object | None:
    """The abstract value of a live library object, ``Ref`` of a known library
    function, or ``None`` (not a library object)."""
    for library in LIBRARIES.values():
        module = loaded(library.module)
        if module is None:
            continue
        found = library.read(value, module)
        if found is not None:
            return found
        for qualname in library.functions:
            owner, _, name = qualname.rpartition(".")
            home = loaded(owner)
            if home is not None and attr(home, name) is value:
                return Ref(qualname)
    return None


def call(qualname: str, positional: list, keywords: dict, ctx) -> object | None:
    """The value of calling ``Ref(qualname)`` if a library knows it, else ``None``."""
    named = sorted((name for name in LIBRARIES if qualname == name or qualname.startswith(name + ".")), key=len)
    candidates = [_usable(LIBRARIES[name]) for name in reversed(named)]  # the most specific first
    candidates += [_owner(value) for value in [*positional, *keywords.values()]]
    tried: list[Library] = []
    for found in candidates:
        if found is None or any(found[0] is library for library in tried):
            continue
        library, module = found
        tried.append(library)
        args = Args(positional, keywords, ctx.unwrap)
        result = _guarded(partial(library.call, qualname, args, ctx, module), ctx)
        if result is not UNKNOWN:
            return result
    return UNKNOWN if tried else None


def method(receiver: Foreign, name: str, positional: list, keywords: dict, ctx) -> object:
    args = Args(positional, keywords, ctx.unwrap)
    return _on_owner(receiver, ctx, lambda library, module: library.method(receiver, name, args, ctx, module))


def attribute(receiver: Foreign, name: str, ctx) -> object:
    return _on_owner(receiver, ctx, lambda library, module: library.attribute(receiver, name, ctx, module))


def subscript(receiver: Foreign, key: object, ctx) -> object:
    return _on_owner(receiver, ctx, lambda library, module: library.subscript(receiver, key, ctx, module))


def _on_owner(receiver: Foreign, ctx, hook: Callable[[Library, types.ModuleType | None], object]) -> object:
    """``hook`` of the library that made ``receiver`` (if it is still loaded), under the time bound."""
    owner = _owner(receiver)
    if owner is None:
        return UNKNOWN
    library, module = owner
    return _guarded(lambda: hook(library, module), ctx)


def operator(op: str, operands: list, ctx) -> object:
    owner = next((found for found in map(_owner, operands) if found is not None), None)
    if owner is None:
        return UNKNOWN
    library, module = owner
    return _guarded(lambda: library.operator(op, operands, ctx, module), ctx)
