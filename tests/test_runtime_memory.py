"""The memory cap with real allocations.

Tests that touch more than a few hundred MiB run in a 1 GiB cgroup v1 memory
cgroup, where an unguarded control is really killed by the out-of-memory killer;
they are skipped without root or a writable cgroup.
"""

from __future__ import annotations

import os

import pytest
from kgtest_cgroup import add_process, memory_cgroup
from test_runtime import check, run_child

GiB = 1 << 30
CAP = 512 << 20


def run_in_cgroup(purpose: str, body: str) -> tuple:
    with memory_cgroup(f"runtime-{purpose}", GiB) as cgroup:
        return run_child(body, preexec_fn=lambda: add_process(cgroup, os.getpid()))


GUARDED = """
import numpy as np
try:
    with Guard(Limits(max_mem={cap})) as guard:
        {cell}
    error = None
except GuardMemoryError as e:
    error = str(e)
# The next allocation in the same process works: 300 MB, touched.
after = np.ones(300 * 10**6 // 8).sum() == 300 * 10**6 // 8
result(error=error, hit=guard.report.limit_hit, peak=guard.report.peak_rss, after=bool(after),
       restored=resource.getrlimit(resource.RLIMIT_DATA) == (resource.RLIM_INFINITY,) * 2)
"""


def guarded(cell: str, cap: int = CAP) -> str:
    return GUARDED.replace("{cap}", str(cap)).replace("{cell}", cell)


@pytest.mark.cgroup
def test_unguarded_control_is_killed_by_the_oom_killer():
    proc, result = run_in_cgroup("control", "import numpy as np\na = np.ones(2 * 10**9 // 8)\nresult(alive=True)")
    assert proc.returncode == -9 and result == {}


@pytest.mark.cgroup
@pytest.mark.parametrize("call, array", [
    ("np.ones(2 * 10**9 // 8)", "1.9 GiB (float64, shape 250,000,000)"),
    ("np.ones(3 * 10**9 // 8)", "2.8 GiB (float64, shape 375,000,000)"),
    ("np.empty(3 * 10**9 // 8)", "2.8 GiB (float64, shape 375,000,000)"),
])
def test_one_huge_numpy_allocation_raises_guard_memory_error(call, array):
    proc, result = run_in_cgroup("huge", guarded(f"a = {call}"))
    result = check(proc, result)
    # the size numpy asked for, and where it would take the kernel
    assert result["error"].startswith(f"an array of {array} would take the kernel from "), result["error"]
    assert result["error"].endswith(", over its 512.0 MiB cap")
    assert result["hit"] == "memory" and result["peak"] < 100 << 20  # nothing was touched
    assert result["after"] and result["restored"]


@pytest.mark.cgroup
@pytest.mark.parametrize("cell", [
    "chunks = []\n        while True:\n            chunks.append(' ' * 100_000)",  # list of str growing
    "b = bytearray()\n        while True:\n            b += bytes(10**6)",  # one buffer realloc'ed
    "x = [i for i in range(10**9)]",  # Python ints, grown inside a comprehension
], ids=["list", "bytearray", "ints"])
def test_gradual_growth_raises_guard_memory_error_below_the_cap(cell):
    proc, result = run_in_cgroup("gradual", guarded(cell))
    result = check(proc, result)
    # the kernel is under the cap: the message says why the guard stopped it anyway
    assert result["error"].startswith("the cell ran out of room under its 512.0 MiB memory cap"), result["error"]
    assert "kernel_guard keeps up to 128.0 MiB free below the cap" in result["error"]
    assert result["hit"] == "memory" and 256 << 20 < result["peak"] <= CAP
    assert result["after"] and result["restored"]


