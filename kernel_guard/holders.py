"""What holds a kernel's memory: every variable's deep size, and the holders a user does
not see (IPython's output cache, the last error's frames, the input cache).

Nothing of the user's runs: values are read by exact type only (``type(x) is T``,
never ``isinstance``, which can consult a user ``__class__``); a type we do not know is
sized with ``object.__sizeof__`` (never its own ``__sizeof__``) and walked through
``gc.get_referents`` (the C traversal, no attribute access). Library code (pandas,
scipy, torch) runs only on exact library types, and only for modules the user has
already imported. A buffer reached twice (two names for one array, a view and its
base, a DataFrame built on an array) is counted once, for the first holder.
"""

from __future__ import annotations

import builtins
import gc
import itertools
import mmap
import sys
import time
import types
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kernel_guard.sizes import format_shape

SAMPLE = 1_000  # items of one container sized; past that the rest is extrapolated
MAX_DEPTH = 12  # nesting walked below a holder
MAX_OBJECTS = 200_000  # objects walked in all, before every holder left gets its shallow size
SCIENTIFIC = ("numpy", "pandas", "scipy.sparse", "torch")

_ATOMS = (int, float, complex, bool, type(None), str, bytes, bytearray, range, memoryview)
# Code, not data: never walked into (a function's globals are the whole namespace).
_NOT_DATA = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
             types.CodeType, types.FrameType, types.TracebackType, types.MethodWrapperType,
             types.WrapperDescriptorType, types.MethodDescriptorType, types.GetSetDescriptorType,
             types.MemberDescriptorType, types.CellType, property, staticmethod, classmethod,
             weakref.ReferenceType, weakref.ProxyType)
Handler = Callable[[Any, int], int]  # (object, depth) -> bytes
_TYPE_NAME = type.__dict__["__qualname__"]  # read through type's own slot: a metaclass cannot intercept


@dataclass(slots=True)
class Holder:
    """One object (or a cache) that keeps memory alive, under every name that reaches it."""

    name: str  # as a user types it: ``df``, ``Out[3]``, ``x`` (local of ``f`` in the last error)
    kind: str  # "variable", "output cache", "last error", "input cache"
    nbytes: int  # bytes not already counted for a holder listed before it
    what: str  # ``float64 array 1,000 × 300``
    also: list[str] = field(default_factory=list)  # other names of the same object
    shares: list[str] = field(default_factory=list)  # holders whose memory this one also keeps alive
    approximate: bool = False  # a sample extrapolated, or the walk cut short


@dataclass
class MemoryView:
    holders: list[Holder]  # largest first
    rss: int  # the kernel's resident memory when sizing started
    elapsed: float
    complete: bool  # False: the time or object budget ran out; later holders have their shallow size

    @property
    def explained(self) -> int:
        return sum(h.nbytes for h in self.holders)


def type_name(kind: type) -> str:
    return _TYPE_NAME.__get__(kind, type)


