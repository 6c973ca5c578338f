"""A cell that runs out of memory under %%guard must end, not hang.

CPython 3.11-3.13 push the position of the raising instruction as a new int when a
MemoryError unwinds into a ``with`` block or an ``except``/``finally`` body; past code
unit 256 that int needs memory the cap has just refused, and CPython loops forever
holding the GIL (gh-132508). Reported from real kernels: 6 hangs in 12 runs of the
cell below, stuck at ``with guard: cell.run()`` in the extension's large ``run()``.
"""

from __future__ import annotations

import dis
import sys
import types

import pytest
from kernel_harness import Kernel, require_cgroup

# 3.10 and older have no exception table and push no int.
needs_exception_table = pytest.mark.skipif(sys.version_info < (3, 11), reason="exception tables are 3.11+")

# Ints up to 256 are preallocated: a handler's range must end at or below code unit
# 257 (byte 514); kept at byte 512.
_LAST_SAFE_BYTE = 512


def _lasti_range_ends(code: types.CodeType) -> list[tuple[str, int]]:
    """(qualified name, end byte) of every handler range that pushes lasti, in
    ``code`` and the code nested in it."""
    ends = [(code.co_qualname, entry.end) for entry in dis.Bytecode(code).exception_entries if entry.lasti]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            ends += _lasti_range_ends(const)
    return ends


@needs_exception_table
def test_our_frames_under_the_cell_unwind_without_allocating():
    from kernel_guard.extension import cell, core
    from kernel_guard.runtime import interrupt, output, watchdog

    # Every frame of ours that can be on a stack while the rlimit is armed: between
    # the user's code and Guard.__exit__, above the user's code (signal handler,
    # counting print, trace function), and the watchdog thread's.
    functions = [
        core._run_guarded, cell.CompiledCell.run,
        interrupt.Interrupter._on_signal, interrupt.Interrupter._pass_on, interrupt.Interrupter._in_cell,
        interrupt.Interrupter._escape, interrupt.Interrupter.arm_escape, interrupt.Interrupter.deliver,
        interrupt._Timeout.__del__, output.CountingStream.write, output.CountingStream.writelines,
        watchdog.Watchdog._run, watchdog.Watchdog._wait, watchdog.Watchdog._tick,
        watchdog.Watch.tick, watchdog.Watch.wait, watchdog.Watch.record, watchdog.Watch._pace, watchdog.Watch._send,
    ]
    ends = [end for function in functions for end in _lasti_range_ends(function.__code__)]
    assert ends, "the with statement of _run_guarded has such a handler"
    assert all(end <= _LAST_SAFE_BYTE for _, end in ends), ends


@needs_exception_table
def test_the_check_finds_a_large_function():
    # The guard of the test above: the code that hung had its `with` at byte 1,162.
    source = "def big(guard, cell):\n" + "".join(f"    x{i} = {i}\n" for i in range(150)) + \
             "    with guard:\n        cell.run()\n"
    namespace: dict = {}
    exec(source, namespace)
    assert max(end for _, end in _lasti_range_ends(namespace["big"].__code__)) > _LAST_SAFE_BYTE


ROWS = "rows = []\nfor i in range(10**8):\n    rows.append([i, i*2.0, str(i)])"
# The same growth inside a `with` of the user's cell, past code unit 256: only the
# watchdog stopping the cell before the rlimit leaves memory to unwind it.
PADDING = "".join(f"pad_{k} = {k}\n" for k in range(150))
ROWS_IN_A_LATE_WITH = (f"import contextlib\n{PADDING}rows = []\nwith contextlib.nullcontext():\n"
                       "    for i in range(10**8):\n        rows.append([i, i*2.0, str(i)])")


@pytest.fixture(scope="module")
def kernel():
    require_cgroup()
    with Kernel("unwind", mem_limit="1G") as k:
        k.run("%load_ext kernel_guard")
        yield k


@pytest.mark.kernel
@pytest.mark.cgroup
@pytest.mark.parametrize("body, runs", [(ROWS, 10), (ROWS_IN_A_LATE_WITH, 4)], ids=["reported-cell", "late-with"])
def test_memory_error_under_pressure_ends_the_cell_every_time(kernel, body, runs):
    for run in range(runs):
        result = kernel.execute(f"%%guard --max-mem 500M\n{body}", timeout=20)
        assert result.status != "timeout", f"run {run}: the kernel hung"
        assert result.ename == "GuardMemoryError", f"run {run}: {result}"
        assert result.elapsed < 10, f"run {run}: {result}"
        assert kernel.is_alive()
        kernel.run("del rows")
    assert kernel.eval("__import__('resource').getrlimit(__import__('resource').RLIMIT_DATA)[0]") == -1
