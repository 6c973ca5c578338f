"""The example notebooks do what their text says, so they never rot.

- kernel-lint reports exactly the finding each example is about, and nothing on the clean one;
- every notebook survives JupyterLab's *Run All*: run through nbclient the way JupyterLab runs it
  (every cell, `skip-execution` ignored, errors allowed only in cells tagged `raises-exception`) in a
  real kernel inside a 1 GiB memory cgroup when this machine allows it, the kernel neither dies nor
  hangs; each guarded cell raises the guard's error with the message the text shows, and the cells
  after it run in the same, living kernel;
- the unguarded code, shown as text under "Without the guard", really does what the captured run
  beside it says: it kills, crashes, floods or hangs a kernel (OOM and crash: cgroup only).
"""

from __future__ import annotations

import json
import os
import re
import signal
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
SKIP = "skip-execution"  # nbclient's and papermill's tag, which JupyterLab's Run All ignores: unused here
RAISES = "raises-exception"  # cells whose error does not stop Run All (JupyterLab, nbclient)
NEVER = "kg-no-cell-has-this-tag"  # Run All skips nothing
WITHOUT = "## Without the guard"  # the markdown cell showing the unguarded code and a captured run

# (cell number as on screen, code) per notebook, under --mem-budget 16G.
FINDINGS = {
    "00_start_here.ipynb": [],
    "01_huge_allocation.ipynb": [(4, "KG101")],
    "02_printing_loop.ipynb": [(4, "KG201"), (4, "KG601"), (7, "KG201")],
    "03_runaway_recursion.ipynb": [(8, "KG301")],
    "04_swallowed_interrupt.ipynb": [(5, "KG404")],
    "05_exit_and_kernel_killers.ipynb": [(5, "KG504"), (8, "KG501")],
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


def unguarded(name: str) -> list[str]:
    """The unguarded code the notebook shows as text: the ```python blocks of its "Without the guard" cell."""
    (cell,) = [cell for cell in read(name).cells if cell.cell_type == "markdown" and cell.source.startswith(WITHOUT)]
    return re.findall(r"^```python\n(.*?)^```$", cell.source, flags=re.DOTALL | re.MULTILINE)


@pytest.mark.parametrize("name", notebooks())
def test_example_is_stripped_and_safe_to_run_all(name):
    """No outputs in the repository; the extension is loaded before any %%guard; no cell that
    Run All must not run: the unguarded code is text, and no cell relies on `skip-execution`."""
    nb = read(name)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    assert code[0].source.startswith("%load_ext kernel_guard")
    assert not [cell for cell in nb.cells if SKIP in tags(cell)]
    for cell in code:
        if RAISES in tags(cell):
            assert cell.source.startswith("%%guard") or "SystemExit" in cell.source
    if name != "00_start_here.ipynb":
        assert unguarded(name) and nb.cells[-1].source.startswith(WITHOUT)
        (selected,) = re.findall(r"pytest tests/test_examples.py -k (\w+)`", nb.cells[-1].source)
        assert [test for test in globals() if test.startswith(f"test_{selected}")], selected  # what it says to run


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
def test_run_all_never_kills_or_hangs_the_kernel(name, tmp_path):
    """JupyterLab's Run All, in a 1 GiB memory cgroup when the machine allows it."""
    nb = read(name)
    kernel = NotebookKernel(tmp_path, f"example{name[:2]}")
    try:
        # Errors outside cells tagged raises-exception fail here (CellExecutionError), a dead kernel
        # too (DeadKernelError), and a cell running over 60 s (CellTimeoutError).
        NotebookClient(nb, km=kernel.km, timeout=60, startup_timeout=60, allow_errors=False,
                       skip_cells_with_tag=NEVER).execute(env=kernel.env, cwd=str(tmp_path))
        assert kernel.km.has_kernel and run_sync(kernel.km.is_alive)()
        assert kernel.cgroup is None or kernel.cgroup.oom_kills() == 0
    finally:
        kernel.close()

    ran = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in ran), "a cell did not run"

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


# -- the unguarded code does what the captured run beside it says -------------------------