class Sizer:
    """Deep sizes of objects, each byte counted once across every ``size`` call."""

    def __init__(self, deadline: float, *, max_objects: int = MAX_OBJECTS, exclude: Iterable[object] = ()):
        self.deadline = deadline
        self.budget = max_objects
        self.seen: set[int] = {id(obj) for obj in exclude}
        self.owner: dict[int, str] = {}  # id of an array -> the holder that reached it first
        self.buffers: dict[int, str] = {}  # id of a buffer's owner (or a tensor's data pointer) -> the holder
        self._keep: list[object] = [*exclude]  # temporaries: their ids must not be reused while sizing
        self._current = ""
        self._shares: list[str] = []
        self.approximate = False
        self.exhausted = False
        self._handlers = self._library_handlers()
        self._builtin_handlers = (self._atom, self._sequence, self._collection, self._dict)
        self._atom_handler = self._handlers[id(int)][1]
        self._atom_types = {id(kind): kind for kind in _ATOMS}

    # -- entry points -------------------------------------------------------------

    def size(self, obj: object, holder: str) -> tuple[int, bool, list[str]]:
        """(bytes of ``obj`` not counted before, approximate?, holders it shares a buffer with)."""
        self._current, self._shares, self.approximate = holder, [], False
        if self.exhausted:
            self.approximate = True
            return (0 if id(obj) in self.seen else self._shallow(obj)), True, []
        total = self._walk(obj, 0)
        return total, self.approximate, list(dict.fromkeys(self._shares)) if self._shares else []

    def _walk(self, obj: object, depth: int) -> int:
        key = id(obj)
        if key in self.seen:
            holder = self.owner.get(key)  # an array another holder counted: say so
            if holder is not None and holder != self._current:
                self._shares.append(holder)
            return 0
        kind = type(obj)
        handler = self._handlers.get(id(kind))
        if handler is None or handler[0] is not kind:
            if issubclass(kind, _NOT_DATA):  # exact builtin classes: no user __subclasscheck__ runs
                return 0
            handler = (kind, self._referents)
        self.seen.add(key)
        self.budget -= 1
        if self.budget < 0 or (self.budget & 0xFF == 0 and time.perf_counter() > self.deadline):
            self.exhausted = self.approximate = True
        if self.exhausted or depth > MAX_DEPTH:
            self.approximate = True
            return self._shallow(obj)
        if handler[1] is self._atom_handler:  # most objects: spare a call
            return sys.getsizeof(obj)
        try:
            return handler[1](obj, depth)
        except Exception:  # a library's internals that fail on odd data: its own size, marked approximate
            self.approximate = True
            return object.__sizeof__(obj)

    def _shallow(self, obj: object) -> int:
        handler = self._handlers.get(id(type(obj)))
        if handler is not None and handler[0] is type(obj) and handler[1] in self._builtin_handlers:
            return sys.getsizeof(obj)
        return object.__sizeof__(obj)

    def _atom(self, obj: object, depth: int) -> int:
        return sys.getsizeof(obj)

    def _sequence(self, obj, depth: int) -> int:
        return sys.getsizeof(obj) + self._spread(obj, depth)

    def _spread(self, items, depth: int) -> int:
        """The items of a list, tuple or 1-d array; past SAMPLE of them, an even sample scaled up."""
        count = len(items)
        if count <= SAMPLE:
            return self._items(items, depth)
        self.approximate = True
        step = count / SAMPLE
        return self._items([items[int(i * step)] for i in range(SAMPLE)], depth) * count // SAMPLE

    def _collection(self, obj, depth: int) -> int:
        count = len(obj)
        if count <= SAMPLE:
            return sys.getsizeof(obj) + self._items(obj, depth)
        self.approximate = True  # sets have no order worth spreading a sample over: the first ones
        return sys.getsizeof(obj) + self._items(itertools.islice(obj, SAMPLE), depth) * count // SAMPLE

    def _dict(self, obj: dict, depth: int) -> int:
        count = len(obj)
        total = self._items(itertools.chain.from_iterable(itertools.islice(dict.items(obj), SAMPLE)), depth)
        if count > SAMPLE:
            self.approximate = True
            total = total * count // SAMPLE
        return sys.getsizeof(obj) + total

    def _referents(self, obj: object, depth: int) -> int:
        """An unknown type: its basic size from object's slot, then what its C traversal reaches."""
        return object.__sizeof__(obj) + self._spread(gc.get_referents(obj), depth)

    def _items(self, items: Iterable[object], depth: int) -> int:
        """The deep size of ``items``; str, int, float... sized here, sparing a call each."""
        total = 0
        seen, owner, atoms, walk = self.seen, self.owner, self._atom_types, self._walk
        for item in items:
            key = id(item)
            if key in seen:
                if key in owner:  # an array: say whose memory this shares
                    walk(item, depth + 1)
                continue
            kind = type(item)
            if atoms.get(id(kind)) is kind:
                seen.add(key)
                self.budget -= 1
                total += sys.getsizeof(item)
                continue
            total += walk(item, depth + 1)
            if self.exhausted:
                break
        return total

    # -- libraries ------------------------------------------------------------------

    def _library_handlers(self) -> dict[int, tuple[type, Handler]]:
        handlers: dict[int, tuple[type, Handler]] = {}

        def add(kinds: Iterable[object], handler) -> None:
            for kind in kinds:
                if type(kind) is type:
                    handlers[id(kind)] = (kind, handler)

        add(_ATOMS, self._atom)
        add([list, tuple], self._sequence)
        add([set, frozenset], self._collection)
        add([dict], self._dict)

        np = sys.modules.get("numpy")
        if np is not None:
            add([np.ndarray], self._ndarray)
            add([getattr(np, "memmap", None)], self._memmap)
            add(set(vars(np).get("sctypeDict", {}).values()), lambda obj, depth: sys.getsizeof(obj))
        pd = sys.modules.get("pandas")
        if pd is not None and np is not None:
            add([pd.DataFrame], self._dataframe)
            add([pd.Series], self._series)
            add([getattr(pd, n, None) for n in ("Index", "DatetimeIndex", "TimedeltaIndex", "PeriodIndex",
                                                 "CategoricalIndex", "IntervalIndex")], self._index)
            add([getattr(pd, "RangeIndex", None)], lambda obj, depth: object.__sizeof__(obj))
            add([getattr(pd, "MultiIndex", None)], self._multiindex)
            arrays = getattr(pd, "arrays", None)
            add([getattr(arrays, n, None) for n in getattr(arrays, "__all__", ())], self._extension_array)
        sparse = sys.modules.get("scipy.sparse")
        if sparse is not None:
            add([getattr(sparse, n, None) for n in getattr(sparse, "__all__", ())
                 if n.endswith(("_matrix", "_array")) and not n.startswith("dok")], self._sparse)
        torch = sys.modules.get("torch")
        if torch is not None:
            add([getattr(torch, "Tensor", None), getattr(getattr(torch, "nn", None), "Parameter", None)],
                self._tensor)
        return handlers

    def _buffer(self, owner: object, nbytes: int) -> int:
        """``nbytes`` held by ``owner`` (an array owning its data, a storage), counted once."""
        holder = self.buffers.get(id(owner))
        if holder is not None:
            if holder != self._current:
                self._shares.append(holder)
            return 0
        self.buffers[id(owner)] = self._current  # its owner is kept alive by the holder, or by _keep
        return nbytes

    def _ndarray(self, array, depth: int) -> int:
        base = array.base
        current = self._current
        self.owner[id(array)] = current  # reached again under another holder: shared
        if base is None and not array.dtype.hasobject:  # owns its numbers: most arrays
            return object.__sizeof__(array) + self._buffer(array, array.nbytes)
        np = sys.modules["numpy"]
        self._keep.append(array)
        size = object.__sizeof__(array)
        root = array
        while type(root.base) is np.ndarray:  # numpy collapses chains, but a base may be a view
            root = root.base
        base = root.base
        if base is None:
            self._keep.append(root)
            size += self._buffer(root, root.nbytes)
        elif type(base) is not np.memmap and type(base) is not mmap.mmap:  # file pages are not anonymous
            self._keep.append(base)
            size += self._buffer(base, root.nbytes)  # bytes, a library's buffer: its size as this array sees it
        if array.dtype.hasobject:
            size += self._spread(array.reshape(-1), depth)
        return size

    def _memmap(self, array, depth: int) -> int:
        return object.__sizeof__(array)  # pages of a file: the system drops them when it needs memory

    def _dataframe(self, frame, depth: int) -> int:
        arrays = list(frame._mgr.arrays)
        self._keep.append(arrays)
        return object.__sizeof__(frame) + sum(self._walk(a, depth + 1) for a in [*arrays, frame.index, frame.columns])

    def _series(self, series, depth: int) -> int:
        return object.__sizeof__(series) + self._walk(series._values, depth + 1) + self._walk(series.index, depth + 1)

    def _index(self, index, depth: int) -> int:
        values = index._values
        self._keep.append(values)
        return object.__sizeof__(index) + self._walk(values, depth + 1)

    def _multiindex(self, index, depth: int) -> int:
        parts = [*index.levels, *index.codes]
        self._keep.append(parts)
        return object.__sizeof__(index) + sum(self._walk(p, depth + 1) for p in parts)

    def _extension_array(self, array, depth: int) -> int:
        size = object.__sizeof__(array)
        inner = [getattr(array, name, None) for name in ("_ndarray", "_data", "_mask")]
        inner = [a for a in inner if type(a) is sys.modules["numpy"].ndarray]
        if not inner:  # Arrow-backed and others: the library's own count
            return size + self._buffer(array, int(array.nbytes))
        categories = getattr(array, "categories", None)  # Categorical: codes, then its categories
        return size + sum(self._walk(a, depth + 1) for a in inner) + (
            self._walk(categories, depth + 1) if categories is not None else 0)

    def _sparse(self, matrix, depth: int) -> int:
        parts = [getattr(matrix, name, None) for name in ("data", "indices", "indptr", "coords", "offsets", "rows")]
        parts = [p for p in parts if p is not None]
        self._keep.append(parts)
        return object.__sizeof__(matrix) + sum(self._walk(p, depth + 1) for p in parts)

    def _tensor(self, tensor, depth: int) -> int:
        size = object.__sizeof__(tensor)
        if tensor.device.type != "cpu" or tensor.is_sparse:  # device memory is not the kernel's RSS
            return size
        storage = tensor.untyped_storage()
        pointer = storage.data_ptr()
        holder = self.buffers.get(pointer)
        if holder is not None:
            if holder != self._current:
                self._shares.append(holder)
            return size
        self.buffers[pointer] = self._current
        return size + storage.nbytes()


