"""Pools and processes over notebook functions under spawn/forkserver: refused before they run.

The start method is read live (set in an earlier cell, or held by a context or pool
object in the namespace). In a real kernel the unguarded control hangs; it runs in a
memory cgroup so that every process it started is killed by PID afterwards.
"""

from __future__ import annotations

import ast
import multiprocessing

import pytest
from kernel_harness import Kernel, cgroup_unavailable

from kernel_guard.extension.spawn import find_hangs, live_start_method

SETUP = "import multiprocessing as mp\ndef square(x):\n    return x * x\n"


def namespace(code: str = SETUP) -> dict:
    ns = {"__name__": "__main__"}  # functions defined here belong to __main__, as in a kernel
    exec(code, ns)
    return ns


def hangs(cell: str, ns: dict) -> list[tuple[int, str, str, str]]:
    return [(h.line, h.via, h.function, h.method) for h in find_hangs(ast.parse(cell), ns)]


@pytest.fixture
def default_spawn(monkeypatch):
    """The kernel's default context set to spawn in an earlier cell (read, never fixed, by the check)."""
    monkeypatch.setattr(multiprocessing, "get_start_method", lambda allow_none=False: "spawn")


@pytest.mark.parametrize("cell, found", [
    ("with mp.Pool(2) as pool:\n    print(pool.map(square, range(4)))", (2, "pool.map", "square", "spawn")),
    ("from multiprocessing import Pool\nPool(2).imap_unordered(square, [1])",
     (2, "pool.imap_unordered", "square", "spawn")),
    ("p = mp.Process(target=square, args=(2,))\np.start()", (1, "Process", "square", "spawn")),
    ("def cube(x):\n    return x ** 3\nwith mp.Pool() as pool:\n    pool.apply_async(cube, (2,))",
     (4, "pool.apply_async", "cube", "spawn")),
    ("import functools\nf = functools.partial(square)\nwith mp.Pool() as pool:\n    pool.map(f, [1])", None),
])
def test_default_context_set_to_spawn_earlier(default_spawn, cell, found):
    assert hangs(cell, namespace()) == ([found] if found else [])


def test_context_and_pool_objects_in_the_namespace_carry_their_method():
    ns = namespace(SETUP + "ctx = mp.get_context('spawn')\nfs = mp.get_context('forkserver')\n"
                   "import functools\ncube = functools.partial(square)")
    assert hangs("with ctx.Pool(2) as pool:\n    pool.map(square, [1])", ns) == [(2, "pool.map", "square", "spawn")]
    assert hangs("fs.Process(target=cube).start()", ns) == [(1, "Process", "square", "forkserver")]
    assert hangs("pool = mp.pool.Pool(2, context=ctx)\npool.starmap(square, [(1,)])", ns) == [
        (2, "pool.starmap", "square", "spawn")]


def test_a_pool_made_in_an_earlier_cell_carries_its_context():
    ns = namespace()
    ns["pool"] = multiprocessing.get_context("spawn").Pool(1)
    try:
        assert hangs("results = pool.map(square, range(3))", ns) == [(1, "pool.map", "square", "spawn")]
        assert hangs("results = pool.map(abs, range(3))", ns) == []
    finally:
        ns["pool"].terminate()
        ns["pool"].join()


def test_start_method_set_in_the_cell_counts_from_there_on():
    if live_start_method(multiprocessing) != "fork":
        pytest.skip("needs fork as the start method in force")
    cell = ("with mp.Pool(2) as pool:\n    pool.map(square, [1])\n"
            "mp.set_start_method('spawn', force=True)\nwith mp.Pool(2) as pool:\n    pool.map(square, [1])")
    assert hangs(cell, namespace()) == [(5, "pool.map", "square", "spawn")]