@pytest.mark.cgroup
def test_watchdog_stops_growth_into_memory_mapped_before_the_cell():
    # np.empty maps 1.5 GB before the cell; writing it maps nothing new, so only the
    # watchdog sees it. Unguarded, this loop is killed in the 1 GiB cgroup.
    body = "import numpy as np\npre = np.empty(15 * 10**8 // 8)\n" + guarded(
        "for i in range(0, pre.size, 1 << 17):\n            pre[i:i + (1 << 17)] = 1.0"
    ).replace("# The next", "del pre\n# The next")
    proc, result = run_in_cgroup("watchdog", body)
    result = check(proc, result)
    assert result["error"].startswith("the cell's memory reached ")
    assert result["error"].endswith("over its 512.0 MiB cap")
    # Writing pre-mapped pages runs at GB/s: between two samples (10-50 ms, later on a
    # loaded machine) it can pass the cap by a few hundred MiB, still far from the cgroup's.
    assert result["hit"] == "memory" and CAP < result["peak"] < CAP + (320 << 20)
    assert result["after"] and result["restored"]


@pytest.mark.cgroup
def test_growth_inside_one_c_call_fails_the_cell_when_the_call_returns():
    body = "import numpy as np\npre = np.empty(8 * 10**8 // 8)\n" + guarded("pre[:] = 1.0", cap=300 << 20).replace(
        "# The next", "del pre\n# The next")
    proc, result = run_in_cgroup("ccall", body)
    result = check(proc, result)
    assert result["error"].endswith("over its 300.0 MiB cap (in a call that could not be interrupted)")
    assert result["hit"] == "memory" and result["after"]


@pytest.mark.cgroup
def test_np_memmap_is_not_limited_by_the_cap(tmp_path):
    path = tmp_path / "big.dat"
    proc, result = run_in_cgroup("memmap", f"""
        import numpy as np
        with Guard(Limits(max_mem=256 << 20)) as guard:
            soft = resource.getrlimit(resource.RLIMIT_DATA)[0]
            m = np.memmap({str(path)!r}, dtype=np.float64, mode="w+", shape=(768 << 20) // 8)
            for i in range(0, m.size, 1 << 20):
                m[i:i + (1 << 20)] = 2.0
            m.flush()
            total = float(m.sum())
            del m
        result(total=total, soft=soft, hit=guard.report.limit_hit, peak=guard.report.peak_rss)
    """)
    result = check(proc, result)
    assert result["total"] == 2.0 * (768 << 20) // 8 and result["hit"] is None
    assert result["soft"] < 768 << 20  # the cap was armed, the file map just does not count
    assert result["peak"] > 256 << 20  # resident file pages are reported, not capped


def test_rlimit_is_an_increment_over_what_is_mapped_and_only_the_soft_limit_moves():
    proc, result = run_child("""
        import numpy as np
        from kernel_guard.runtime.memcap import MARGIN, RESERVE
        from kernel_guard.runtime.rss import rss_and_anon, vm_data
        resource.setrlimit(resource.RLIMIT_DATA, (1 << 49, 1 << 50))
        with Guard(Limits(max_mem=1 << 30)):
            soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
            # the watchdog stops growth MARGIN below the cap; the rlimit leaves RESERVE more for unwinding
            expected = vm_data() + (1 << 30) - rss_and_anon()[1] - MARGIN + RESERVE
        result(soft=soft, hard=hard, expected=expected, after=resource.getrlimit(resource.RLIMIT_DATA))
    """)
    result = check(proc, result)
    assert abs(result["soft"] - result["expected"]) < 4 << 20
    assert result["hard"] == 1 << 50
    assert result["after"] == [1 << 49, 1 << 50]


@pytest.mark.parametrize("warm", [True, False], ids=["warmed-up", "control-without-warm-up"])
def test_openblas_first_call_under_a_tight_cap(warm):
    # OpenBLAS allocates a 32 MiB buffer at its first large product and ends the
    # process when it cannot; the Guard makes that call before arming.
    proc, result = run_child(f"""
        import numpy as np
        from kernel_guard.runtime import memcap
        from kernel_guard.runtime.rss import rss_and_anon
        memcap._blas_warm = {not warm}
        with Guard(Limits(max_mem=rss_and_anon()[1] + (40 << 20))):
            a = np.ones((300, 300))
            product = float((a @ a)[0, 0])
        result(product=product)
    """)
    if warm:
        assert check(proc, result)["product"] == 300.0
    else:
        assert proc.returncode == 1 and "OpenBLAS error: Memory allocation still failed" in proc.stderr


