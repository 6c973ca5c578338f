"""kernel-lint against the linters people already run on notebooks, same files, same machine.

    .venv/bin/python benchmarks/bench_lint.py [PATH] [--runs 5] [--slow-runs 1] [--peers /work/bench-venv]

PATH (default /work/shared/corpus) is a notebook or a directory.  Timed, end to
end as a user runs them (process start-up included), alternating so that drift
on a shared machine hits every tool alike:

* ``kernel-lint --no-cache`` (cold: every file linted), with the default ``-j``
  (all cores) and with ``-j 1``;
* ``kernel-lint`` with a primed cache (warm: nothing changed since the last run);
* ``ruff check --no-cache --isolated --select ALL`` (notebooks included);
* ``nbqa flake8`` and ``nbqa pylint`` (pylint is slow: ``--slow-runs`` runs).

Then the same for one notebook of about 50 code cells (``--notebook``; default:
the notebook under PATH whose code-cell count is closest to 50).  The peers are
looked up in ``--peers`` (a virtualenv holding ruff, nbqa, flake8, pylint; keep
them out of the project's venv), then on PATH; a peer that is absent is skipped
and said so.  Output: a markdown table of medians (min-max) and ratios.

Every tool runs with the same environment: bytecode is written to a private
``PYTHONPYCACHEPREFIX`` and one untimed run of each command comes first, so no
tool pays for compiling its own source.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_PATH = "/work/shared/corpus"
DEFAULT_PEERS = "/work/bench-venv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path", nargs="?", default=DEFAULT_PATH, help=f"notebooks to lint (default {DEFAULT_PATH})")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each fast command (default 5)")
    parser.add_argument("--slow-runs", type=int, default=1, help="timed runs of nbqa pylint on PATH (default 1)")
    parser.add_argument(
        "--peers", default=DEFAULT_PEERS, help=f"virtualenv with ruff, nbqa, flake8, pylint (default {DEFAULT_PEERS})"
    )
    parser.add_argument("--notebook", help="the ~50-cell notebook for the single-notebook timing")
    parser.add_argument("--skip-pylint", action="store_true", help="leave nbqa pylint out (minutes on a large corpus)")
    args = parser.parse_args()

    target = Path(args.path)
    if not target.exists():
        parser.error(f"{target}: no such file or directory")
    notebook = Path(args.notebook) if args.notebook else _closest_to_50_cells(target)
    work = Path(tempfile.mkdtemp(prefix="bench-lint-"))
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(work / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    tools, absent = _tools(Path(args.peers))
    try:
        print(_header(tools, target, notebook, absent))
        rows = _measure(target, tools, work, env, args.runs, args.slow_runs, args.skip_pylint)
        print(_table(f"All notebooks under `{target}`", rows))
        if notebook is not None:
            print(f"\nOne notebook: `{notebook}` ({_code_cells(notebook)} code cells)\n")
            print(_table(None, _measure(notebook, tools, work, env, args.runs, args.runs, args.skip_pylint)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(_before_a_guarded_cell(args.runs * 40))
    return 0


# Two 50-line cells: ordinary numpy work, and a torch model whose `MaxPool2d` text
# once sent it through a libcst stage (KG507's trigger; analysis is all ``ast`` now).
ORDINARY_CELL = "\n".join(
    ["import numpy as np", "rng = np.random.default_rng(0)", "n = 1_000"]
    + [line for i in range(9) for line in (
        f"a{i} = rng.normal(size=(n, {i + 2}))",
        f"m{i} = a{i}.mean(axis=0)",
        f"s{i} = (a{i} - m{i}) / a{i}.std(axis=0)",
        f"for k in range({i + 1}):",
        f"    s{i} = s{i} * 0.5 + k",
    )]
    + ["total = sum(float(x.sum()) for x in (s0, s1, s2))", "print(total)"]
)
MODEL_CELL = "\n".join(
    ["import torch", "from torch import nn", "", "class Net(nn.Module):", "    def __init__(self, classes=10):",
     "        super().__init__()", "        self.features = nn.Sequential("]
    + [f"            nn.Conv2d({2 ** min(i + 4, 9)}, {2 ** min(i + 5, 9)}, 3, padding=1), nn.ReLU(),"
       + (" nn.MaxPool2d(2)," if i % 2 else "") for i in range(30)]
    + ["        )", "        self.head = nn.Linear(512, classes)", "", "    def forward(self, x):",
       "        x = self.features(x)", "        x = torch.flatten(x, 1)", "        return self.head(x)", "",
       "model = Net()", "optimizer = torch.optim.SGD(model.parameters(), lr=0.01)", "print(model)"]
)


def _before_a_guarded_cell(repeat: int) -> str:
    """What %%guard adds before a 50-line cell runs: the lint (as the guard runs it,
    without KG0/KG1, whose findings the estimate gives) and estimate(), in process."""
    import kernel_guard

    lines = ["\nBefore a guarded cell, in process: `lint_source(cell, ignore=(\"KG0\", \"KG1\"))` + `estimate(cell)`\n",
             "| cell | lines | lint ms, median | estimate ms, median | together |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for name, cell in (("ordinary numpy", ORDINARY_CELL), ("torch model (`MaxPool2d`)", MODEL_CELL)):
        kernel_guard.lint_source(cell, ignore=("KG0", "KG1"))  # imports, first-use costs
        kernel_guard.estimate(cell)
        lint, estimate = [], []
        for _ in range(repeat):
            start = time.perf_counter()
            kernel_guard.lint_source(cell, ignore=("KG0", "KG1"))
            middle = time.perf_counter()
            kernel_guard.estimate(cell)
            lint.append(middle - start)
            estimate.append(time.perf_counter() - middle)
        lint_ms, estimate_ms = 1000 * statistics.median(lint), 1000 * statistics.median(estimate)
        together = lint_ms + estimate_ms
        lines.append(f"| {name} | {cell.count(chr(10)) + 1} | {lint_ms:.2f} | {estimate_ms:.2f} | {together:.2f} |")
    return "\n".join(lines)


def _tools(peers: Path) -> tuple[dict[str, list[str]], list[str]]:
    """Command prefixes of the tools present; the names of those absent."""
    here = Path(sys.executable).parent

    def find(name: str, *extra: Path) -> str | None:
        for folder in (*extra, here):
            if (folder / name).exists():
                return str(folder / name)
        return shutil.which(name)

    tools: dict[str, list[str]] = {}
    absent = []
    kernel_lint = find("kernel-lint")
    if kernel_lint is None:
        sys.exit("kernel-lint is not installed here: pip install -e . first")
    tools["kernel-lint"] = [kernel_lint]
    peer_bin = peers / "bin"
    ruff = find("ruff", peer_bin)
    nbqa = find("nbqa", peer_bin)
    if ruff:
        tools["ruff"] = [ruff]
    else:
        absent.append("ruff")
    for checker in ("flake8", "pylint"):
        if nbqa and (Path(nbqa).parent / checker).exists():  # nbqa runs `python -m checker` in its own venv
            tools[f"nbqa {checker}"] = [nbqa, checker]
        else:
            absent.append(f"nbqa {checker}")
    return tools, absent


def _commands(target: Path, tools: dict[str, list[str]], cache: Path, skip_pylint: bool) -> list[tuple[str, list[str]]]:
    kernel_lint = tools["kernel-lint"]
    commands = [
        ("kernel-lint cold (--no-cache, all cores)", [*kernel_lint, "--no-cache", "--exit-zero", str(target)]),
        ("kernel-lint cold, -j 1", [*kernel_lint, "--no-cache", "--exit-zero", "-j", "1", str(target)]),
        ("kernel-lint warm (cache primed)", [*kernel_lint, "--cache-dir", str(cache), "--exit-zero", str(target)]),
    ]
    if "ruff" in tools:
        ruff = [*tools["ruff"], "check", "--no-cache", "--isolated", "--select", "ALL", "--exit-zero", "--quiet"]
        commands.append(("ruff check --no-cache --select ALL", [*ruff, str(target)]))
    if "nbqa flake8" in tools:
        commands.append(("nbqa flake8", [*tools["nbqa flake8"], str(target)]))
    if "nbqa pylint" in tools and not skip_pylint:
        commands.append(("nbqa pylint", [*tools["nbqa pylint"], str(target)]))
    return commands


def _measure(target, tools, work, env, runs, slow_runs, skip_pylint) -> list[tuple[str, list[tuple[float, float]]]]:
    cache = work / f"cache-{target.name}"
    commands = _commands(target, tools, cache, skip_pylint)
    for _, command in commands:  # untimed: bytecode compiled, cache primed, files in the page cache
        _run(command, env)
    times: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in commands}
    for _ in range(max(runs, slow_runs)):
        for label, command in commands:
            if len(times[label]) < (slow_runs if "pylint" in label else runs):
                times[label].append(_run(command, env))
    return [(label, times[label]) for label, _ in commands]


def _run(command: list[str], env: dict) -> tuple[float, float]:
    """Wall seconds, and CPU seconds (user + system, all processes of the run):
    the CPU figure is what other work on a shared machine inflates least."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    # Exit codes mean "findings" or "some notebook could not be read" (nbqa: 123) for
    # every tool here; a crash shows as a signal or a traceback.
    if done.returncode < 0 or b"Traceback (most recent call last)" in done.stderr:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr.decode(errors='replace')[-2000:]}")
    return elapsed, cpu


