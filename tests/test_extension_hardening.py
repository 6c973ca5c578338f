"""The extension in a real ipykernel against issue 11 (items 6, 9) and issue 12
(items 5, 11): no user code runs before a cell, an odd namespace entry never
switches the checks off, the -v summary agrees with its notice, and a kernel over
its cap can still free memory."""

from __future__ import annotations

import re

import pytest
from kernel_harness import Kernel

pytestmark = pytest.mark.kernel

TRAPS = """
import os, types
MARKER = {marker!r}

def ran(what):
    with open(MARKER, "a") as f:
        f.write(what + "\\n")

class ClassProperty:
    @property
    def __class__(self):
        ran("__class__")
        return str

class TrickyStr(str):
    def isidentifier(self):
        ran("str method")
        return True

class Hooked(type):
    def __getattribute__(cls, name):
        ran("metaclass " + name)
        return type.__getattribute__(cls, name)

class HookedList(list, metaclass=Hooked):
    pass

class SameHash:
    def __hash__(self):
        return hash("range")
    def __eq__(self, other):
        ran("__eq__")
        return False

def f(): pass
f.__module__ = ClassProperty()
def g(): pass
g.__qualname__ = TrickyStr("g")
m = types.ModuleType("m")
m.__name__ = ClassProperty()
bound = HookedList().append
globals()[SameHash()] = 1
globals()[1] = "x"
"""


@pytest.fixture(scope="module")
def kernel():
    with Kernel("hardening") as k:
        k.run("%load_ext kernel_guard")
        yield k


def test_no_user_code_runs_before_a_cell_and_checks_never_fail_open(kernel, tmp_path):
    marker = tmp_path / "ran"
    kernel.run(TRAPS.format(marker=str(marker)))
    assert kernel.run("%%guard\nx = 1").ok
    assert kernel.eval("x") == 1
    # Running `range` would look it up in globals and run the key's __eq__ itself: check only.
    assert kernel.run("%%guard --dry-run\nhits = list(range(10**6))").ok
    result = kernel.execute("%%guard\nimport os; os._exit(3)")
    assert result.ename == "GuardRefused" and "os._exit()" in result.evalue
    assert kernel.is_alive()
    refused = kernel.execute("%%guard --max-mem 1G\nimport numpy as np\nbig = np.ones((10**5, 10**5))")
    assert refused.ename == "GuardRefused"  # the size estimate still reads the namespace
    assert "skipped" not in refused.text and "failed" not in refused.text
    assert not marker.exists(), marker.read_text()
    kernel.run("del globals()[1]")


def test_verbose_summary_reports_the_recursion_limit_in_force(kernel):
    result = kernel.run("%%guard --max-depth 10000000 -v\nx = 1")
    lowered = re.search(r"recursion limit lowered to ([\d,]+)", result.plain)
    assert lowered, result.plain
    assert f"recursion limit {lowered.group(1)}" in result.plain.split("ran for")[1]
    assert "10,000,000" not in result.plain.split("ran for")[1]


def test_refusal_measures_the_kernel_once(kernel):
    result = kernel.execute("%%guard --max-mem 2G\nimport numpy as np\nbig = np.ones((10**5, 10**5))")
    assert result.ename == "GuardRefused"
    held = set(re.findall(r"already holds ([\d.]+ [KMG]iB)", result.plain))
    assert len(held) == 1, result.plain


def test_a_kernel_over_its_cap_can_free_memory(kernel):
    kernel.run("big = bytearray(400 * 2**20)")
    on = kernel.run("%guard on --max-mem 300M --timeout 60")
    assert on.ok, on.text
    freed = kernel.execute("del big")
    assert freed.ok, freed.text
    assert "over the 300.0 MiB cap" in freed.plain  # said why the cell runs although over the cap
    kernel.run("import gc; gc.collect()")
    assert kernel.execute("small = bytearray(50 * 2**20)").ok  # under the cap again: it holds as before
    grown = kernel.execute("large = bytearray(400 * 2**20)")
    assert grown.ename == "GuardMemoryError"
    kernel.run("%guard off")
    assert kernel.eval("'big' in globals() or 'large' in globals()") is False


def test_a_nested_guarded_cell_runs_under_the_tighter_of_both_limits(kernel):
    kernel.run("import resource, sys, time\n"
               "def limits_now():\n"
               "    return [resource.getrlimit(resource.RLIMIT_DATA), sys.getrecursionlimit(), id(sys.stdout)]")
    before, state = kernel.eval("limits_now()"), kernel.process_state()
    result = kernel.run(
        "%%guard --timeout 30 --max-depth 3000 --max-mem 1G\n"
        "outside = limits_now()\n"
        "start = time.monotonic()\n"
        "tight = get_ipython().run_cell('%%guard --timeout 1 --max-depth 800 --max-mem 600M\\n'\n"
        "                               'seen = limits_now()\\ntime.sleep(3)')\n"
        "took = time.monotonic() - start\n"
        "after_tight = limits_now()\n"
        "memory = get_ipython().run_cell('%%guard --max-mem 300M\\nbig = bytearray(400 * 2**20)')\n"
        "looser = get_ipython().run_cell('%%guard --timeout 60 --max-depth 100000 --max-mem 8G\\n'\n"
        "                               'loose = limits_now()')\n"
        "after = limits_now()\n"
        "outer = 2")
    assert result.ok, result.text
    assert "GuardTimeout: the cell ran longer than its 1 s timeout" in result.error_text  # shown as the inner's
    assert kernel.eval("type(tight.error_in_exec).__name__") == "GuardTimeout"
    assert 0.9 < kernel.eval("took") < 2.9  # stopped by the inner timeout, not the outer one
    outside, seen = kernel.eval("outside"), kernel.eval("seen")
    assert seen[0][0] < outside[0][0] and seen[1] == 800 and outside[1] == 3000
    assert kernel.eval("type(memory.error_in_exec).__name__") == "GuardMemoryError"
    assert kernel.eval("'big' in globals()") is False
    loose = kernel.eval("loose")
    assert loose[0][0] <= outside[0][0] and loose[1] == 3000  # a looser inner limit leaves the outer in force
    assert kernel.eval("after_tight") == outside == kernel.eval("after")  # the outer limits exactly, after each
    assert kernel.eval("outer") == 2 and kernel.eval("limits_now()") == before  # and the kernel's after both
    assert kernel.process_state() == state
    same = kernel.run("%%guard --timeout 30\nget_ipython().run_cell('%%guard --timeout 60\\nx = 1')")
    assert same.ok and kernel.eval("x") == 1