def test_over_the_cap_before_the_cell_refuses_to_start():
    proc, result = run_child("""
        before = state()
        try:
            guard = Guard(Limits(max_mem=1 << 20, timeout=5))
            with guard:
                ran = True
        except GuardMemoryError as e:
            error = str(e)
        result(error=error, ran="ran" in dir(), hit=guard.report.limit_hit, restored=state() == before)
    """)
    result = check(proc, result)
    assert result["error"].startswith("the kernel already uses ")
    assert result["error"].endswith(
        "over the 1.0 MiB memory cap: free some memory (del large objects) or raise the cap"
    )
    assert not result["ran"] and result["hit"] == "memory" and result["restored"]


@pytest.mark.cgroup
def test_without_rlimit_data_or_proc_the_watchdog_alone_enforces_the_cap():
    # As on macOS: no RLIMIT_DATA that counts mmap, memory read through psutil.
    proc, result = run_in_cgroup("degraded", """
        from kernel_guard.runtime import memcap, rss
        memcap.ENABLED = False
        rss._fd = -1
        try:
            with Guard(Limits(max_mem=512 << 20)) as guard:
                soft = resource.getrlimit(resource.RLIMIT_DATA)[0]
                chunks = []
                while True:
                    chunks.append(bytearray(1 << 20))
        except GuardMemoryError as e:
            error = str(e)
        del chunks
        result(error=error, soft=soft, peak=guard.report.peak_rss)
    """)
    result = check(proc, result)
    assert result["soft"] == -1  # RLIM_INFINITY: the rlimit was left alone
    assert result["error"].startswith("the cell's memory reached ")
    assert result["error"].endswith("over its 512.0 MiB cap")
    assert CAP < result["peak"] < CAP + (128 << 20)


def test_shared_memory_counts_as_memory_the_cap_sees():
    proc, result = run_child("""
        import mmap
        from kernel_guard.runtime.rss import sample
        before = sample()[1]
        m = mmap.mmap(-1, 64 << 20)  # MAP_SHARED: RLIMIT_DATA does not count it
        for i in range(0, len(m), 4096):
            m[i] = 1
        result(grew=sample()[1] - before)
    """)
    assert check(proc, result)["grew"] >= 64 << 20


def test_every_way_of_starting_a_child_gets_the_users_rlimit_data_and_the_wrappers_go_afterwards():
    proc, result = run_child("""
        import subprocess
        user = 50 << 30
        resource.setrlimit(resource.RLIMIT_DATA, (user, resource.RLIM_INFINITY))
        originals = (subprocess._fork_exec, os.system, os.posix_spawn, os.posix_spawnp)
        test = f'test "$(ulimit -d)" = {user >> 10}'  # sh counts KiB
        argv = ["sh", "-c", test]
        with Guard(Limits(max_mem=500 << 20)):
            lowered = resource.getrlimit(resource.RLIMIT_DATA)[0] < user
            codes = {
                "subprocess": subprocess.run(argv).returncode,
                "os.system": os.waitstatus_to_exitcode(os.system(test)),
                "posix_spawnp": os.waitpid(os.posix_spawnp("sh", argv, os.environ), 0)[1],
            }
            pid = os.fork()
            if pid == 0:
                os._exit(resource.getrlimit(resource.RLIMIT_DATA)[0] != user)
            codes["fork"] = os.waitpid(pid, 0)[1]
            still = resource.getrlimit(resource.RLIMIT_DATA)[0] < user
        back = originals == (subprocess._fork_exec, os.system, os.posix_spawn, os.posix_spawnp)
        result(lowered=lowered, codes=codes, still=still, back=back,
               after=resource.getrlimit(resource.RLIMIT_DATA)[0] == user)
    """)
    result = check(proc, result)
    assert result["lowered"] and result["still"]  # the kernel itself stays capped around each spawn
    assert result["codes"] == {"subprocess": 0, "os.system": 0, "posix_spawnp": 0, "fork": 0}
    assert result["back"] and result["after"]
