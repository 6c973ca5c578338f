"""%%guard's limits end to end: a real ipykernel inside a 1 GiB memory cgroup, where
the unguarded control really dies and each guarded cell raises, leaves the kernel
alive, the namespace intact and every limit, handler and stream as it was."""

from __future__ import annotations

import re

import pytest
from kernel_harness import Kernel, left_as_found, require_cgroup

pytestmark = [pytest.mark.kernel, pytest.mark.cgroup]

HUGE = "np.ones((20000, 20000))"  # 2.98 GiB of float64: three times the cgroup


@pytest.fixture(scope="module")
def kernel():
    require_cgroup()
    with Kernel("limits", mem_limit="1G") as k:
        k.run("import numpy as np, time\n%load_ext kernel_guard")
        yield k


@pytest.fixture
def unchanged(kernel):
    with left_as_found(kernel):
        yield


def test_unguarded_control_is_killed_by_the_oom_killer(kernel):
    kills = kernel.cgroup.oom_kills()
    result = kernel.execute(f"a = {HUGE}", timeout=60)
    assert result.died, str(result)
    assert kernel.cgroup.oom_kills() == kills + 1
    kernel.restart()
    loaded = kernel.run("import numpy as np, time\n%load_ext kernel_guard")
    assert "died" in loaded.plain and "out-of-memory" in loaded.plain  # the crash recorder noticed


def test_huge_literal_allocation_is_refused_before_running(kernel, unchanged):
    result = kernel.execute(f"%%guard --max-mem 600M\nran = True\na = {HUGE}")
    assert result.ename == "GuardRefused"
    assert result.evalue.startswith(  # the whole reason, for logs
        "line 3: np.ones((20000, 20000)) allocates 3.0 GiB (float64, shape 20,000 × 20,000), but only "
    )
    assert re.fullmatch(
        r"GuardRefused: cell not run: line 3 allocates 3\.0 GiB, only [\d.]+ MiB left \(details above\)",
        result.error_text.strip(),
    ), result.error_text
    assert "not run" in result.plain and "np.memmap" in result.plain and "--force" in result.plain
    assert "<code>np.ones((20000, 20000))</code>" in result.html
    assert kernel.eval("'ran' in globals() or 'a' in globals()") is False


def test_dry_run_reports_and_runs_nothing(kernel, unchanged):
    result = kernel.execute(f"%%guard --max-mem 600M --dry-run\nran = True\na = {HUGE}")
    assert result.ok and not result.errors
    assert "would be refused" in result.plain and "3.0 GiB" in result.plain
    assert "20,000 × 20,000" in result.plain
    assert kernel.eval("'ran' in globals()") is False


def test_size_known_only_at_run_time_raises_guard_memory_error(kernel, unchanged):
    # A size read from a file: no static analysis can know it.
    kernel.run("import pathlib, tempfile\nsize_file = pathlib.Path(tempfile.mkdtemp()) / 'n'\n"
               "size_file.write_text('20000')")
    result = kernel.execute("%%guard --max-mem 600M\nn = int(size_file.read_text())\na = np.random.rand(n, n)")
    assert result.ename == "GuardMemoryError", str(result)
    # the size numpy asked for, and where it would have taken the kernel
    assert re.fullmatch(r"an array of 3\.0 GiB \(float64, shape 20,000 × 20,000\) would take the kernel "
                        r"from [\d.]+ MiB to 3\.\d GiB, over its 600\.0 MiB cap", result.evalue), result.evalue
    # the user's line, not numpy's compiled frames
    assert "----> 3 a = np.random.rand(n, n)" in result.error_text
    assert "Could not get source" not in result.error_text and "mtrand" not in result.error_text
    assert len(result.error_text.splitlines()) < 12, result.error_text
    assert kernel.eval("'a' in globals()") is False


def test_force_runs_a_refused_cell_under_its_cap(kernel, unchanged):
    result = kernel.execute(f"%%guard --max-mem 600M --force\na = {HUGE}")
    assert "running anyway (--force)" in result.plain
    assert result.ename == "GuardMemoryError", str(result)
    assert "over its 600.0 MiB cap" in result.evalue
    # numpy's Python frames are cut at the user's line, and the cut is marked
    assert "----> 2 a = np.ones((20000, 20000))" in result.error_text
    assert "[... 1 frame inside numpy not shown by kernel_guard]" in result.error_text
    assert "numeric.py" not in result.error_text


