"""The example notebooks do what their text says, so they never rot.

- kernel-lint reports exactly the finding each example is about, and nothing on the clean one;
- every guarded notebook runs top to bottom through nbclient in a real kernel (inside a
  1 GiB memory cgroup when this machine allows it, else under the guard's own caps): each
  guarded cell raises the guard's error with the message the text shows, and the cells after
  it run in the same, living kernel;
- the unguarded cells (tagged ``skip-execution``) really kill or hang a kernel (cgroup only).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from kernel_harness import Kernel, MemoryCgroup, cgroup_unavailable, require_cgroup, strip_ansi
from nbclient import NotebookClient

from kernel_guard.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SKIP = "skip-execution"  # nbclient's own tag: the unguarded cells
RAISES = "raises-exception"  # nbclient's own tag: the guarded cells that stop

# (cell number as on screen, code) per notebook, under --mem-budget 16G.
FINDINGS = {
    "00_start_here.ipynb": [],
    "01_huge_allocation.ipynb": [(4, "KG101")],
    "02_printing_loop.ipynb": [(4, "KG201"), (4, "KG601"), (7, "KG201"), (14, "KG201"), (14, "KG601")],
    "03_runaway_recursion.ipynb": [(8, "KG301"), (15, "KG304")],
    "04_swallowed_interrupt.ipynb": [(5, "KG404"), (12, "KG404")],
    "05_exit_and_kernel_killers.ipynb": [(5, "KG504"), (8, "KG501"), (15, "KG504"), (16, "KG501"), (17, "KG505")],
}

# For each cell tagged raises-exception, in order: the error's name and words the user reads.
ERRORS = {
    "00_start_here.ipynb": [],
    "01_huge_allocation.ipynb": [
        ("GuardRefused", "`np.random.rand(100000, 100000)` allocates 74.5 GiB"),
        ("GuardRefused", "`np.random.rand(n, n)` allocates 6.7 GiB"),
        ("GuardMemoryError", "500.0 MiB"),
    ],
    "02_printing_loop.ipynb": [
        ("GuardOutputLimit", "GuardOutputLimit: the cell printed 10.0 KiB ("),
        ("GuardTimeout", "3 s timeout"),
    ],
    "03_runaway_recursion.ipynb": [
        ("RecursionError", "frames in between not shown by kernel_guard"),
        ("RecursionError", "KG301"),
    ],
    "04_swallowed_interrupt.ipynb": [("GuardTimeout", "KG404")],
    "05_exit_and_kernel_killers.ipynb": [
        ("GuardRefused", "KG504"),
        ("GuardRefused", "KG501"),
        ("SystemExit", "not enough data: 2 rows"),
    ],
}

# What the cells after the guarded ones print: the kernel and its variables survived.
AFTER = {
    "00_start_here.ipynb": "nan 2.0",
    "01_huge_allocation.ipynb": "steps were kept before the cap",
    "02_printing_loop.ipynb": "done after 1000 steps",
    "03_runaway_recursion.ipynb": "50001",
    "04_swallowed_interrupt.ipynb": "giving up",
    "05_exit_and_kernel_killers.ipynb": "['id,value', '1,0.5']",
}


def notebooks() -> list[str]:
    return sorted(path.name for path in EXAMPLES.glob("*.ipynb"))


def read(name: str):
    return nbformat.read(EXAMPLES / name, as_version=4)


def tags(cell) -> list[str]:
    return cell.metadata.get("tags", [])


def cell_text(cell) -> str:
    """Everything a cell shows: streams, plain-text displays, tracebacks (ANSI stripped)."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "error":
            parts.append(strip_ansi("\n".join(output.traceback)))
        else:
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_every_example_is_listed_here():
    assert notebooks() == sorted(FINDINGS) == sorted(ERRORS) == sorted(AFTER)


@pytest.mark.parametrize("name", notebooks())
def test_example_is_stripped_and_safe_to_run_all(name):
    """No outputs in the repository; the extension is loaded before any %%guard; every
    unguarded cell comes after a guarded one that raises, so that *Run All* stops first."""
    nb = read(name)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    assert code[0].source.startswith("%load_ext kernel_guard")
    first_skipped = next((i for i, cell in enumerate(code) if SKIP in tags(cell)), len(code))
    raising = [i for i, cell in enumerate(code) if RAISES in tags(cell)]
    assert not raising or raising[0] < first_skipped
    for cell in code:
        if RAISES in tags(cell):
            assert cell.source.startswith("%%guard") or "SystemExit" in cell.source


def test_kernel_lint_reports_what_each_example_is_about(capsys):
    code = main(["--format", "json", "--mem-budget", "16G", "--no-cache", "-j", "1", str(EXAMPLES)])
    findings = json.loads(capsys.readouterr().out)
    assert code == 1
    found = {name: [] for name in FINDINGS}
    for finding in findings:
        found[Path(finding["path"]).name].append((finding["cell"], finding["code"]))
    assert {name: sorted(pairs) for name, pairs in found.items()} == FINDINGS


