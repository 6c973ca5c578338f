"""estimate(source, namespace): values from a live kernel, read without running user code."""

import collections
import types

import numpy as np
import pytest

from kernel_guard.estimator import estimate


def shapes_of(source, namespace):
    return [(a.shape, a.dtype) for a in estimate(source, namespace).allocations]


@pytest.mark.parametrize(
    "namespace, source, expected",
    [
        ({"n": 1000}, "import numpy as np\nx = np.zeros((n, n))", [((1000, 1000), "float64")]),
        ({"np": np, "n": 10}, "x = np.ones(n)", [((10,), "float64")]),
        ({"numpy_alias": np, "shape": (3, 4)}, "x = numpy_alias.empty(shape)", [((3, 4), "float64")]),
        ({"np": np, "shape": [3, 4]}, "x = np.empty(shape)", [((3, 4), "float64")]),
        ({"np": np, "n": np.int64(7)}, "x = np.zeros(n)", [((7,), "float64")]),
        ({"np": np, "k": np.float64(2.5)}, "x = np.zeros(int(k * 2))", [((5,), "float64")]),
        ({"np": np, "dt": np.dtype("int8")}, "x = np.zeros(3, dt)", [((3,), "int8")]),
        ({"np": np, "dt": np.float32}, "x = np.zeros(3, dt)", [((3,), "float32")]),
        ({"np": np, "a": np.zeros((5, 6), np.int16)}, "x = np.zeros_like(a)", [((5, 6), "int16")]),
        ({"np": np, "a": np.zeros((5, 6))}, "x = a @ a.T", [((5, 5), "float64")]),
        ({"np": np, "a": np.zeros((5, 6))}, "x = np.zeros((len(a), a.size))", [((5, 30), "float64")]),
        ({"np": np, "rng": np.random.default_rng(0)}, "x = rng.random((2, 3))", [((2, 3), "float64")]),
        ({"np": np, "rs": np.random.RandomState(0)}, "x = rs.randn(4)", [((4,), "float64")]),
        ({"zeros": np.zeros}, "x = zeros(4)", [((4,), "float64")]),
        ({"rand": np.random.rand}, "x = rand(2, 2)", [((2, 2), "float64")]),
        ({"np": np, "items": list(range(50))}, "x = np.zeros(len(items))", [((50,), "float64")]),
        ({"np": np, "table": {i: i for i in range(9)}}, "x = np.zeros(len(table))", [((9,), "float64")]),
        ({"np": np, "text": "x" * 20_000}, "x = np.zeros(len(text))", [((20_000,), "float64")]),
    ],
)
def test_namespace_values(namespace, source, expected):
    assert shapes_of(source, namespace) == expected


def test_cell_bindings_shadow_the_namespace():
    assert shapes_of("import numpy as np\nn = 3\nx = np.zeros(n)", {"n": 10**9}) == [((3,), "float64")]


def test_numpy_is_not_assumed_from_a_name():
    assert shapes_of("x = np.zeros(10)", {"np": types.SimpleNamespace(zeros=np.zeros)}) == []
    assert shapes_of("x = np.zeros(10)", {}) == []


class Tripwire:
    """Objects whose every protocol hook records that it ran."""

    def __init__(self, log):
        self.__dict__["_log"] = log

    def __index__(self):
        self._log.append("__index__")
        return 10

    def __int__(self):
        self._log.append("__int__")
        return 10

    def __float__(self):
        self._log.append("__float__")
        return 10.0

    def __len__(self):
        self._log.append("__len__")
        return 10

    def __iter__(self):
        self._log.append("__iter__")
        return iter(range(10))

    def __getattr__(self, name):
        self._log.append(f"__getattr__({name})")
        return 10

    def __eq__(self, other):
        self._log.append("__eq__")
        return False

    def __hash__(self):
        self._log.append("__hash__")
        return 0

    def __bool__(self):
        self._log.append("__bool__")
        return True

    def __array__(self, *args, **kwargs):
        self._log.append("__array__")
        return np.zeros(10)

    @property
    def shape(self):
        self._log.append("shape")
        return (10, 10)

    @property
    def dtype(self):
        self._log.append("dtype")
        return np.dtype("float64")

    @property
    def __class__(self):
        self._log.append("__class__")
        return np.ndarray


class SneakyInt(int):
    def __index__(self):
        SneakyInt.log.append("__index__")
        return 10

    def __mul__(self, other):
        SneakyInt.log.append("__mul__")
        return 10


