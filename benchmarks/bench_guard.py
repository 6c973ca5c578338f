"""What %%guard costs, measured in a real ipykernel through jupyter_client.

    .venv/bin/python benchmarks/bench_guard.py [--repeat 300]

1. Added latency per cell: the same cell with and without ``%%guard`` (default
   options: the 90% memory cap, lint, estimate), alternated so that drift hits
   both alike, timed by the client from execute_request to idle (what a user
   waits for). Every run's source is new (a numbered comment), so the lint cache
   never helps. Reported: medians and the difference of the medians. Target: 5 ms.
2. The same inside the kernel (``shell.run_cell`` timed with perf_counter, and
   with process_time: CPU of all the kernel's threads, which other processes
   on a busy machine do not inflate), without the ZeroMQ round trip.
3. The watchdog's CPU: kernel process CPU time while a guarded cell sleeps
   (``--max-mem`` and ``--timeout`` armed), against the same unguarded sleep.
   Target: 0.5 % of one core.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from kernel_harness import Kernel  # noqa: E402

TRIVIAL = "x = 1"


def hundred_lines() -> str:
    """100 lines of ordinary notebook code: imports, small arrays, loops, functions."""
    lines = ["import math", "import numpy as np", "data = np.arange(1000, dtype=np.float64)"]
    for i in range(12):
        lines += [
            f"def scale_{i}(values, factor={i + 1}):",
            "    return [v * factor for v in values]",
            f"part_{i} = data[{i}:{i} + 100].copy()",
            f"total_{i} = float(np.sum(part_{i})) + math.sqrt({i})",
            "for k in range(3):",
            f"    total_{i} += k",
            f"label_{i} = f'part {{total_{i}:.1f}}'",
            f"small_{i} = np.zeros(({i} + 10, 10))",
        ]
    lines.append("summary = total_0 + total_11")
    assert len(lines) == 100
    return "\n".join(lines)


def client_latency(kernel: Kernel, body: str, repeat: int) -> tuple[list[float], list[float]]:
    """Each run's source differs (a comment), as when a user edits and reruns: no
    cache of the lint results helps."""
    plain, guarded = [], []
    for i in range(5):  # warm up imports
        kernel.run(f"{body}\n# warm-up {i}")
        kernel.run(f"%%guard\n{body}\n# warm-up {i}")
    for i in range(repeat):
        for cell, times in ((f"{body}\n# run {i}", plain), (f"%%guard\n{body}\n# run {i}", guarded)):
            start = time.perf_counter()
            kernel.run(cell)
            times.append(time.perf_counter() - start)
    return plain, guarded


IN_KERNEL = r"""
import json as _j, time as _t
def _kg_bench(body, repeat):
    ip = get_ipython()
    out = {"plain": [], "guarded": [], "plain_cpu": [], "guarded_cpu": []}
    for i in range(repeat):
        for key, cell in (("plain", f"{body}\n# {i}"), ("guarded", f"%%guard\n{body}\n# {i}")):
            t0, c0 = _t.perf_counter(), _t.process_time()
            r = ip.run_cell(cell, store_history=False, silent=True)
            out[key].append(_t.perf_counter() - t0)
            out[key + "_cpu"].append(_t.process_time() - c0)
            assert r.success, r
    return out
print(_j.dumps(_kg_bench(BODY, REPEAT)))
del _kg_bench
"""


def in_kernel_latency(kernel: Kernel, body: str, repeat: int) -> dict[str, list[float]]:
    code = IN_KERNEL.replace("BODY", repr(body)).replace("REPEAT", str(repeat))
    out = kernel.run(code, timeout=600).stdout
    return json.loads(out.strip().splitlines()[-1])


def watchdog_cpu(kernel: Kernel, seconds: float) -> tuple[float, float]:
    process = psutil.Process(kernel.pid)

    def cpu_share(cell: str) -> float:
        before, start = process.cpu_times(), time.perf_counter()
        kernel.run(cell, timeout=seconds + 30)
        after, wall = process.cpu_times(), time.perf_counter() - start
        return ((after.user - before.user) + (after.system - before.system)) / wall

    sleep = f"time.sleep({seconds})"
    plain = cpu_share(sleep)
    guarded = cpu_share(f"%%guard --max-mem 80% --timeout {seconds * 10}\n{sleep}")
    return plain, guarded


def ms(values: list[float]) -> str:
    """The median in milliseconds."""
    return f"{statistics.median(values) * 1e3:7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--sleep", type=float, default=5.0, help="seconds of the watchdog CPU run")
    args = parser.parse_args()

    with Kernel("bench") as kernel:
        kernel.run("import time\n%load_ext kernel_guard")
        print(f"%%guard added latency, median of {args.repeat} alternated runs")
        for name, body in (("trivial cell", TRIVIAL), ("100-line cell", hundred_lines())):
            plain, guarded = client_latency(kernel, body, args.repeat)
            added = statistics.median(guarded) - statistics.median(plain)
            print(f"  client  {name:14} plain {ms(plain)}  guarded {ms(guarded)}  added {added * 1e3:6.2f} ms")
            inside = in_kernel_latency(kernel, body, args.repeat)
            for clock, suffix in (("kernel", ""), ("cpu", "_cpu")):
                plain, guarded = inside["plain" + suffix], inside["guarded" + suffix]
                added = statistics.median(guarded) - statistics.median(plain)
                print(f"  {clock:6}  {name:14} plain {ms(plain)}  guarded {ms(guarded)}  added {added * 1e3:6.2f} ms")
        plain, guarded = watchdog_cpu(kernel, args.sleep)
        print(f"kernel CPU during a {args.sleep:g} s sleep: plain {plain:.2%}, guarded {guarded:.2%}, "
              f"watchdog {guarded - plain:+.2%} of one core")


if __name__ == "__main__":
    main()
