"""What ``%guard mem`` costs, in a real IPython shell (in process).

    .venv/bin/python benchmarks/bench_holders.py [--repeat 20]

1. A namespace of 10,000 names (ints, floats, strings, small arrays, lists, dicts):
   best, median and worst of ``memory_view`` (target: <= 50 ms).
2. Large holders: a list of 5,000,000 floats and a DataFrame of 1,000,000 strings
   (sampled), 10,000 arrays of 1,000 floats; the listed size against the real one.
3. ``advice()``, what a refused or stopped cell adds to its message.
4. ``--kernel``: accuracy in a real ipykernel in a 1 GiB memory cgroup: for each holder,
   the size ``%guard mem`` lists against the kernel's resident memory growth when it was
   made (read with psutil from outside); then how far ``%guard free`` brought it down.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from IPython.core.interactiveshell import InteractiveShell

from kernel_guard.holders import advice, memory_view
from kernel_guard.sizes import format_bytes


def timed(call, repeat: int) -> tuple[float, float, float]:
    """Best, median and worst wall time: on a shared machine the best is the cost, the rest is waiting."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times), max(times)


def mixed(i: int):
    kind = i % 6
    return (i, float(i), f"value {i}", np.ones(16), [i, i + 1, str(i)], {"k": i, "v": [i]})[kind]


def report(label: str, best: float, median: float, worst: float) -> None:
    print(f"{label:<48} best {best * 1000:6.1f} ms   median {median * 1000:6.1f} ms   worst {worst * 1000:6.1f} ms")


KERNEL_HOLDERS = [  # (name in %guard mem, cell that makes it)
    ("big", "big = np.ones(37_500_000)"),
    ("Out[{n}]", "big * 2"),
    ("frame", "frame = pd.DataFrame({'s': [f'name {i}' for i in range(1_000_000)], 'n': np.arange(1_000_000)})"),
    ("floats", "floats = [float(i) for i in range(3_000_000)]"),
    ("nested", "nested = [{'id': i, 'tags': [str(i)] * 3} for i in range(300_000)]"),
]
_ROW = re.compile(r"^\s*`(?P<name>[^`]+)`\s+(?P<size>[\d.]+ [KMG]iB)")
_UNITS = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


def bench_kernel() -> None:
    import psutil

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from kernel_harness import Kernel

    with Kernel("bench-holders", mem_limit="1G") as kernel:
        kernel.run("import numpy as np, pandas as pd\n%load_ext kernel_guard")
        process = psutil.Process(kernel.pid)
        grew = {}
        for name, cell in KERNEL_HOLDERS:
            before = process.memory_info().rss
            kernel.run(cell)
            name = name.format(n=kernel.eval("max(Out)") if "{n}" in name else 0)
            grew[name] = process.memory_info().rss - before
        listed = {}
        for line in kernel.run("%guard mem").plain.splitlines():
            match = _ROW.match(line)
            if match:
                number, unit = match["size"].split()
                listed[match["name"]] = float(number) * _UNITS[unit]
        print(f"{'holder':<10} {'listed':>10} {'RSS grew':>10}  listed / grown")
        for name, growth in grew.items():
            ratio = listed[name] / growth
            print(f"{name:<10} {format_bytes(listed[name]):>10} {format_bytes(growth):>10}  {ratio:.3f}")
        total = sum(listed[name] for name in grew)
        before = process.memory_info().rss
        freed = kernel.run("%guard free big frame floats nested").plain
        after = process.memory_info().rss
        print(f"%guard free: RSS {format_bytes(before)} -> {format_bytes(after)}, fell by "
              f"{format_bytes(before - after)} of {format_bytes(total)} listed ({(before - after) / total:.1%})")
        print("  kernel said: " + freed.splitlines()[0].removeprefix("kernel_guard: "))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--kernel", action="store_true", help="accuracy in a real kernel (needs a cgroup: root)")
    args = parser.parse_args()
    if args.kernel:
        bench_kernel()
        return
    repeat = args.repeat
    shell = InteractiveShell.instance()
    ns = shell.user_ns

    ns.update({f"v{i}": mixed(i) for i in range(10_000)})
    report("10,000 mixed names", *timed(lambda: memory_view(shell), repeat))
    report("advice() for a refusal, same namespace", *timed(lambda: advice(shell, minimum=16 << 20), repeat))
    for i in range(10_000):
        del ns[f"v{i}"]

    ns.update({f"a{i}": np.ones(1000) for i in range(10_000)})
    times = timed(lambda: memory_view(shell), repeat)
    listed = memory_view(shell).explained
    report("10,000 arrays of 1,000 float64", *times)
    real = sum(ns[f"a{i}"].nbytes for i in range(10_000))
    print(f"  listed {format_bytes(listed)}, nbytes {format_bytes(real)} (+ headers and the input cache)")
    for i in range(10_000):
        del ns[f"a{i}"]

    floats = [float(i) for i in range(5_000_000)]
    frame = pd.DataFrame({"s": [f"name {i}" for i in range(1_000_000)], "n": np.arange(1_000_000)})
    ns.update(floats=floats, frame=frame)
    report("5M-float list + 1M-string DataFrame (sampled)", *timed(lambda: memory_view(shell), repeat))
    held = {h.name: h.nbytes for h in memory_view(shell).holders}
    real_list = sys.getsizeof(floats) + sum(sys.getsizeof(f) for f in floats)
    real_frame = int(frame.memory_usage(deep=True).sum())
    for name, listed, real in (("floats", held["floats"], real_list), ("frame", held["frame"], real_frame)):
        print(f"  {name}: listed {format_bytes(listed)}, real {format_bytes(real)} ({listed / real - 1:+.2%})")


if __name__ == "__main__":
    main()