# -- describing a value ------------------------------------------------------------


def describe(obj: Any) -> str:
    """``float64 array 1,000 × 300``, ``DataFrame 1,000 rows × 5 columns``, ``list of 12``."""
    kind = type(obj)
    name = type_name(kind)
    modules = {m: sys.modules.get(m) for m in SCIENTIFIC}
    np, pd = modules["numpy"], modules["pandas"]
    if np is not None and (kind is np.ndarray or kind is np.memmap):
        shape = format_shape(obj.shape) or "scalar"
        dtype = str(obj.dtype)
        return f"{dtype if len(dtype) <= 20 else 'structured'} {'memmap' if kind is np.memmap else 'array'} {shape}"
    if pd is not None and kind is pd.DataFrame:
        return f"DataFrame {len(obj.index):,} rows × {len(obj.columns):,} columns"
    if pd is not None and kind is pd.Series:
        return f"Series {len(obj.index):,} rows, {obj.dtype}"
    if kind is str:
        return f"str of {len(obj):,} characters"
    if kind is bytes or kind is bytearray:
        return f"{name} of {len(obj):,}"
    if any(kind is k for k in (list, tuple, dict, set, frozenset)):
        return f"{name} of {len(obj):,}"
    extent = _library_shape(obj, modules)
    return f"{name} {extent}" if extent else name


