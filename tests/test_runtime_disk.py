"""--max-disk and the free-space floor on a real tmpfs, in a real kernel inside a 1 GiB
memory cgroup (tmpfs pages are charged to the kernel's cgroup: 512 MiB fits beside it).

The unguarded control really fills the filesystem (ENOSPC); guarded, the same writer
is stopped with GuardDiskLimit and room left to save a notebook. The SPEC floor (1% or
256 MiB, the lower: 5.1 MiB here) is the one tested; nothing is scaled down for tests.
"""

from __future__ import annotations

import os

import pytest
from kernel_harness import Kernel
from kgtest_tmpfs import tmpfs as mounted_tmpfs

from kernel_guard import GuardDiskLimit
from kernel_guard.runtime import Limits
from kernel_guard.runtime.disk import FLOOR_MAX, DiskWatch, floor

MiB = 1 << 20
TMPFS = 512 * MiB
# Runaway writers, 1 MiB blocks until something stops them: at memory speed (GB/s into a
# tmpfs), and of data made as it goes (random bytes, ~150 MB/s here: a download, a
# generated data set). Near the floor, the first is stopped only if the watchdog thread
# gets a look within a few ms: on a loaded machine it can fill 5 MiB first
# (benchmarks/bench_watchdog.py), so the floor is tested with the second.
WRITER = "with open('big.bin', 'wb') as f:\n    while True:\n        f.write(b'x' * 2**20)"
GENERATOR = WRITER.replace("b'x' * 2**20", "os.urandom(2**20)")
FREE = "st = os.statvfs('.'); print(st.f_bavail * st.f_frsize)"


def test_the_floor_is_one_percent_or_256_mib_the_lower():
    assert floor(100 * MiB) == MiB
    assert floor(1 << 40) == FLOOR_MAX == 256 * MiB


def test_max_disk_must_be_a_size():
    with pytest.raises(ValueError, match="max_disk must be at least 0"):
        Limits(max_disk=-1)
    with pytest.raises(TypeError, match="max_disk must be a number, not str"):
        Limits(max_disk="1G")


def test_guard_disk_limit_is_an_os_error():
    assert issubclass(GuardDiskLimit, OSError)


def test_disk_watch_says_which_bound_stopped_the_cell(tmp_path):
    watch = DiskWatch(10 * MiB, str(tmp_path))
    try:
        assert watch.error(watch.allowed) is None
        assert "over its 10.0 MiB disk limit" in str(watch.error(11 * MiB))
        assert watch.allowed == min(10 * MiB, watch.start - watch.floor)
    finally:
        watch.close()


@pytest.fixture(scope="module")
def tmpfs():
    with mounted_tmpfs(TMPFS, "disk") as path:
        yield path


@pytest.fixture(scope="module")
def kernel(tmpfs):
    with Kernel("disk", mem_limit="1G", cwd=tmpfs) as k:
        k.run("import os\n%load_ext kernel_guard")
        yield k


@pytest.fixture
def clean(kernel, tmpfs):
    """Each test starts and ends with the tmpfs empty and the kernel alive."""
    yield
    assert kernel.is_alive()
    for name in os.listdir(tmpfs):
        os.remove(os.path.join(tmpfs, name))


def free(kernel) -> int:
    return int(kernel.run(FREE).stdout.split()[-1])


@pytest.mark.kernel
@pytest.mark.cgroup
@pytest.mark.parametrize("writer", [WRITER, GENERATOR], ids=["memory speed", "generated"])
def test_unguarded_control_fills_the_filesystem(kernel, clean, writer):
    result = kernel.execute(writer)
    assert result.ename == "OSError" and "No space left on device" in result.evalue, str(result)
    assert free(kernel) == 0


@pytest.mark.kernel
@pytest.mark.cgroup
def test_the_floor_stops_a_runaway_writer_with_room_to_save(kernel, clean):
    result = kernel.execute("%%guard --max-disk 10G\n" + GENERATOR)
    assert result.ename == "GuardDiskLimit", str(result)
    assert "free so that the notebook can still be saved" in result.evalue
    assert free(kernel) > 0  # never full
    kernel.run("open('notebook.ipynb', 'w').write('x' * 200_000)")  # a notebook still fits


@pytest.mark.kernel
@pytest.mark.cgroup
def test_max_disk_stops_the_cell_soon_after_its_limit(kernel, clean):
    before = free(kernel)
    result = kernel.execute("%%guard --max-disk 64M\n" + WRITER)
    assert result.ename == "GuardDiskLimit", str(result)
    assert "over its 64.0 MiB disk limit" in result.evalue
    added = before - free(kernel)
    assert 64 * MiB < added < 128 * MiB
    assert kernel.eval("os.path.getsize('big.bin')") == added  # what was written stays


@pytest.mark.kernel
@pytest.mark.cgroup
def test_except_os_error_in_the_cell_sees_it(kernel, clean):
    result = kernel.execute("%%guard --max-disk 8M\ntry:\n" + WRITER.replace("\n", "\n    ").join(["    ", ""])
                            + "\nexcept OSError as e:\n    print(type(e).__name__)")
    assert result.ok and result.stdout == "GuardDiskLimit\n", str(result)


@pytest.mark.kernel
@pytest.mark.cgroup
def test_auto_mode_with_max_disk(kernel, clean):
    kernel.run("%guard on --max-disk 32M --max-mem none")
    try:
        assert "--max-disk 32.0 MiB" in kernel.run("%guard").plain
        result = kernel.execute(WRITER)
        assert result.ename == "GuardDiskLimit", str(result)
    finally:
        kernel.run("%guard off")
    kernel.run("open('small.txt', 'w').write('ok')")  # the next cell writes as before


def test_a_removed_working_directory_runs_the_cell_without_a_disk_limit_and_says_so():
    from test_runtime import check, run_child

    proc, result = run_child("""
        import tempfile
        gone = tempfile.mkdtemp(); os.chdir(gone); os.rmdir(gone)
        with Guard(Limits(max_disk=1 << 20)) as guard:
            ran = True
        result(ran=ran, notices=guard.report.notices)
    """)
    result = check(proc, result)
    assert result["ran"] and result["notices"] == [
        "max_disk: the free space of the working directory cannot be read (No such file or directory), "
        "so the cell runs without a disk limit"]
