"""The guard where the kernel meets the rest of the system, in a real ipykernel inside a
1 GiB memory cgroup: shared memory counts against --max-mem, what subprocesses write
to fds 1 and 2 counts against --max-output, and children get the user's own limits.

ipykernel does not capture fds 1 and 2 under pytest (it looks for
PYTEST_CURRENT_TEST), so the kernel here is started without that variable, as
Jupyter starts it for a user.
"""

from __future__ import annotations

import os

import pytest
from kernel_harness import Kernel, left_as_found

pytestmark = [pytest.mark.kernel, pytest.mark.cgroup]

# Touch every page of a 2 GiB shared mapping: twice the cgroup.
TOUCH = "for i in range(0, len({buf}), 4096):\n    {buf}[i] = 1"
SHARED = {
    "mmap": ("import mmap\nm = mmap.mmap(-1, 2 * 2**30)\n" + TOUCH.format(buf="m"), "del m"),
    "shared_memory": (
        "from multiprocessing import shared_memory\n"
        "s = shared_memory.SharedMemory(create=True, size=2 * 2**30)\nb = s.buf\n"
        "try:\n    " + TOUCH.format(buf="b").replace("\n", "\n    ") + "\nfinally:\n    s.unlink()",
        "b.release(); s.close(); del b, s",
    ),
    "dev_shm file": (
        "import mmap, os\nfd = os.open('/dev/shm/kgtest-%d' % os.getpid(), os.O_RDWR | os.O_CREAT)\n"
        "os.unlink('/dev/shm/kgtest-%d' % os.getpid())\nos.ftruncate(fd, 2 * 2**30)\n"
        "m = mmap.mmap(fd, 2 * 2**30)\nos.close(fd)\n" + TOUCH.format(buf="m"),
        "del m",
    ),
}


@pytest.fixture(scope="module")
def kernel():
    hidden = os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        k = Kernel("runtime", mem_limit="1G")
    finally:
        if hidden is not None:
            os.environ["PYTEST_CURRENT_TEST"] = hidden
    with k:
        k.run("import os, resource, subprocess, sys, multiprocessing\n%load_ext kernel_guard")
        yield k


@pytest.fixture
def unchanged(kernel):
    with left_as_found(kernel):
        yield


# -- shared memory and --max-mem (issue 12.8) -------------------------------------------


def test_unguarded_shared_memory_control_is_killed_by_the_oom_killer(kernel):
    kills = kernel.cgroup.oom_kills()
    result = kernel.execute(SHARED["mmap"][0], timeout=120)
    assert result.died, str(result)
    assert kernel.cgroup.oom_kills() == kills + 1
    kernel.restart()
    kernel.run("import os, resource, subprocess, sys, multiprocessing\n%load_ext kernel_guard")


@pytest.mark.parametrize("kind", SHARED)
def test_shared_memory_counts_against_max_mem(kernel, unchanged, kind):
    cell, cleanup = SHARED[kind]
    result = kernel.execute("%%guard --max-mem 400M\n" + cell, timeout=120)
    assert result.ename == "GuardMemoryError", str(result)
    assert "over its 400.0 MiB cap" in result.evalue
    kernel.run(cleanup)


# -- subprocess and fd output and --max-output (issue 12.9, 11.9) ------------------------


@pytest.mark.parametrize("cell, printed", [
    ("subprocess.run(['seq', '100000'])", "1\n2\n3\n"),
    ("os.write(1, b'x' * 50000)", "x" * 100),
    ("os.write(2, b'e' * 50000)", ""),
    ("subprocess.run(['seq', '100000'], stdout=2)", ""),
    ("os.system('seq 100000')", "1\n2\n3\n"),  # stopped when system() returns
])
def test_fd_output_of_subprocesses_and_os_write_counts_against_max_output(kernel, unchanged, cell, printed):
    result = kernel.execute("%%guard --max-output 100\n" + cell, timeout=60)
    assert result.ename == "GuardOutputLimit", str(result)
    assert result.evalue.startswith("the cell printed 100 B")
    # what fits is shown, cut lines end with a newline, the rest is dropped
    assert len((result.stdout + result.stderr).encode()) <= 101
    assert result.stdout.startswith(printed)
    assert result.elapsed < 30  # seq was stopped, not run to its end
    # unhooked: IPython puts a write of its own on the stream instances for each cell
    # (its output tee); the guard's goes, IPython's stays
    hooks = kernel.eval("[getattr(vars(s).get('write'), '__qualname__', '') for s in (sys.stdout, sys.stderr)]")
    assert not any("_CapturedFd" in hook for hook in hooks), hooks


def test_fd_output_under_the_cap_passes_untouched_and_in_full(kernel, unchanged):
    # ipykernel forwards fd output from a thread, maybe after the cell's reply; the guard
    # waits for it at the end of the cell, so all of it is there, counted
    result = kernel.execute("%%guard --max-output 100\nos.write(1, b'abc\\n'); subprocess.run(['echo', 'hi'])")
    assert result.ok and result.stdout == "abc\nhi\n", str(result)
    result = kernel.execute("%%guard --max-output 1M\nos.write(1, b'y' * 50000)")
    assert result.ok and result.stdout == "y" * 50000, str(result)


def test_print_past_the_cap_ends_its_line_before_the_error(kernel, unchanged):
    result = kernel.execute("%%guard --max-output 20\nprint('results tab' * 5)")
    assert result.ename == "GuardOutputLimit" and result.stdout == "results tabresults t\n", str(result)


# -- children get the user's limits (issue 12.15) ------------------------------------------


def test_children_of_a_guarded_cell_get_the_users_rlimit_data(kernel, unchanged):
    user = 6 << 30
    kernel.run(f"resource.setrlimit(resource.RLIMIT_DATA, ({user}, resource.RLIM_INFINITY))")
    try:
        result = kernel.execute(
            "%%guard --max-mem 500M --max-output 1M\n"  # the output cap waits for the fd output
            "inside = resource.getrlimit(resource.RLIMIT_DATA)[0]\n"
            # the fork first: a forked child would print again output still buffered
            "ctx = multiprocessing.get_context('fork'); q = ctx.SimpleQueue()\n"
            "p = ctx.Process(target=lambda: q.put(resource.getrlimit(resource.RLIMIT_DATA)[0])); p.start()\n"
            "forked = q.get(); p.join()\n"
            "subprocess.run(['sh', '-c', 'ulimit -d'])\n"
        )
        assert result.ok, str(result)
        assert result.stdout == f"{user // 1024}\n"  # sh's ulimit -d counts KiB
        assert kernel.eval("forked") == user
        assert kernel.eval("inside") < user  # the kernel itself was capped meanwhile
        assert kernel.eval("resource.getrlimit(resource.RLIMIT_DATA)[0]") == user
    finally:
        kernel.run("resource.setrlimit(resource.RLIMIT_DATA, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))")