def _library_shape(obj: Any, modules: dict) -> str | None:
    kind = type(obj)
    sparse, torch = modules["scipy.sparse"], modules["torch"]
    library = (sparse is not None and type_name(kind).endswith(("_matrix", "_array"))
               and getattr(sparse, type_name(kind), None) is kind)
    library = library or (torch is not None and (kind is torch.Tensor or kind is torch.nn.Parameter))
    if not library:
        return None
    return format_shape(obj.shape) + (f" on {obj.device}" if torch and kind is torch.Tensor
                                                       and obj.device.type != "cpu" else "")


# -- a shell's holders ---------------------------------------------------------------


def memory_view(shell, *, seconds: float = 2.0, max_objects: int = MAX_OBJECTS, described: int = 50) -> MemoryView:
    """Size what holds the memory of ``shell``'s kernel, largest first, within ``seconds``;
    the ``described`` largest get their ``what``."""
    from kernel_guard.runtime import current_rss

    start = time.perf_counter()
    rss = current_rss()
    roots = _roots(shell)
    user_ns = shell.user_ns
    # The shell and the namespace are reached through `ip = get_ipython()`: not data of the user's.
    sizer = Sizer(start + seconds, max_objects=max_objects,
                  exclude=(shell, user_ns, shell.user_global_ns, sys.modules, vars(builtins)))
    sized = []
    atoms, seen = sizer._atom_types, sizer.seen
    for kind, names, obj in roots:
        if atoms.get(id(type(obj))) is type(obj) and id(obj) not in seen:  # most names: an int, a str
            seen.add(id(obj))
            nbytes, approximate, shares = sys.getsizeof(obj), False, list[str]()
        else:
            nbytes, approximate, shares = sizer.size(obj, names[0])
        sized.append((Holder(names[0], kind, nbytes, "", names[1:], shares, approximate), obj))
    sized.sort(key=lambda pair: -pair[0].nbytes)
    for holder, obj in sized[:described]:
        holder.what = _what(obj)
    holders = [holder for holder, _ in sized]
    holders += _input_cache(shell, sizer)
    holders.sort(key=lambda h: -h.nbytes)
    return MemoryView(holders, rss, time.perf_counter() - start, not sizer.exhausted)


def _what(obj: object) -> str:
    try:
        return describe(obj)
    except Exception:  # a library's attribute that fails on odd data: the type name says enough
        return type_name(type(obj))