def _table(title: str | None, rows: list[tuple[str, list[tuple[float, float]]]]) -> str:
    medians = {label: statistics.median(wall for wall, _ in times) for label, times in rows}
    cold = medians[rows[0][0]]
    ruff = next((m for label, m in medians.items() if label.startswith("ruff")), None)
    lines = [f"\n{title}\n" if title else ""]
    lines.append("| command | runs | wall s, median | min-max | CPU s, median | ÷ kernel-lint cold | ÷ ruff |")
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, times in rows:
        median = medians[label]
        walls = [wall for wall, _ in times]
        cpu = statistics.median(cpu for _, cpu in times)
        ratio_ruff = f"{median / ruff:.2f}×" if ruff else "n/a"
        lines.append(
            f"| {label} | {len(times)} | {median:.3f} | {min(walls):.3f}-{max(walls):.3f} | {cpu:.3f} "
            f"| {median / cold:.2f}× | {ratio_ruff} |"
        )
    return "\n".join(lines)


def _header(tools, target, notebook, absent) -> str:
    versions = {name: _version(command) for name, command in tools.items()}
    lines = [
        f"# kernel-lint benchmark, {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        "",
        f"- machine: {_cpu()}, {os.cpu_count()} cores, {_ram()} RAM, {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}; " + "; ".join(f"{name} {v}" for name, v in versions.items()),
        f"- load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- corpus: `{target}` ({_count(target)})",
    ]
    if absent:
        lines.append(f"- skipped (not installed): {', '.join(absent)}")
    return "\n".join(lines)