def test_pure_python_growth_is_stopped_at_the_cap(kernel, unchanged):
    result = kernel.execute(
        "%%guard --max-mem 500M\ngrowing = []\nwhile True:\n    growing.append(' ' * 1000)", timeout=120
    )
    assert result.ename == "GuardMemoryError", str(result)
    if result.evalue.startswith("the cell ran out of room"):  # the rlimit: below the cap, says why
        assert result.evalue.startswith("the cell ran out of room under its 500.0 MiB memory cap: the kernel holds ")
        assert result.evalue.endswith("kernel_guard keeps up to 128.0 MiB free below the cap to stop the cell cleanly")
    else:  # the watchdog
        assert "over its 500.0 MiB cap" in result.evalue, result.evalue
    rss = kernel.eval("__import__('psutil').Process().memory_info().rss")
    assert rss < 600 << 20
    kernel.run("del growing")


@pytest.mark.parametrize("body", [
    "while True:\n    pass",
    "time.sleep(30)",
    "while True:\n    try:\n        time.sleep(0.05)\n    except Exception:\n        pass",
    "while True:\n    try:\n        sum(range(10**5))\n    except Exception:\n        pass",
], ids=["busy-loop", "sleep", "except-exception-sleep", "except-exception-busy"])
def test_timeout_stops_the_cell(kernel, unchanged, body):
    result = kernel.execute(f"%%guard --timeout 1\n{body}", timeout=30)
    assert result.ename == "GuardTimeout", str(result)
    assert result.elapsed < 5


def test_timeout_swallowed_by_a_bare_except_says_so(kernel, unchanged):
    body = "while True:\n    try:\n        time.sleep(0.05)\n    except:\n        pass"
    result = kernel.execute(f"%%guard --timeout 1\n{body}", timeout=30)
    assert result.ename == "GuardTimeout", str(result)
    # the traceback points at the loop, where it was raised again: the message says why
    assert "----> 2 while True:" in result.error_text
    assert result.evalue == "the cell ran longer than its 1 s timeout (raised again here: an except swallowed it)"


def test_a_timeout_never_fires_after_its_cell(kernel, unchanged):
    # Cells that end just before their deadline; a late signal would land in the
    # kernel's event loop, or in the next cell, and kill or break it.
    for _ in range(5):
        result = kernel.execute("%%guard --timeout 0.2\ntime.sleep(0.19)")
        assert result.ok or result.ename == "GuardTimeout", str(result)  # either side of the line
    result = kernel.run("time.sleep(0.5)\n'survived'")
    assert result.results == [{"text/plain": "'survived'"}]


def test_recursion_past_max_depth_is_a_short_recursion_error(kernel, unchanged):
    result = kernel.execute("%%guard --max-depth 300\ndef down(n):\n    return down(n + 1)\ndown(0)")
    assert result.ename == "RecursionError", str(result)
    assert result.elapsed < 5
    assert "down(n + 1)" in result.error_text and "frames in between not shown" in result.error_text
    assert "kernel_guard/" not in result.error_text  # no frames of the guard's machinery
    # the marker stands where frames were cut: three frames above it, three below, then the error
    above, marker, below = re.split(r"\n *(\[\.\.\. [\d,]+ frames in between not shown by kernel_guard\])\n",
                                    result.error_text)
    assert above.count("----> ") == 3 and below.count("----> ") == 3, result.error_text
    assert below.rstrip().endswith("RecursionError: maximum recursion depth exceeded")


def test_recursion_through_c_is_clamped_instead_of_crashing(kernel, unchanged):
    # Through map() every level also takes C stack: ~15,500 levels segfault an 8 MiB stack.
    result = kernel.execute(
        "%%guard --max-depth 1000000\ndef down(n):\n    return list(map(down, [n + 1]))\ndown(0)", timeout=60
    )
    assert result.ename == "RecursionError", str(result)
    # a short title, the reason under it, in the magic's own words
    assert re.search(r"<b>recursion limit lowered to [\d,]+</b><br>you gave <code>--max-depth 1,000,000</code>, "
                     r"but deeper recursion through C code", result.html), result.html
    assert "max_depth" not in result.plain


