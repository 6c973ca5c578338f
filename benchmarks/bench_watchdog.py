"""What kernel_guard.runtime.Guard costs and how precisely it stops a cell.

    .venv/bin/python benchmarks/bench_watchdog.py [--quick]

- latency: one ``with Guard(...): pass`` with every limit set (arming the rlimit,
  the signal handler, the watchdog thread, recursion limit, stream proxies, and
  undoing them), median of 300; the first use in a process also imports numpy
  and warms OpenBLAS up, shown apart. Target: median <= 5 ms. Measured with a
  thread started and joined per block, and with the one thread the extension
  keeps (``watchdog.keep()``), each also while a busy thread competes for the GIL
  (as on a kernel whose cell left a thread running, or on a loaded machine).
- watchdog CPU: process CPU time during a guarded ``time.sleep`` (10 s, 3 s with
  --quick) over its wall time; and the kept thread's own CPU time between blocks.
  Target: <= 0.5 %.
- memory overshoot: peak resident memory over the 512 MiB cap for growth stopped
  by the rlimit (a list of strings), by the watchdog (writing into an ``np.empty``
  mapped before the cell), and the growth a single 3 GB ``np.ones`` caused.
  Each run is a fresh process, inside a 1 GiB memory cgroup when root can make one.
- timeout lateness: how long after a 0.2 s timeout the cell really stopped.
- sampling cost: one memory read (``/proc/self/status``: anonymous and shared
  memory) and one free-space read (``fstatvfs``), as the watchdog makes them at
  every sample.
- disk: a writer of 1 MiB blocks on a 512 MiB tmpfs (root only) stopped by the
  free-space floor (free space left) and by ``max_disk=64M`` (bytes past it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time

from kernel_guard.errors import GuardTimeout
from kernel_guard.runtime import Guard, Limits, watchdog
from kernel_guard.runtime.disk import DiskWatch
from kernel_guard.runtime.rss import sample
from kernel_guard.sizes import format_bytes

CAP = 512 << 20
CGROUP_ROOT = "/sys/fs/cgroup/memory"


LIMITS = Limits(max_mem=8 << 30, timeout=60, max_depth=3000, max_output=1 << 20)


def first_use() -> float:
    start = time.perf_counter()
    with Guard(LIMITS):
        pass
    return time.perf_counter() - start


def latency(runs: int = 300) -> tuple[float, float]:
    """Median and 95th percentile of a trivial guarded block."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        with Guard(LIMITS):
            pass
        times.append(time.perf_counter() - start)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95)]


@contextlib.contextmanager
def busy_thread():
    """A thread that wants the GIL all the time."""
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            pass

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def kept_thread_idle_cpu(seconds: float) -> float:
    """CPU time of the kept watchdog thread between blocks, over wall time."""
    path = f"/proc/self/task/{watchdog.kept()._thread.native_id}/stat"

    def ticks() -> int:
        fields = open(path).read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    before, start = ticks(), time.monotonic()
    time.sleep(seconds)
    return (ticks() - before) / os.sysconf("SC_CLK_TCK") / (time.monotonic() - start)


def watchdog_cpu(seconds: float) -> float:
    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    with Guard(Limits(max_mem=8 << 30, timeout=seconds + 60)):
        cpu0, wall0 = cpu(), time.monotonic()
        time.sleep(seconds)
        return (cpu() - cpu0) / (time.monotonic() - wall0)


OVERSHOOT_CELLS = {
    "gradual growth (stopped before the rlimit)": (
        "", "chunks = []\n        while True:\n            chunks.append(' ' * 100_000)",
    ),
    "writing pages mapped before (watchdog)": (
        "pre = np.empty(15 * 10**8 // 8)",
        "for i in range(0, pre.size, 1 << 17):\n            pre[i:i + (1 << 17)] = 1.0",
    ),
    "one 3 GB np.ones": ("", "a = np.ones(3 * 10**9 // 8)"),
}
CHILD = """
import json, numpy as np
from kernel_guard.runtime import Guard, Limits
from kernel_guard.runtime.rss import rss_and_anon
{setup}
start = rss_and_anon()[0]
try:
    with Guard(Limits(max_mem={cap})) as guard:
        {cell}
except MemoryError as e:
    error = type(e).__name__
print(json.dumps({{"error": error, "peak": guard.report.peak_rss, "start": start}}))
"""


@contextlib.contextmanager
def cgroup_for_children():
    """A 1 GiB memory cgroup for the children when possible, else None."""
    path = os.path.join(CGROUP_ROOT, f"kgbench-watchdog-{os.getpid()}")
    try:
        os.mkdir(path)
        with open(os.path.join(path, "memory.limit_in_bytes"), "w") as f:
            f.write(str(1 << 30))
    except OSError:
        yield None
        return
    try:
        yield path
    finally:
        for _ in range(100):
            with contextlib.suppress(OSError):
                os.rmdir(path)
                break
            time.sleep(0.05)


def overshoot(name: str, runs: int, cgroup: str | None) -> list[int]:
    setup, cell = OVERSHOOT_CELLS[name]
    code = CHILD.format(setup=setup, cell=cell, cap=CAP)

    def enter_cgroup():
        with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))

    results = []
    for _ in range(runs):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                              preexec_fn=enter_cgroup if cgroup else None)
        if proc.returncode != 0:
            raise SystemExit(f"{name}: child failed ({proc.returncode})\n{proc.stderr}")
        child = json.loads(proc.stdout.splitlines()[-1])
        assert child["error"] == "GuardMemoryError", child
        results.append(child["peak"] - (child["start"] if name.startswith("one") else CAP))
    return results