def _version(command: list[str]) -> str:
    # nbqa runs the checker installed next to it: report that checker's version
    probe = [str(Path(command[0]).parent / command[1]) if len(command) > 1 else command[0], "--version"]
    done = subprocess.run(probe, capture_output=True, text=True)
    found = re.search(r"\d+\.\d+(\.\d+)?", done.stdout + done.stderr)
    return found.group() if found else "?"


def _notebooks(target: Path):
    return [target] if target.is_file() else sorted(target.rglob("*.ipynb"))


def _count(target: Path) -> str:
    notebooks = _notebooks(target)
    cells = sum(_code_cells(nb) or 0 for nb in notebooks)
    size = sum(nb.stat().st_size for nb in notebooks) / 2**20
    return f"{len(notebooks)} notebooks, {cells} code cells, {size:.1f} MiB"


def _code_cells(notebook: Path) -> int | None:
    try:
        data = json.loads(notebook.read_bytes())
        cells = data.get("cells") or [cell for sheet in data.get("worksheets", []) for cell in sheet.get("cells", [])]
        return sum(1 for cell in cells if cell.get("cell_type") == "code")
    except (ValueError, AttributeError, OSError):
        return None


def _closest_to_50_cells(target: Path) -> Path | None:
    """The Python notebook whose code-cell count is closest to 50."""
    counted = [(abs((_code_cells(nb) or -1000) - 50), str(nb)) for nb in _notebooks(target) if _is_python(nb)]
    return Path(min(counted)[1]) if counted else None


def _is_python(notebook: Path) -> bool:
    try:
        metadata = json.loads(notebook.read_bytes()).get("metadata") or {}
    except (ValueError, OSError):
        return False
    language = (metadata.get("language_info") or {}).get("name") or (metadata.get("kernelspec") or {}).get("language")
    return str(language or "python").lower().startswith("python")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _ram() -> str:
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return f"{pages / 2**30:.1f} GiB"
    except (ValueError, OSError):
        return "?"


if __name__ == "__main__":
    sys.exit(main())