def _roots(shell) -> list[tuple[str, list[str], object]]:
    """(kind, names, object) for every variable and cached output, one row per object:
    the user's names first, then IPython's (``Out[3]``, ``_3``, ``_``), then the last error's."""
    user_ns, hidden = shell.user_ns, shell.user_ns_hidden
    by_id: dict[int, tuple[str, list[str], object]] = {}
    code: dict[int, tuple[type, bool]] = {}  # id of a type -> (the type, is it code rather than data)

    def add(kind: str, name: str, obj: object) -> None:
        cls = type(obj)
        known = code.get(id(cls))
        if known is None or known[0] is not cls:
            known = code[id(cls)] = (cls, issubclass(cls, _NOT_DATA))
        if known[1]:
            return
        row = by_id.get(id(obj))
        if row is None:
            by_id[id(obj)] = (kind, [name], obj)
        elif name not in row[1]:
            row[1].append(name)

    ipython = []
    for name, value in dict.items(user_ns):
        if type(name) is not str or name[:2] == "__":
            continue
        if name in hidden and hidden[name] is value:  # IPython's: In, Out, _, _3, _i3...
            ipython.append((name, value))
        else:
            add("variable", name, value)
    history = shell.history_manager
    outputs = history.output_hist if history is not None else {}
    for number in sorted(key for key in outputs if type(key) is int):
        add("output cache", f"Out[{number}]", outputs[number])
    for name, value in ipython:  # _, __, ___, _3: other names of cached outputs
        if id(value) in by_id and not name.startswith("_i"):
            add("output cache", name, value)
    for name, value in _last_error_locals():
        add("last error", name, value)
    return list(by_id.values())


def _is_ipython_name(name: str, value: object, hidden: dict) -> bool:
    """A name IPython put there (``In``, ``Out``, ``_``, ``_3``, ``_i3``...), not rebound since."""
    return name in hidden and hidden[name] is value


def _last_error_locals() -> list[tuple[str, object]]:
    """The locals of the frames the last error's traceback keeps alive, and the error itself."""
    value = getattr(sys, "last_exc", None)
    if value is None:
        value = getattr(sys, "last_value", None)
    tb = getattr(sys, "last_traceback", None)
    if type(tb) is not types.TracebackType:
        return []
    found = []
    while tb is not None:
        frame = tb.tb_frame
        module = dict.get(frame.f_globals, "__name__")
        if frame.f_locals is not frame.f_globals and not (type(module) is str and module.startswith(
                ("IPython.", "ipykernel.", "kernel_guard."))):  # the cell's own frame: its locals are the namespace
            function = frame.f_code.co_name
            found += [(f"{name} (in {function})", local) for name, local in dict.items(frame.f_locals)
                      if type(name) is str]
        tb = tb.tb_next
    if value is not None:
        found.append(("sys.last_value", value))
    return found


def _input_cache(shell, sizer: Sizer) -> list[Holder]:
    """``In``/``_ih``, the raw inputs and ``_i``, ``_ii``, ``_iN``: one row."""
    history = shell.history_manager
    if history is None:
        return []
    parts: list[object] = [history.input_hist_parsed, history.input_hist_raw]
    parts += [value for name, value in dict.items(shell.user_ns)
              if type(name) is str and name.startswith("_i") and _is_ipython_name(name, value, shell.user_ns_hidden)]
    nbytes, approximate = 0, False
    for part in parts:
        size, rough, _ = sizer.size(part, "In")
        nbytes, approximate = nbytes + size, approximate or rough
    return [Holder("In", "input cache", nbytes, f"{len(history.input_hist_raw):,} cells' source",
                   ["_ih", "_i", "_ii", "_iii", "_iN"], [], approximate)]


def advice(shell, *, minimum: int, seconds: float = 0.3, count: int = 3) -> list[str]:
    """A sentence for each of the largest holders of at least ``minimum`` bytes:
    ``df_old holds 3.1 GiB: del df_old, or %guard free``."""
    from kernel_guard.sizes import format_bytes

    lines = []
    for holder in memory_view(shell, seconds=seconds).holders[:count]:
        if holder.nbytes < minimum:
            break
        size = format_bytes(holder.nbytes)
        also = f" (also {', '.join(f'`{n}`' for n in holder.also[:3])})" if holder.also else ""
        if holder.kind == "variable":
            lines.append(f"`{holder.name}` holds {size}{also}: `del {holder.name}`, or `%guard free {holder.name}`")
        elif holder.kind == "output cache":
            lines.append(f"`{holder.name}` holds {size}{also} in the output cache: `%guard free` clears it")
        elif holder.kind == "last error":
            lines.append(f"the last error's traceback keeps `{holder.name}` alive, {size}: `%guard free` releases it")
    return lines