def test_a_recursion_limit_set_before_is_clamped_for_a_plain_guard(kernel, unchanged):
    # sys.setrecursionlimit(100_000) in an earlier cell: the same recursion through
    # C code as above ended the kernel with SIGSEGV under a plain %%guard.
    before = kernel.eval("__import__('sys').getrecursionlimit()")
    kernel.run("import sys\nsys.setrecursionlimit(100_000)")
    try:
        result = kernel.execute("%%guard\ndef down(n):\n    return list(map(down, [n + 1]))\ndown(0)", timeout=60)
        assert result.ename == "RecursionError", str(result)
        assert kernel.is_alive()
        assert "recursion limit lowered to" in result.plain and "100,000" in result.plain, result.plain
        assert kernel.eval("sys.getrecursionlimit()") == 100_000  # restored after the cell
    finally:
        kernel.run(f"sys.setrecursionlimit({before})")


def test_max_mem_above_the_container_is_capped_to_it(kernel, unchanged):
    # Unclamped, a 4 GiB cap in this 1 GiB cgroup lets the OOM killer end the kernel first.
    kills = kernel.cgroup.oom_kills()
    result = kernel.execute("%%guard --max-mem 4G -v\ngrowing = []\nwhile True:\n    growing.append(' ' * 1000)",
                            timeout=120)
    assert result.ename == "GuardMemoryError", str(result)
    assert kernel.is_alive() and kernel.cgroup.oom_kills() == kills
    notice = "--max-mem 4G is above the 1.0 GiB this kernel can use (container limit); capped at 1.0 GiB"
    assert result.plain.count(notice) == 1, result.plain
    assert "of the 1.0 GiB cap" in result.plain  # the -v summary: the cap used
    kernel.run("del growing")


def test_output_flood_is_capped(kernel, unchanged):
    result = kernel.execute("%%guard --max-output 100K\nwhile True:\n    print('x' * 99)", timeout=30)
    assert result.ename == "GuardOutputLimit", str(result)
    assert 90_000 < len(result.stdout.encode()) <= 101 * 1024
    # one line under the output, no source traceback
    assert result.error_text.strip() == (
        "GuardOutputLimit: the cell printed 100.0 KiB (1,024 lines), all its output cap allows, "
        "and was stopped at line 3")


def test_verbose_summary_and_history(kernel, unchanged):
    result = kernel.run("%%guard --max-mem 600M --timeout 10 -v\nb = np.ones(10**6)")
    assert result.plain.startswith("kernel_guard: ran for ")
    assert "peak memory" in result.plain and "of the 600.0 MiB cap" in result.plain
    assert "timeout 10 s" in result.plain
    history = kernel.run("%guard history").plain
    assert "b = np.ones(10**6)" in history
    for outcome in ("GuardMemoryError", "GuardTimeout", "RecursionError", "refused"):
        assert outcome in history
    kernel.run("del b")


def test_auto_mode_guards_every_cell_until_off(kernel, unchanged):
    kernel.run("%guard on --timeout 2")
    try:
        result = kernel.execute("while True:\n    pass", timeout=30)
        assert result.ename == "GuardTimeout", str(result)
        shown = kernel.run("y = 6\ny * 7")
        assert shown.results[0]["text/plain"] == "42"
        refused = kernel.execute(f"z = {HUGE}")
        assert refused.ename == "GuardRefused" and refused.evalue.startswith("line 1:")  # no %%guard line
    finally:
        kernel.run("%guard off")
    guarded = "len(__import__('kernel_guard.extension').extension.loaded(get_ipython()).history)"
    before = kernel.eval(guarded)
    kernel.run("x = 1")
    assert kernel.eval(guarded) == before  # off: cells run unguarded again


def test_interrupt_restores_everything(kernel, unchanged):
    result = kernel.execute("%%guard --max-mem 600M --timeout 60\ntime.sleep(30)", interrupt_after=1.0)
    assert result.ename == "KeyboardInterrupt", str(result)
    assert result.elapsed < 10
