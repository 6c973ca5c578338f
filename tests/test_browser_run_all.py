"""Run All in a real JupyterLab, as a person presses it, never kills or hangs a kernel.

For every example notebook: JupyterLab (and so its kernels) inside a 1 GiB memory cgroup when this
machine allows it, headless Chromium, the `notebook:run-all-cells` command. Then every code cell has
run (JupyterLab goes on past errors of cells tagged `raises-exception`), no other cell has an error,
and the kernel never left the living states (no "dead", "restarting" or "autorestarting").
Opt-in, with the same switches and needs as tests/test_browser.py (KG_BROWSER_TEST=1, KG_BROWSER_VENV
with JupyterLab and kernel_guard, KG_CHROMIUM); tests/test_examples.py checks the same through nbclient
in every run.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from kernel_harness import MemoryCgroup, cgroup_unavailable
from test_browser import NOTEBOOK_READY, PANEL, Chromium, JupyterLab, _missing

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(path.name for path in (ROOT / "examples").glob("*.ipynb"))

pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")

HANG = 240  # seconds: Run All of an example takes under 30

# Watch the kernel's status from before Run All on, then run every cell and report what each shows.
RUN_ALL = """(async () => {
  const panel = %s;
  const kernel = panel.sessionContext.session.kernel;
  const states = [];
  kernel.statusChanged.connect((_, status) => states.push(status));
  jupyterapp.shell.activateById(panel.id);
  // The command sends every cell at once and settles at the first error; the kernel goes on with the
  // queue (past cells tagged raises-exception): wait until no cell is queued or running.
  await jupyterapp.commands.execute('notebook:run-all-cells').catch(() => null);
  const code = panel.content.widgets.filter(c => c.model.type === 'code');
  const busy = () => panel.sessionContext.session.kernel.status !== 'idle'
    || code.some(c => c.model.executionState === 'running');
  const died = () => states.some(s => ['dead', 'restarting', 'autorestarting'].includes(s));
  const deadline = Date.now() + %d * 1000;
  for (let quiet = 0; quiet < 4 && !died() && Date.now() < deadline; quiet = busy() ? 0 : quiet + 1) {
    await new Promise(resolve => setTimeout(resolve, 500));
  }
  const cells = code.map(c => ({
    count: c.model.executionCount,
    tags: c.model.getMetadata('tags') || [],
    errors: c.model.outputs.toJSON().filter(o => o.output_type === 'error').map(o => o.ename),
  }));
  return {states, cells, status: panel.sessionContext.session.kernel.status, hung: busy() && !died()};
})()""" % (PANEL, HANG)


@pytest.mark.parametrize("notebook", EXAMPLES)
def test_run_all_in_jupyterlab_keeps_the_kernel(notebook, tmp_path):
    root = tmp_path / "notebooks"
    shutil.copytree(ROOT / "examples", root)
    cgroup = MemoryCgroup(f"runall{notebook[:2]}", 1 << 30) if cgroup_unavailable() is None else None
    lab = chromium = None
    try:
        lab = JupyterLab(tmp_path, root)
        if cgroup is not None:  # before any kernel starts: they are its children, charged here too
            cgroup.procs_file.write_text(str(lab.process.pid))
        chromium = Chromium(tmp_path)

        async def drive():
            await chromium.connect()
            await chromium.send("Page.enable")
            await chromium.send("Page.navigate", url=lab.url(notebook))
            name = json.dumps(notebook)
            await chromium.until(NOTEBOOK_READY % (name,), 90, f"{notebook} with an idle kernel")
            return await chromium.js(RUN_ALL % (name,), timeout=HANG + 60)

        result = asyncio.run(asyncio.wait_for(drive(), 420))
        oom_kills = cgroup.oom_kills() if cgroup is not None else 0
    finally:
        if chromium is not None:
            chromium.close()
        if lab is not None:
            lab.close()
        if cgroup is not None:
            cgroup.remove()

    assert not {"dead", "restarting", "autorestarting"} & set(result["states"]), result["states"]
    assert not result["hung"], f"a cell still running after {HANG} s"
    assert result["status"] == "idle" and oom_kills == 0
    assert all(cell["count"] is not None for cell in result["cells"]), json.dumps(result["cells"])
    for cell in result["cells"]:
        assert not cell["errors"] or "raises-exception" in cell["tags"], cell