@pytest.mark.parametrize("cell", [
    "with mp.get_context('fork').Pool(2) as pool:\n    pool.map(square, [1])",  # fork copies __main__
    "import math\nwith mp.Pool(2) as pool:\n    pool.map(math.sqrt, [1])",  # importable in the workers
    "with mp.Pool(2) as pool:\n    pool.map(lambda x: x, [1])",  # fails to pickle in the kernel: no hang
    "def outer():\n    def inner(x):\n        return x\n    return inner\n"
    "with mp.Pool(2) as pool:\n    pool.map(inner, [1])",
    "with mp.Pool(2) as pool:\n    pool.map(print, [1])",
    "square = abs\nwith mp.Pool(2) as pool:\n    pool.map(square, [1])",  # rebound in the cell
])
def test_what_workers_can_run_is_not_refused(default_spawn, cell):
    assert hangs(cell, namespace()) == []


def test_values_that_are_not_exact_stdlib_types_are_not_read(default_spawn):
    touched = []

    class Trap:
        def __getattr__(self, name):
            touched.append(name)
            return lambda *a, **k: None

        def __eq__(self, other):
            touched.append("__eq__")
            return True

        __hash__ = object.__hash__

    def trapped():
        pass

    trapped.__module__ = Trap()  # compared as an exact str only
    ns = namespace()
    ns.update(mp=Trap(), ctx=Trap(), pool=Trap(), fn=trapped)
    cells = ["with ctx.Pool(2) as p:\n    p.map(square, [1])", "pool.map(square, [1])",
             "mp.Process(target=square).start()", "import multiprocessing as m\nm.Process(target=fn).start()"]
    for cell in cells:
        assert hangs(cell, ns) == []
    assert touched == []


# -- in a real kernel -------------------------------------------------------------------

POOL_CELL = "with mp.Pool(2) as pool:\n    print(pool.map(square, range(4)))"


@pytest.mark.kernel
@pytest.mark.cgroup
def test_unguarded_pool_over_a_notebook_function_hangs_the_kernel():
    if cgroup_unavailable():
        pytest.skip(cgroup_unavailable())
    # The cgroup holds the kernel and every worker it spawns: closing kills them all by PID.
    with Kernel("spawn-control", mem_limit="1G") as kernel:
        kernel.run("import multiprocessing as mp\nmp.set_start_method('spawn')")
        kernel.run("def square(x):\n    return x * x")
        result = kernel.execute(POOL_CELL, timeout=30)
        assert result.status == "timeout", result
        assert len(kernel.cgroup.members()) > 1  # the kernel and its (re)spawned workers


@pytest.fixture(scope="module")
def guarded_kernel():
    with Kernel("spawn-guard") as kernel:
        kernel.run("%load_ext kernel_guard")
        kernel.run("import multiprocessing as mp\nmp.set_start_method('spawn')")
        kernel.run("def square(x):\n    return x * x")
        yield kernel


@pytest.mark.kernel
def test_guarded_pool_is_refused_before_it_runs(guarded_kernel):
    result = guarded_kernel.execute("%%guard\n" + POOL_CELL, timeout=30)
    assert result.ename == "GuardRefused", result
    assert result.evalue.startswith("line 3: KG507 pool.map runs square, defined in the notebook, in workers "
                                    "started by spawn"), result.evalue
    assert "move square to a .py module" in result.evalue
    assert result.stdout == ""  # refused: no worker ever ran
    guarded_kernel.run("%guard on")
    try:
        result = guarded_kernel.execute("p = mp.Process(target=square, args=(3,))\np.start()", timeout=30)
        assert result.ename == "GuardRefused" and result.evalue.startswith("line 1: KG507 Process runs square")
        assert guarded_kernel.eval("'p' in globals()") is False
    finally:
        guarded_kernel.run("%guard off")


@pytest.mark.kernel
def test_guarded_pools_that_work_still_run(guarded_kernel):
    result = guarded_kernel.execute(
        "%%guard\nimport math\nwith mp.Pool(2) as pool:\n    print(pool.map(math.factorial, range(4)))", timeout=60)
    assert result.ok and result.stdout.strip() == "[1, 1, 2, 6]", result
    result = guarded_kernel.execute(
        "%%guard\nwith mp.get_context('fork').Pool(2) as pool:\n    print(pool.map(square, range(4)))", timeout=60)
    assert result.ok and result.stdout.strip() == "[0, 1, 4, 9]", result