class SneakyArray(np.ndarray):
    log: list = []

    @property
    def shape(self):
        SneakyArray.log.append("shape")
        return (10, 10)


class SneakyList(list):
    def __len__(self):
        SneakyList.log.append("__len__")
        return 10


class SneakyTuple(tuple):
    def __len__(self):
        SneakyTuple.log.append("__len__")
        return 10

    def __iter__(self):
        SneakyTuple.log.append("__iter__")
        return iter((10, 10))


class Meta(type):
    def __hash__(cls):
        Meta.log.append("type __hash__")
        return 0

    def __eq__(cls, other):
        Meta.log.append("type __eq__")
        return False

    def __instancecheck__(cls, obj):
        Meta.log.append("__instancecheck__")
        return True


class WithMeta(metaclass=Meta):
    pass


class SneakyModule(types.ModuleType):
    def __getattr__(self, name):
        SneakyModule.log.append(f"__getattr__({name})")
        return np.zeros


SOURCES = [
    "x = np.zeros(obj)",
    "x = np.zeros((obj, 3))",
    "x = np.zeros(len(obj))",
    "x = np.zeros(obj.shape)",
    "x = np.zeros(int(obj))",
    "x = np.zeros(obj.n)",
    "x = np.zeros_like(obj)",
    "x = np.zeros(obj * 2)",
    "x = obj @ obj",
    "x = obj[:, None] * obj",
    "x = np.array(obj)",
    "x = np.zeros(3, dtype=obj)",
    "x = obj.astype(np.float32)",
    "x = obj.zeros(10)",
    "kept = []\nfor i in obj:\n    kept.append(np.zeros(3))",
    "kept = []\nfor i in range(obj):\n    kept.append(np.zeros(3))",
    "x = np.zeros(10) if obj else np.zeros(5)",
    "x = np.concatenate([obj, obj])",
    "x = np.random.default_rng(obj).random(obj)",
    "x = np.zeros(max(obj, 3))",
    "d = {}\nd[obj] = np.zeros(3)",
]


def _sneaky_objects():
    for cls in (SneakyInt, SneakyArray, SneakyList, SneakyTuple, Meta, SneakyModule):
        cls.log = []
    yield "tripwire", lambda log: Tripwire(log), None
    yield "int subclass", lambda log: SneakyInt(5), SneakyInt
    yield "ndarray subclass", lambda log: np.zeros((2, 2)).view(SneakyArray), SneakyArray
    yield "list subclass", lambda log: SneakyList([1, 2]), SneakyList
    yield "tuple subclass", lambda log: SneakyTuple((2, 2)), SneakyTuple
    yield "metaclass", lambda log: WithMeta(), Meta
    yield "module subclass", lambda log: SneakyModule("np"), SneakyModule


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("kind", [name for name, _, _ in _sneaky_objects()])
def test_user_objects_are_never_touched(kind, source):
    make, owner = next((m, o) for name, m, o in _sneaky_objects() if name == kind)
    log: list = []
    obj = make(log)
    namespace = {"np": np, "obj": obj}
    if kind == "module subclass":
        namespace["np"] = obj  # a module that is not numpy, with a __getattr__
    found = estimate(source, namespace)
    side_effects = log + (owner.log if owner else [])
    assert side_effects == []
    # nothing derived from the object is estimated; only sizes fixed by the source remain
    assert all(a.shape == (3,) or a.shape == (10,) or a.shape == (5,) for a in found.allocations)
    assert not any(a.shape in ((10, 10), (20,), (6, 3)) for a in found.allocations)


def test_namespace_dict_is_read_from_its_storage_without_its_hooks():
    class Recording(dict):
        log: list = []

        def __getitem__(self, key):
            Recording.log.append(key)
            return dict.__getitem__(self, key)

        __contains__ = get = __getitem__

    namespace = Recording(np=np, n=5, unused=Tripwire([]))
    found = estimate("x = np.zeros(n)\ny = np.ones(n)", namespace)
    assert [a.shape for a in found.allocations] == [(5,), (5,)]
    assert Recording.log == [] and namespace["unused"]._log == []


def test_deque_from_the_namespace_is_opaque():
    found = estimate("x = np.zeros(len(q))", {"np": np, "q": collections.deque([1, 2])})
    assert found.allocations == []
