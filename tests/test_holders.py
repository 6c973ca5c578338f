"""Sizing what holds memory (kernel_guard.holders) on namespaces built here: exact sizes
for arrays, frames and sparse matrices, one count per buffer, IPython's hidden holders,
and objects whose every hook would leave a mark if it ran. The same in a real kernel,
with %guard free, is in test_holders_kernel.py."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import types
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import scipy.sparse

from kernel_guard.holders import Sizer, advice, describe, memory_view
from kernel_guard.release import check_names, malloc_trim

MiB = 1 << 20


def shell(user_ns: dict, *, hidden: dict | None = None, outputs: dict | None = None, inputs=()):
    """The parts of an InteractiveShell the sizing reads."""
    hidden = dict(hidden or {})
    user_ns = {**hidden, **user_ns}
    history = types.SimpleNamespace(output_hist=dict(outputs or {}), input_hist_parsed=list(inputs),
                                    input_hist_raw=list(inputs))
    return types.SimpleNamespace(user_ns=user_ns, user_global_ns=user_ns, user_ns_hidden=hidden,
                                 history_manager=history)


def by_name(view):
    return {h.name: h for h in view.holders}


def test_arrays_exact_and_every_buffer_once():
    a = np.ones((1000, 500))
    base = np.zeros(2_000_000)
    view = memory_view(shell({"a": a, "b": a, "v": a[:10], "tail": base[-5:]}))
    held = by_name(view)
    assert held["a"].nbytes - a.nbytes < 200  # the header only on top of the data
    assert held["a"].also == ["b"]  # two names, one row
    assert "b" not in held
    assert held["v"].nbytes < 200 and held["v"].shares == ["a"]  # a view keeps a's memory, counted there
    assert held["tail"].nbytes >= base.nbytes  # the base no name holds any more is kept by its view
    later = by_name(memory_view(shell({"view": base[:5], "base": base})))
    assert later["view"].nbytes >= base.nbytes and later["base"].nbytes < 200  # counted once, whatever the order
    assert later["base"].shares == ["view"]
    assert held["a"].what == "float64 array 1,000 × 500"


def test_pandas_matches_memory_usage_deep_and_shares_the_array_it_was_built_on():
    frame = pd.DataFrame({"n": np.arange(200_000), "x": np.random.rand(200_000),
                          "s": [f"name {i}" for i in range(200_000)], "c": pd.Categorical(["a", "b"] * 100_000)})
    expected = frame.memory_usage(deep=True).sum()
    series = pd.Series(np.arange(300_000.0))
    held = by_name(memory_view(shell({"frame": frame, "series": series})))
    assert abs(held["frame"].nbytes - expected) < 0.02 * expected
    # Python strings are sampled; pyarrow's (which dask[dataframe] brings) are one buffer, sized exactly
    assert held["frame"].approximate is (frame["s"].dtype.storage == "python")
    assert abs(held["series"].nbytes - series.memory_usage(deep=True)) < 1000
    assert held["frame"].what == "DataFrame 200,000 rows × 4 columns"

    array = np.ones((100_000, 4))
    on_it = pd.DataFrame(array, copy=False)
    held = by_name(memory_view(shell({"array": array, "on_it": on_it})))
    assert held["on_it"].nbytes < 10_000 and held["on_it"].shares == ["array"]


def test_sparse_is_its_data_indices_and_indptr():
    matrix = scipy.sparse.random(2000, 2000, density=0.05, format="csr", random_state=0)
    parts = matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes
    held = by_name(memory_view(shell({"m": matrix, "coo": matrix.tocoo()})))
    assert parts <= held["m"].nbytes < parts + 2000
    # Its rows are its own; its columns and data are m's indices and data, not copied.
    assert matrix.nnz * 4 <= held["coo"].nbytes < matrix.nnz * 4 + 2000
    assert held["coo"].shares == ["m"]
    assert held["m"].what == "csr_matrix 2,000 × 2,000"


def test_containers_walked_and_large_ones_sampled_within_a_few_percent():
    floats = [float(i) for i in range(500_000)]
    real = sys.getsizeof(floats) + sum(sys.getsizeof(f) for f in floats)
    records = [{"id": i, "name": "x" * (i % 50), "values": np.ones(10)} for i in range(3000)]
    held = by_name(memory_view(shell({"floats": floats, "records": records, "small": {"k": [1, 2, 3]}})))
    assert held["floats"].approximate and abs(held["floats"].nbytes - real) < 0.05 * real
    assert held["records"].nbytes > 3000 * (80 + sys.getsizeof({}))  # arrays inside dicts inside a list
    assert not held["small"].approximate


def test_hidden_holders_output_cache_last_error_and_inputs():
    result = np.ones(1_000_000)
    named = np.ones(10)
    ns = {"named": named}
    hidden = {"_": result, "_5": result, "_i5": "a * 2", "In": ["", "a * 2"], "Out": {5: result}}
    view = memory_view(shell(ns, hidden=hidden, outputs={5: result, 6: named}, inputs=["", "a * 2"]))
    held = by_name(view)
    assert held["Out[5]"].kind == "output cache" and held["Out[5]"].also == ["_", "_5"]
    assert held["Out[5]"].nbytes >= result.nbytes
    assert held["named"].also == ["Out[6]"]  # a variable also cached: del alone would not free it
    assert held["In"].kind == "input cache"
    assert "Out" not in held and "_i5" not in held  # IPython's own names are not variables


def test_last_error_frames(monkeypatch):
    def failing():
        kept = np.ones(500_000)  # noqa: F841  (kept alive by the traceback)
        raise ValueError("boom")

    try:
        failing()
    except ValueError as exc:
        error = exc
    monkeypatch.setattr(sys, "last_traceback", error.__traceback__, raising=False)
    monkeypatch.setattr(sys, "last_value", error, raising=False)
    held = by_name(memory_view(shell({})))
    local = held["kept (in failing)"]
    assert local.kind == "last error" and local.nbytes >= 4_000_000
    lines = advice(shell({}), minimum=MiB)
    assert lines == ["the last error's traceback keeps `kept (in failing)` alive, 3.8 MiB: `%guard free` releases it"]


def test_advice_names_the_largest_holders_above_the_minimum():
    ns = {"df_old": np.ones(4 * MiB // 8 * 3), "small": np.ones(10), "tiny": 1}
    assert advice(shell(ns), minimum=MiB) == ["`df_old` holds 12.0 MiB: `del df_old`, or `%guard free df_old`"]
    assert advice(shell(ns), minimum=100 * MiB) == []


class Trap:
    """Every hook that sizing could run, each leaving a mark."""

    marks: ClassVar[list[str]] = []

    def __init__(self, payload=None):
        object.__setattr__(self, "payload", payload)

    def _mark(name):
        def hook(self, *args, **kwargs):
            Trap.marks.append(name)
            return 1
        return hook

    __sizeof__ = _mark("__sizeof__")
    __len__ = _mark("__len__")
    __iter__ = _mark("__iter__")
    __eq__ = _mark("__eq__")
    __hash__ = _mark("__hash__")
    __index__ = _mark("__index__")
    __bool__ = _mark("__bool__")
    __getattr__ = _mark("__getattr__")
    __repr__ = _mark("__repr__")
    nbytes = property(_mark("nbytes property"))
    shape = property(_mark("shape property"))
    base = property(_mark("base property"))
    __class__ = property(_mark("__class__ property"))
    __dict__ = property(_mark("__dict__ property"))

    def __getattribute__(self, name):
        if name != "payload":
            Trap.marks.append(f"__getattribute__ {name}")
        return object.__getattribute__(self, name)


class Meta(type):
    def __getattr__(cls, name):
        Trap.marks.append(f"metaclass __getattr__ {name}")
        raise AttributeError(name)

    def __instancecheck__(cls, obj):
        Trap.marks.append("__instancecheck__")
        return False

    def __subclasscheck__(cls, sub):
        Trap.marks.append("__subclasscheck__")
        return False

    def __eq__(cls, other):
        Trap.marks.append("metaclass __eq__")
        return False

    __hash__ = type.__hash__
    __name__ = property(lambda cls: Trap.marks.append("metaclass __name__"))


class TrapWithMeta(Trap, metaclass=Meta):
    pass


class TrapArray(np.ndarray):
    nbytes = property(lambda self: Trap.marks.append("ndarray subclass nbytes"))


def test_no_hook_of_the_users_ever_runs(monkeypatch):
    trap = Trap(np.ones(100_000))
    frame = pd.DataFrame({"o": [Trap(), TrapWithMeta()] * 10})
    objects = np.empty(3, dtype=object)
    for i, item in enumerate([Trap(), TrapWithMeta(), trap]):
        objects[i] = item
    ns = {"trap": trap, "meta": TrapWithMeta(np.ones(10)), "in_list": [Trap(), TrapWithMeta()],
          "as_key": {Trap(): TrapWithMeta()}, "frame": frame, "objects": objects,
          "sub": np.ones(1000).view(TrapArray), "cls": TrapWithMeta}
    try:
        raise ValueError(TrapWithMeta())
    except ValueError as exc:
        monkeypatch.setattr(sys, "last_value", exc, raising=False)
        monkeypatch.setattr(sys, "last_traceback", exc.__traceback__, raising=False)
    Trap.marks.clear()  # building them ran hooks (numpy and pandas probe what they are given)
    view = memory_view(shell(ns, outputs={3: Trap()}))
    lines = advice(shell(ns), minimum=1)
    assert Trap.marks == []
    held = by_name(view)
    assert held["trap"].nbytes >= 800_000  # its instance dict reached through the C traversal alone
    assert held["trap"].what == "Trap" and held["meta"].what == "TrapWithMeta"
    assert "cls" not in held  # classes, functions and modules are code, not data
    assert lines


def test_budgets_cut_the_walk_short_and_say_so():
    nested = [[list(range(50)) for _ in range(50)] for _ in range(50)]
    view = memory_view(shell({"nested": nested, "after": np.ones(1000)}), max_objects=500)
    assert not view.complete
    assert by_name(view)["after"].nbytes >= 8000 or by_name(view)["after"].approximate
    start = time.perf_counter()
    deep = current = []
    for _ in range(100_000):  # deeper than any recursion would survive
        current.append([])
        current = current[0]
    memory_view(shell({"deep": deep}), seconds=5)
    assert time.perf_counter() - start < 30


def test_ten_thousand_names_are_sized_whole():
    ns = {f"v{i}": (i, float(i), str(i), np.ones(4))[i % 4] for i in range(10_000)}
    view = memory_view(shell(ns))
    assert view.complete and len(view.holders) == 10_001  # with the input cache row


def test_never_imports_what_the_user_has_not():
    code = textwrap.dedent("""
        import sys, types
        from kernel_guard.holders import memory_view
        from kernel_guard.extension.memory_report import memory_message
        ns = {"x": [1, 2, 3]}
        history = types.SimpleNamespace(output_hist={}, input_hist_parsed=[], input_hist_raw=[])
        shell = types.SimpleNamespace(user_ns=ns, user_global_ns=ns, user_ns_hidden={}, history_manager=history)
        memory_message(memory_view(shell)).text()
        print(sorted(m for m in ("pandas", "scipy", "torch", "dask", "sklearn", "matplotlib") if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_describe_and_sizer_on_plain_values():
    assert describe("abc") == "str of 3 characters"
    assert describe({1: 2}) == "dict of 1"
    assert describe(np.zeros((2, 3), dtype=np.float32)) == "float32 array 2 × 3"
    sizer = Sizer(time.perf_counter() + 10)
    text = "x" * 10_000
    assert sizer.size([text, text], "pair")[0] == sys.getsizeof([text, text]) + sys.getsizeof(text)
    assert sizer.size(text, "again")[0] == 0  # counted already


def test_free_refuses_unknown_and_ipython_names_before_deleting_anything():
    ns = shell({"a": 1}, hidden={"Out": {}})
    with pytest.raises(ValueError, match="name 'nosuch' is not defined: nothing was deleted"):
        check_names(ns, ["a", "nosuch"])
    with pytest.raises(ValueError, match="'Out' is IPython's"):
        check_names(ns, ["Out"])
    with pytest.raises(ValueError, match="not a variable name"):
        check_names(ns, ["a[0]"])
    assert ns.user_ns["a"] == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's")
def test_malloc_trim_is_found_on_glibc():
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert malloc_trim() is True


def test_a_library_failing_on_odd_data_does_not_stop_the_listing(monkeypatch):
    def broken(self, frame, depth):
        raise AttributeError("'BlockManager' object has no attribute 'arrays'")  # a pandas of tomorrow

    monkeypatch.setattr(Sizer, "_dataframe", broken)
    held = by_name(memory_view(shell({"frame": pd.DataFrame({"x": [1, 2]}), "after": np.ones(1000)})))
    assert held["frame"].approximate and held["frame"].nbytes > 0
    assert held["after"].nbytes >= 8000
