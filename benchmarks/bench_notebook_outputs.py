"""How large a notebook's saved outputs can be before opening it freezes JupyterLab.

    .venv/bin/python benchmarks/bench_notebook_outputs.py [--sizes 1,5,10,20,40] [--cap 1G]

Writes notebooks of at least 10 code cells whose saved outputs total SIZE MB, of two
kinds: ``text`` (one cell's stream output, as a print loop leaves it) and
``images`` (120 KB PNG outputs, as a plotting loop leaves them, 40 per cell), opens each in a
real JupyterLab in headless Chromium (the browser test's harness: ``KG_BROWSER_VENV`` with
JupyterLab, ``KG_CHROMIUM``)
and reports, per notebook: seconds until every cell is rendered, the longest
time the page did not answer (its main thread blocked: the tab is frozen), and
the page's JavaScript heap.  JupyterLab and Chromium run in a cgroup v1 memory
cgroup of ``--cap`` bytes (root needed): a tab killed there is reported as such.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

CELLS = 10
IMAGES_PER_CELL = 40  # under JupyterLab's maxNumberOutputs (50), past which a cell shows a "show more" link
TIMEOUT = 120.0
PANEL = "Array.from(jupyterapp.shell.widgets('main')).find(w => w.context && w.context.path === %s)"
RENDERED = """(() => {
  const w = window.jupyterapp && %s;
  if (!w || !w.context.isReady) return -1;
  return w.content.node.querySelectorAll('.jp-OutputArea-output').length;
})()"""


def _png(width: int, height: int) -> bytes:
    """An incompressible RGB PNG (noise), as a plot with many points roughly is."""
    rows = b"".join(b"\x00" + os.urandom(width * 3) for _ in range(height))
    random = zlib.compress(rows, 1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", random) + chunk(b"IEND", b"")


def notebook(kind: str, megabytes: float) -> tuple[dict, int]:
    """A notebook with about ``megabytes`` MB of saved outputs, and its output count."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    total = int(megabytes * 1e6)
    png = base64.b64encode(_png(300, 100)).decode()  # 120 KB of base64
    images = max(1, total // len(png))
    outputs = 0
    for index in range(max(CELLS, -(-images // IMAGES_PER_CELL))):
        cell = nbformat.v4.new_code_cell(f"for i in range(N):\n    show(i)  # cell {index}")
        if kind == "text" and index == 0:
            line = "step {:>9}: loss 0.123456 accuracy 0.987654 " + "." * 50 + "\n"
            text = "".join(line.format(i) for i in range(total // len(line.format(0))))
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
        elif kind == "images":
            count = min(IMAGES_PER_CELL, images - outputs)
            cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"})
                            for _ in range(count)]
        outputs += len(cell.outputs)
        nb.cells.append(cell)
    return nb, outputs


async def measure(chromium, lab, name: str, outputs: int) -> dict:
    """Open ``name``; poll the page every 0.1 s until all outputs are rendered."""
    panel = PANEL % json.dumps(name)
    kills = _oom_kills()
    await chromium.send("Page.navigate", url=lab.url(name))
    start = last = time.monotonic()
    longest = 0.0
    rendered = -1
    while time.monotonic() - start < TIMEOUT:
        try:
            rendered = await asyncio.wait_for(chromium.js(RENDERED % panel, timeout=TIMEOUT), 5)
        except RuntimeError:
            rendered = -1  # the page is between documents
        except TimeoutError:
            if _oom_kills() > kills:
                return {"killed_by_cap": True, "seconds": round(time.monotonic() - start, 1)}
            continue  # blocked: ask again
        now = time.monotonic()
        longest = max(longest, now - last)
        last = now
        if rendered >= outputs:
            break
        await asyncio.sleep(0.1)
    heap = {m["name"]: m["value"] for m in (await chromium.send("Performance.getMetrics"))["metrics"]}
    return {"seconds": round(time.monotonic() - start, 1), "longest_block": round(longest, 1),
            "rendered": rendered, "outputs": outputs, "heap_mb": round(heap.get("JSHeapUsedSize", 0) / 1e6)}


def run(sizes: list[float], root: Path) -> list[dict]:
    """Each notebook opened in a fresh Chromium (a tab the cap killed leaves nothing behind)."""
    import nbformat
    from test_browser import Chromium, JupyterLab

    notebooks = {}
    for kind in ("text", "images"):
        for size in sizes:
            name = f"{kind}_{size:g}MB.ipynb"
            nb, outputs = notebook(kind, size)
            nbformat.write(nb, root / name)
            notebooks[name] = (kind, outputs, (root / name).stat().st_size)
    lab = JupyterLab(root.parent, root)
    results = []
    try:
        for index, (name, (kind, outputs, nbytes)) in enumerate(notebooks.items()):
            kills = _oom_kills()
            profile = root.parent / f"browser-{index}"  # a fresh profile: no stale DevToolsActivePort
            profile.mkdir()
            chromium = Chromium(profile)
            try:
                found = asyncio.run(asyncio.wait_for(_open(chromium, lab, name, outputs), TIMEOUT + 30))
            except (TimeoutError, RuntimeError) as exc:
                found = {"error": f"{type(exc).__name__} {exc}"[:80]}
            finally:
                chromium.close()
            if _oom_kills() > kills:
                found["killed_by_cap"] = True
            results.append({"notebook": name, "kind": kind, "file_mb": round(nbytes / 1e6, 1), **found})
            print(json.dumps(results[-1]), flush=True)
    finally:
        lab.close()
    return results


async def _open(chromium, lab, name: str, outputs: int) -> dict:
    await chromium.connect()
    await chromium.send("Page.enable")
    await chromium.send("Performance.enable")
    return await measure(chromium, lab, name, outputs)


def _oom_kills() -> int:
    """Processes the memory cgroup this process is in has killed so far."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.strip().split(":", 2)
            if "memory" in controllers.split(","):
                return _killed(Path("/sys/fs/cgroup/memory", path.lstrip("/")))
    return 0


def _killed(cgroup: Path) -> int:
    found = re.search(r"^oom_kill (\d+)", (cgroup / "memory.oom_control").read_text(), re.MULTILINE)
    return int(found.group(1)) if found else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,5,10,20,40", help="output sizes in MB, comma-separated")
    parser.add_argument("--cap", default="1G", help="memory cap of the cgroup JupyterLab and Chromium run in")
    parser.add_argument("--inner", help=argparse.SUPPRESS)
    parser.add_argument("--cgroup", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [float(s) for s in args.sizes.split(",")]
    if args.inner:
        from kgtest_cgroup import add_process

        add_process(args.cgroup, os.getpid())  # first: all it starts is capped too
        run(sizes, Path(args.inner))
        return
    from kgtest_cgroup import memory_cgroup

    from kernel_guard.sizes import parse_size

    with tempfile.TemporaryDirectory() as tmp, memory_cgroup("outputs-bench", parse_size(args.cap)) as cgroup:
        root = Path(tmp, "notebooks")
        root.mkdir()
        subprocess.run([sys.executable, __file__, "--sizes", args.sizes, "--inner", str(root), "--cgroup", cgroup],
                       check=False)
        with open(os.path.join(cgroup, "memory.max_usage_in_bytes")) as f:
            print(f"peak memory of JupyterLab + Chromium: {int(f.read()) / 2**20:.0f} MiB (cap {args.cap})")
        print(f"processes killed at the cap: {_killed(Path(cgroup))}")


if __name__ == "__main__":
    main()
