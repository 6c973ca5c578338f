"""What the crash recorder costs.

    .venv/bin/python benchmarks/bench_recorder.py [--cells 2000]

1. Per cell, in process: ``cell_started`` + ``sample`` + ``cell_finished`` (two
   atomic journal writes and one RSS read), median and 95th percentile.
2. ``sample()`` alone, as the guard's watchdog calls it every 10-50 ms (it writes
   at most once a second).
3. Per-cell latency in a real IPython shell: ``run_cell("x = 1")`` with the
   recorder hooked to pre_run_cell/post_run_cell as the extension does, against
   the same shell without it, alternated so that drift hits both alike.
4. ``start()`` with a post-mortem to write, and the sampler thread's CPU while a
   cell runs (one wake-up a second) and while idle.

The state directory is a temporary one on the same file system as $HOME's
``.local/state`` unless KERNEL_GUARD_STATE_DIR says otherwise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import psutil


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_cell(Recorder, cells: int) -> None:
    rec = Recorder(key="bench-cell")
    rec.start()
    source = "import numpy as np\nx = np.ones((1000, 1000))\n" * 5
    limits = {"max_mem": 8 << 30, "timeout": 60.0, "max_depth": 3000, "max_output": 1 << 20}
    times = []
    for i in range(cells):
        t = time.perf_counter()
        rec.cell_started(i, source, limits)
        rec.sample(100 << 20)
        rec.cell_finished()
        times.append(time.perf_counter() - t)
    rec.stop()
    us = [t * 1e6 for t in times]
    print(f"1. per cell (started + sample + finished): median {statistics.median(us):.0f} us, "
          f"p95 {percentile(us, 0.95):.0f} us  ({cells} cells)")

    rec = Recorder(key="bench-sample")
    rec.start()
    rec.cell_started(1, "x = 1", None)
    n = 200_000
    t = time.perf_counter()
    for _ in range(n):
        rec.sample(100 << 20)
    per = (time.perf_counter() - t) / n * 1e6
    rec.cell_finished()
    rec.stop()
    print(f"2. sample() from a watchdog: {per:.2f} us a call "
          f"({per * 100:.0f} us a second at the watchdog's fastest 100 calls/s)")


def bench_shell(Recorder, cells: int) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from kernel_guard.recorder import cell_number

    shell = InteractiveShell.instance()
    rec = Recorder(key="bench-shell")
    rec.start()

    def pre(info):
        rec.cell_started(cell_number(shell, info), info.raw_cell or "")

    def post(result):
        rec.cell_finished()

    def timed(n: int) -> list[float]:
        out = []
        for _ in range(n):
            t = time.perf_counter()
            shell.run_cell("x = 1", store_history=True)
            out.append(time.perf_counter() - t)
        return out

    timed(200)  # warm up
    plain, hooked = [], []
    for _ in range(cells // 50):
        plain += timed(25)
        shell.events.register("pre_run_cell", pre)
        shell.events.register("post_run_cell", post)
        hooked += timed(25)
        shell.events.unregister("pre_run_cell", pre)
        shell.events.unregister("post_run_cell", post)
    rec.stop()
    p, h = statistics.median(plain) * 1e6, statistics.median(hooked) * 1e6
    print(f"3. run_cell('x = 1') in IPython: {p:.0f} us without the recorder, {h:.0f} us with it "
          f"(+{h - p:.0f} us median, {len(plain)} cells each)")


def bench_lifecycle(Recorder) -> None:
    import signal
    import subprocess
    import sys

    # A dead kernel to report: a child that records a cell and is SIGKILLed.
    code = ("import os, signal; from kernel_guard.recorder import Recorder; r = Recorder(key='bench-pm');"
            "r.start(); r.cell_started(3, 'x = big()', None); os.kill(os.getpid(), signal.SIGKILL)")
    child = subprocess.run([sys.executable, "-c", code], env=os.environ.copy())
    assert child.returncode == -signal.SIGKILL
    rec = Recorder(key="bench-pm")
    t = time.perf_counter()
    message = rec.start()
    start_ms = (time.perf_counter() - t) * 1e3
    assert message and "x = big()" in message
    rec.stop()
    rec = Recorder(key="bench-pm")
    t = time.perf_counter()
    rec.start()
    plain_ms = (time.perf_counter() - t) * 1e3
    print(f"4. start(): {plain_ms:.1f} ms, {start_ms:.1f} ms with a post-mortem to write")

    proc = psutil.Process()
    for state in ("idle", "running"):
        if state == "running":
            rec.cell_started(1, "time.sleep(10)", None)
        before = proc.cpu_times()
        t = time.monotonic()
        time.sleep(10)
        after = proc.cpu_times()
        cpu = (after.user + after.system - before.user - before.system) / (time.monotonic() - t)
        print(f"   sampler thread, {state}: {cpu * 100:.3f}% of a core "
              "(CPU time is counted in 10 ms ticks: 0.1% resolution over 10 s)")
    rec.cell_finished()
    rec.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.path.expanduser("~")) as tmp:
        os.environ.setdefault("KERNEL_GUARD_STATE_DIR", os.path.join(tmp, "state"))
        print(f"state dir: {os.environ['KERNEL_GUARD_STATE_DIR']}")
        from kernel_guard.recorder import Recorder

        bench_cell(Recorder, args.cells)
        bench_shell(Recorder, args.cells)
        bench_lifecycle(Recorder)


if __name__ == "__main__":
    main()
