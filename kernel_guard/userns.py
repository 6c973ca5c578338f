"""Reading a user's namespace without running a line of the user's code.

The one way every pre-run check reads ``user_ns``. A dict lookup compares the key
looked up with every stored key of the same hash, which runs a user key's
``__eq__`` (``globals()[K()] = 1`` with ``K.__hash__`` returning ``hash('range')``);
``isinstance`` reads a user ``__class__``; ``getattr`` runs properties and
``__getattr__``; a ``str`` subclass can override any str method. So the
namespace is copied by iteration, keeping only exact ``str`` keys, and attributes
are read only from objects of exact builtin types through their type's own
descriptors. An entry that cannot be read this way is skipped alone.
"""

from __future__ import annotations

import types
from collections.abc import ItemsView, Mapping

_HIDDEN_MODULES = ("__main__", "builtins")


def entries(namespace: Mapping | None) -> dict[str, object]:
    """``namespace``'s entries whose key is an exact ``str``, in a new dict in which
    looking a name up compares exact strs only."""
    return dict(_items(namespace))


def _items(namespace: Mapping | None) -> list[tuple[str, object]]:
    if namespace is None:
        return []
    if isinstance(namespace, dict):  # the container is the caller's, not a user value
        items = list(dict.items(namespace))  # its storage: no hook of the dict, a key or a value runs
    else:  # another Mapping given to estimate() or lint_source() by its caller
        try:
            items = list(namespace.items())
        except Exception:
            return []
    return [(key, value) for key, value in items if type(key) is str]


def item(mapping: dict | types.MappingProxyType, key: str) -> object | None:
    """``mapping[key]`` (a module's ``__dict__``, a class's), found by walking it: a
    stored key of the same hash is never compared with ``key`` unless it is an exact str."""
    pairs: ItemsView
    if type(mapping) is dict:
        pairs = dict.items(mapping)
    elif type(mapping) is types.MappingProxyType:  # a class's __dict__, over a dict of its own
        pairs = mapping.items()
    else:
        return None
    try:  # in insertion order: a module's __name__ comes first
        for stored, value in pairs:
            if type(stored) is str and stored == key:
                return value
    except RuntimeError:  # another thread changed it meanwhile
        pass
    return None


def module_name(module: types.ModuleType) -> str | None:
    """The ``__name__`` of an exact module, if it is an exact str."""
    if type(module) is not types.ModuleType:
        return None
    name = item(object.__getattribute__(module, "__dict__"), "__name__")
    return name if type(name) is str else None


def function_origin(function: object) -> tuple[str, str] | None:
    """(module, qualified name) of an exact Python function or builtin function, both
    exact strs; None for anything else (a builtin method bound to an object: naming
    its class would read the class's ``__qualname__``, which a metaclass can hook)."""
    kind = type(function)
    if kind is types.FunctionType:
        qualname = object.__getattribute__(function, "__qualname__")
    elif kind is types.BuiltinFunctionType:
        owner = object.__getattribute__(function, "__self__")
        if owner is not None and type(owner) is not types.ModuleType:
            return None
        qualname = object.__getattribute__(function, "__name__")
    else:
        return None
    module = object.__getattribute__(function, "__module__")
    if type(module) is not str or type(qualname) is not str:
        return None
    return module, qualname


_HEAP_TYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class made by a class statement, with its __module__ in its dict
_type_attribute = {name: type.__dict__[name].__get__
                   for name in ("__dict__", "__flags__", "__module__", "__qualname__")}


def class_origin(cls: object) -> tuple[str, str] | None:
    """(module, qualified name) of a class whose metaclass is exactly ``type``, both
    exact strs, read through ``type``'s own descriptors (``type.__module__`` would look
    its name up in the class's dict, where a key of the same hash runs its ``__eq__``)."""
    if type(cls) is not type:
        return None
    qualname = _type_attribute["__qualname__"](cls)
    if _type_attribute["__flags__"](cls) & _HEAP_TYPE:
        module = item(_type_attribute["__dict__"](cls), "__module__")
    else:  # a builtin type: the module comes from its C name
        module = _type_attribute["__module__"](cls)
    if type(module) is not str or type(qualname) is not str:
        return None
    return module, qualname


def qualified_name(value: object) -> str | None:
    """What a module, module-level function or plain class of a namespace stands for
    (``numpy``, ``os._exit``, ``collections.OrderedDict``), read without running user
    code; None for anything else, for what cannot be read safely, and for names of
    ``__main__`` and ``builtins``."""
    if type(value) is types.ModuleType:
        module = module_name(value)
        return module if module is not None and _dotted(module) else None
    origin = function_origin(value) or class_origin(value)
    if origin is None:
        return None
    module, qualname = origin
    if module in _HIDDEN_MODULES or not _dotted(module) or not _dotted(qualname):
        return None
    return f"{module}.{qualname}"


def _dotted(name: str) -> bool:
    return all(part.isidentifier() for part in name.split("."))