def _run_up_to_unguarded(kernel: Kernel, name: str) -> list[str]:
    """Run the notebook's plain cells (not the guarded ones) and return the unguarded code."""
    for cell in read(name).cells:
        if cell.cell_type == "code" and not cell.source.startswith("%%guard"):
            kernel.execute(cell.source, timeout=60)  # some use what a guarded cell made: errors are fine
    return unguarded(name)


def _exit_status(kernel: Kernel) -> int | None:
    """The kernel process's exit status (negative: the signal that ended it), once it has ended."""
    deadline = time.monotonic() + 10
    while kernel.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    return kernel.km.provisioner.process.poll()


def test_unguarded_huge_allocation_is_killed_by_the_oom_killer():
    require_cgroup()
    with Kernel("example-oom", mem_limit="1G") as kernel:
        (code,) = _run_up_to_unguarded(kernel, "01_huge_allocation.ipynb")
        result = kernel.execute(code, timeout=60)
        assert result.died and not result.errors and not result.stdout
        assert _exit_status(kernel) == -signal.SIGKILL
        assert kernel.cgroup.oom_kills() == 1


def test_unguarded_printing_loop_floods_and_never_ends():
    with Kernel("example-flood") as kernel:
        (code,) = _run_up_to_unguarded(kernel, "02_printing_loop.ipynb")
        result = kernel.execute(code, timeout=3)
        assert result.status == "timeout" and result.stdout.startswith("still working 0\nstill working 1\n")
        assert len(result.stdout.splitlines()) > 10_000  # on a busy machine too; about 290,000 on an idle one
        kernel.km.interrupt_kernel()


def test_unguarded_deep_recursion_crashes_the_kernel():
    require_cgroup()
    with Kernel("example-segv", mem_limit="1G") as kernel:
        (code,) = _run_up_to_unguarded(kernel, "03_runaway_recursion.ipynb")
        result = kernel.execute(code, timeout=60)
        assert result.died and not result.errors
        assert _exit_status(kernel) == -signal.SIGSEGV
        assert kernel.cgroup.oom_kills() == 0  # a crash, not memory


def test_unguarded_retry_loop_cannot_be_interrupted():
    with Kernel("example-interrupt") as kernel:
        (code,) = _run_up_to_unguarded(kernel, "04_swallowed_interrupt.ipynb")
        result = kernel.execute(code, timeout=4, interrupt_after=1.5)
        assert result.status == "timeout" and kernel.is_alive()  # still looping after the interrupt
        assert result.stdout.count("failed, retrying") >= 6


def test_unguarded_exit_calls_end_the_kernel():
    with Kernel("example-exit") as kernel:
        exit_call, os_exit, sigint = _run_up_to_unguarded(kernel, "05_exit_and_kernel_killers.ipynb")
        assert kernel.execute(exit_call, timeout=10).payload == [{"source": "ask_exit", "keepkernel": False}]
        assert _exit_status(kernel) is not None
    with Kernel("example-os-exit") as kernel:
        _run_up_to_unguarded(kernel, "05_exit_and_kernel_killers.ipynb")
        assert kernel.execute(os_exit, timeout=10).died
        assert _exit_status(kernel) == 1
    with Kernel("example-sigint") as kernel:
        _run_up_to_unguarded(kernel, "05_exit_and_kernel_killers.ipynb")
        result = kernel.execute(f"import time\n{sigint}\nprint('slept')", timeout=30, interrupt_after=0.5)
        assert result.ok and result.stdout == "slept\n" and result.elapsed >= 3  # the interrupt did nothing


def test_readme_shows_what_kernel_lint_prints_for_the_examples(capsys, monkeypatch):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    console = r"^```console\n\$ kernel-lint --statistics examples/\n(.*?)^```$"
    (shown,) = re.findall(console, readme, flags=re.DOTALL | re.MULTILINE)
    (budget,) = set(re.findall(r"over the (\S+ GiB) budget", shown))  # the machine the README was made on
    monkeypatch.chdir(ROOT)
    code = main(["--statistics", "--no-cache", "-j", "1", "--mem-budget", budget.replace(" GiB", "G"), "examples/"])
    assert code == 1 and capsys.readouterr().out == shown