# -- running the notebooks -------------------------------------------------------------


class NotebookKernel:
    """An AsyncKernelManager for nbclient (which needs one to notice a dead kernel),
    its kernel joining a fresh 1 GiB memory cgroup first when this machine allows it."""

    def __init__(self, tmp: Path, purpose: str):
        self.cgroup = None
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        if cgroup_unavailable() is None:
            self.cgroup = MemoryCgroup(purpose, 1 << 30)
            argv = ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.cgroup.procs_file), *argv]
        spec = tmp / "kernels" / "kgexample"
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "kg", "language": "python"}))
        self.km = AsyncKernelManager(
            kernel_name="kgexample", transport="ipc", ip=str(tmp / "ipc"),
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec.parent)], ensure_native_kernel=False),
        )
        self.env = dict(os.environ, IPYTHONDIR=str(tmp / "ipython"), XDG_STATE_HOME=str(tmp / "state"),
                        PYDEVD_DISABLE_FILE_VALIDATION="1")

    def close(self) -> None:
        try:
            if self.km.has_kernel:
                run_sync(self.km.shutdown_kernel)(now=True)
        finally:
            if self.cgroup is not None:
                self.cgroup.remove()


@pytest.mark.parametrize("name", notebooks())
def test_guarded_example_runs_and_the_kernel_survives(name, tmp_path):
    nb = read(name)
    kernel = NotebookKernel(tmp_path, f"example{name[:2]}")
    try:
        # Errors outside cells tagged raises-exception fail here (CellExecutionError),
        # and so does a dead kernel (DeadKernelError).
        NotebookClient(nb, km=kernel.km, timeout=60, startup_timeout=60).execute(env=kernel.env, cwd=str(tmp_path))
        assert kernel.km.has_kernel and run_sync(kernel.km.is_alive)()
    finally:
        kernel.close()

    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    ran = [cell for cell in code if SKIP not in tags(cell)]
    assert all(cell.execution_count is not None for cell in ran), "a cell did not run"
    assert all(cell.execution_count is None for cell in code if SKIP in tags(cell))

    raised = [cell for cell in ran if RAISES in tags(cell)]
    assert len(raised) == len(ERRORS[name])
    for cell, (ename, words) in zip(raised, ERRORS[name], strict=True):
        errors = [output for output in cell.outputs if output.output_type == "error"]
        assert [error.ename for error in errors] == [ename], cell_text(cell)
        assert words in cell_text(cell)
        if ename == "GuardRefused":  # the message alone, no traceback
            assert "Traceback" not in cell_text(cell)
    first = ran.index(raised[0]) if raised else -1
    assert AFTER[name] in "\n".join(cell_text(cell) for cell in ran[first + 1:] if RAISES not in tags(cell))


# -- the unguarded cells do what the text says ------------------------------------------


def _run_up_to_unguarded(kernel: Kernel, name: str) -> list[str]:
    """Run the notebook's plain cells (not the guarded ones) and return the unguarded sources."""
    cells = [cell for cell in read(name).cells if cell.cell_type == "code"]
    for cell in cells:
        if SKIP not in tags(cell) and not cell.source.startswith("%%guard"):
            kernel.execute(cell.source, timeout=60)  # some use what a guarded cell made: errors are fine
    return [cell.source for cell in cells if SKIP in tags(cell)]


def test_unguarded_huge_allocation_is_killed_by_the_oom_killer():
    require_cgroup()
    with Kernel("example-oom", mem_limit="1G") as kernel:
        (unguarded,) = _run_up_to_unguarded(kernel, "01_huge_allocation.ipynb")
        assert kernel.execute(unguarded, timeout=60).died
        assert kernel.cgroup.oom_kills() >= 1


def test_unguarded_deep_recursion_crashes_the_kernel():
    require_cgroup()
    with Kernel("example-segv", mem_limit="1G") as kernel:
        (unguarded,) = _run_up_to_unguarded(kernel, "03_runaway_recursion.ipynb")
        assert kernel.execute(unguarded, timeout=60).died
        assert kernel.cgroup.oom_kills() == 0  # a crash, not memory


def test_unguarded_retry_loop_cannot_be_interrupted():
    with Kernel("example-interrupt") as kernel:
        (unguarded,) = _run_up_to_unguarded(kernel, "04_swallowed_interrupt.ipynb")
        result = kernel.execute(unguarded, timeout=4, interrupt_after=1.5)
        assert result.status == "timeout" and kernel.is_alive()  # still looping after the interrupt
        assert result.stdout.count("failed, retrying") >= 6


def test_unguarded_exit_ends_the_kernel():
    with Kernel("example-exit") as kernel:
        exit_cell = _run_up_to_unguarded(kernel, "05_exit_and_kernel_killers.ipynb")[0]
        assert exit_cell.startswith("exit()")
        assert kernel.execute(exit_cell, timeout=10).payload == [{"source": "ask_exit", "keepkernel": False}]
        deadline = time.monotonic() + 10
        while kernel.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not kernel.is_alive()