LATE_CELLS = {
    "time.sleep": "time.sleep(10)",
    "Event.wait": "threading.Event().wait(10)",
    "busy loop": "while True:\n    pass",
    "except Exception loop": "while True:\n    try:\n        time.sleep(0.001)\n    except Exception:\n        pass",
    "bare except loop": "while True:\n    try:\n        x = 1\n    except:\n        pass",
}


def lateness(cell: str, runs: int) -> list[float]:
    code = compile(cell, "<cell>", "exec")
    late = []
    for _ in range(runs):
        start = time.monotonic()
        try:
            with Guard(Limits(timeout=0.2)):
                exec(code, {"time": time, "threading": threading})
        except GuardTimeout:
            late.append(time.monotonic() - start - 0.2)
    return late


def sampling_cost(calls: int = 20000) -> tuple[float, float]:
    """Microseconds per memory sample and per free-space sample."""
    disk = DiskWatch(1 << 40)
    try:
        times = []
        for read in (sample, disk.added):
            start = time.perf_counter()
            for _ in range(calls):
                read()
            times.append((time.perf_counter() - start) / calls * 1e6)
    finally:
        disk.close()
    return times[0], times[1]


DISK_CHILD = """
import json, os
from kernel_guard.errors import GuardDiskLimit
from kernel_guard.runtime import Guard, Limits
os.chdir({path!r})
start = os.statvfs('.')
try:
    with Guard(Limits(max_disk={limit})):
        with open('big.bin', 'wb') as f:
            while True:
                f.write(b'x' * 2**20)
except GuardDiskLimit:
    pass
st = os.statvfs('.')
os.remove('big.bin')
print(json.dumps({{"free": st.f_bavail * st.f_frsize, "added": (start.f_bavail - st.f_bavail) * st.f_frsize}}))
"""


@contextlib.contextmanager
def tmpfs(size: int):
    """A tmpfs of ``size`` bytes mounted on a temporary directory, or None without root."""
    import tempfile

    path = tempfile.mkdtemp(prefix="kgbench-disk-")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "kgbench", path],
                             capture_output=True, check=False).returncode == 0
    try:
        yield path if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", path], check=True)
        os.rmdir(path)


def disk_stops(path: str, limit: int, runs: int) -> list[dict]:
    results = []
    for _ in range(runs):
        proc = subprocess.run([sys.executable, "-c", DISK_CHILD.format(path=path, limit=limit)], check=False,
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise SystemExit(f"disk writer failed ({proc.returncode})\n{proc.stderr}")
        results.append(json.loads(proc.stdout.splitlines()[-1]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s CPU measurement, fewer runs")
    quick = parser.parse_args().quick
    runs = 3 if quick else 7

    rows = [("latency, first use (numpy import, BLAS warm-up)", f"{first_use() * 1e3:.1f} ms", "")]
    for kept in (False, True):
        if kept:
            watchdog.keep()
        thread = "one kept thread" if kept else "a thread per block"
        for busy in (False, True):
            with busy_thread() if busy else contextlib.nullcontext():
                median, p95 = latency(100 if busy else 300)
            rows.append((f"latency, trivial block, {thread}{', busy thread' if busy else ''}",
                         f"median {median * 1e3:.2f} ms, p95 {p95 * 1e3:.2f} ms", "<= 5 ms"))
    seconds = 3.0 if quick else 10.0
    rows.append((f"watchdog CPU, {seconds:g} s guarded sleep", f"{watchdog_cpu(seconds) * 100:.3f} %", "<= 0.5 %"))
    rows.append((f"kept watchdog thread CPU between blocks, {seconds:g} s",
                 f"{kept_thread_idle_cpu(seconds) * 100:.3f} %", "0"))
    watchdog.release()
    with cgroup_for_children() as cgroup:
        where = "in a 1 GiB cgroup" if cgroup else "no cgroup"
        for name in OVERSHOOT_CELLS:
            values = overshoot(name, runs, cgroup)
            what = "growth" if name.startswith("one") else "over the cap"
            rows.append((f"memory {what}, {name}, cap {format_bytes(CAP)}",
                         f"median {_mib(statistics.median(values))}, max {_mib(max(values))}", where))
    memory_us, disk_us = sampling_cost()
    rows.append(("sampling cost: memory (status) / free space (fstatvfs)",
                 f"{memory_us:.1f} / {disk_us:.1f} us a read", ""))
    with tmpfs(512 << 20) as path:
        if path is None:
            rows.append(("disk stops", "skipped: cannot mount a tmpfs", ""))
        else:
            floor = [r["free"] for r in disk_stops(path, 1 << 40, runs)]
            rows.append(("disk floor (5.1 MiB of a 512 MiB tmpfs), free left, 1 MiB blocks",
                         f"median {_mib(statistics.median(floor))}, min {_mib(min(floor))}", "> 0"))
            over = [r["added"] - (64 << 20) for r in disk_stops(path, 64 << 20, runs)]
            rows.append(("max_disk 64 MiB, tmpfs, 1 MiB blocks: written past it",
                         f"median {_mib(statistics.median(over))}, max {_mib(max(over))}", ""))
    for name, cell in LATE_CELLS.items():
        late = lateness(cell, runs)
        rows.append((f"timeout lateness, {name}",
                     f"median {statistics.median(late) * 1e3:.1f} ms, max {max(late) * 1e3:.1f} ms", ""))

    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print(f"{'measure':<{width}}  {'value':<{value_width}}  target / note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:<{value_width}}  {note}")


def _mib(nbytes: float) -> str:
    return f"{nbytes / 2**20:+.0f} MiB"


if __name__ == "__main__":
    main()
