"""The guard's messages as a person sees them: JupyterLab in headless Chromium.

Opens two example notebooks in a real JupyterLab, runs a refused cell and a timed-out
cell through the UI's own run command, and checks the rendered outputs: the coloured
kernel_guard box (HTML, not its plain-text fallback), the error line, no traceback for a
refusal, and a kernel still alive. Opt in with ``KG_BROWSER_TEST=1`` (it takes half a
minute and a browser, so CI leaves it out); it needs JupyterLab and Chromium:
JupyterLab in a separate virtualenv (``KG_BROWSER_VENV``, default /work/browser-venv,
with kernel_guard installed in it) and Chromium at ``KG_CHROMIUM`` (default
/usr/bin/chromium). Set ``KG_SCREENSHOTS=DIR`` to keep the screenshots for a look.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("KG_BROWSER_VENV", "/work/browser-venv"))
CHROMIUM = Path(os.environ.get("KG_CHROMIUM", "/usr/bin/chromium"))
JUPYTER = VENV / "bin" / "jupyter"

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
    "--window-size=1280,1400", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
]


def _missing() -> str | None:
    if os.environ.get("KG_BROWSER_TEST") != "1":
        return "browser check is opt-in: set KG_BROWSER_TEST=1 (needs JupyterLab and Chromium)"
    if not (VENV / "bin" / "jupyter-lab").exists():
        return f"no JupyterLab in {VENV} (set KG_BROWSER_VENV to a virtualenv with jupyterlab and kernel_guard)"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set KG_CHROMIUM)"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read()


def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}")


def _stop(process: subprocess.Popen) -> None:
    """End a process we started, by its PID, and the group it leads."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


class JupyterLab:
    """``jupyter lab`` on 127.0.0.1 with a token, its config and state in ``tmp``."""

    def __init__(self, tmp: Path, root: Path):
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_DATA_DIR=str(tmp / "data"),
                   JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), IPYTHONDIR=str(tmp / "ipython"),
                   XDG_STATE_HOME=str(tmp / "state"), JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
                   PATH=f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}")
        env.pop("VIRTUAL_ENV", None)
        news = tmp / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        news.parent.mkdir(parents=True, exist_ok=True)
        news.write_text('{"fetchNews": "false"}')  # no pop-up asking about Jupyter news
        env["JUPYTERLAB_SETTINGS_DIR"] = str(tmp / "settings")
        log = tmp / "jupyterlab.log"
        self.log = open(log, "w")
        self.process = subprocess.Popen(
            [str(JUPYTER), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
             "--LabApp.expose_app_in_browser=True", "--ServerApp.port_retries=0",
             *(["--allow-root"] if os.geteuid() == 0 else [])],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

        def ready():
            if self.process.poll() is not None:
                raise RuntimeError("JupyterLab exited:\n" + "".join(log.read_text().splitlines(True)[-10:]))
            return _get(f"http://127.0.0.1:{self.port}/api/status?token={self.token}")

        try:
            _wait(ready, 60, "JupyterLab")
        except BaseException:
            self.close()
            raise

    def url(self, notebook: str) -> str:
        return f"http://127.0.0.1:{self.port}/lab/tree/{notebook}?token={self.token}&reset"

    def close(self) -> None:
        _stop(self.process)
        self.log.close()


class Chromium:
    """Headless Chromium driven over the DevTools protocol (one page)."""

    def __init__(self, tmp: Path):
        profile = tmp / "chromium"
        self.process = subprocess.Popen(
            [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        port_file = profile / "DevToolsActivePort"
        port = _wait(lambda: port_file.exists() and port_file.read_text().split("\n")[0], 30, "Chromium")
        pages = _wait(lambda: [t for t in json.loads(_get(f"http://127.0.0.1:{port}/json/list"))
                               if t["type"] == "page"], 30, "a Chromium page")
        self.ws_url = pages[0]["webSocketDebuggerUrl"]
        self._ws = None
        self._id = 0

    async def connect(self) -> None:
        from tornado.websocket import websocket_connect

        self._ws = await websocket_connect(self.ws_url, max_message_size=64 << 20)

    async def send(self, method: str, **params):
        self._id += 1
        await self._ws.write_message(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:  # events are not needed: skip them
            message = json.loads(await self._ws.read_message())
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    async def js(self, expression: str, timeout: float = 30):
        result = await asyncio.wait_for(self.send(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True), timeout)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def until(self, expression: str, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = await self.js(expression)
            if value:
                return value
            await asyncio.sleep(0.25)
        raise TimeoutError(f"timed out waiting for {what}")

    async def screenshot(self, selector_js: str, path: Path | None) -> None:
        """A PNG of the element ``selector_js`` evaluates to (scrolled into view)."""
        box = await self.js(f"(() => {{ const e = {selector_js}; e.scrollIntoView({{block: 'start'}});"
                            " const r = e.getBoundingClientRect();"
                            " return {x: r.x, y: r.y, width: r.width, height: Math.min(r.height, 1300)}; })()")
        shot = await self.send("Page.captureScreenshot", format="png", clip={**box, "scale": 1})
        if path is not None:
            path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        _stop(self.process)


# JavaScript run in the page; ``jupyterapp`` is exposed by --LabApp.expose_app_in_browser.
# Headless Chromium has no focus, so the notebook panel is found by its path, not as the
# shell's current widget, and activated before the run command (which acts on the current one).
PANEL = "Array.from(jupyterapp.shell.widgets('main')).find(w => w.context && w.context.path === %s)"

NOTEBOOK_READY = """(() => {
  const w = window.jupyterapp && %s;
  const k = w && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!(k && k.status === 'idle' && w.content.widgets.length);
})()""" % PANEL

RUN_CELL = """(async () => {
  const panel = %s;
  jupyterapp.shell.activateById(panel.id);
  panel.content.activeCellIndex = %%d;
  await jupyterapp.commands.execute('notebook:run-cell');
  return panel.sessionContext.session.kernel.status;
})()""" % PANEL

CELL = "(%s).content.widgets[%%d].node" % PANEL

OUTPUTS = """(() => {
  const node = %s;
  return Array.from(node.querySelectorAll('.jp-OutputArea-output')).map(o => ({
    mime: o.getAttribute('data-mime-type'),
    text: o.innerText,
    html: o.innerHTML,
  }));
})()""" % CELL


def _code_cell_indexes(notebook: Path) -> list[int]:
    cells = json.loads(notebook.read_text())["cells"]
    return [i for i, cell in enumerate(cells) if cell["cell_type"] == "code"]


async def _run(chromium: Chromium, lab: JupyterLab, notebook: str, cells: list[int], shots: Path | None):
    """Open ``notebook``, run ``cells`` (indexes among all cells), return the last one's outputs."""
    name = json.dumps(notebook)
    await chromium.send("Page.navigate", url=lab.url(notebook))
    await chromium.until(NOTEBOOK_READY % (name,), 90, f"{notebook} with an idle kernel")
    for index in cells:
        await chromium.js(RUN_CELL % (name, index), timeout=60)
    cell = CELL % (name, cells[-1])
    await chromium.until(f"!!{cell}.querySelector('.jp-OutputArea-output')", 30, "the outputs")
    await asyncio.sleep(0.5)  # let the renderers settle before the picture
    await chromium.screenshot(cell, shots / f"{Path(notebook).stem}.png" if shots else None)
    return await chromium.js(OUTPUTS % (name, cells[-1]))


def test_refused_and_timed_out_cells_render_in_jupyterlab(tmp_path):
    root = tmp_path / "notebooks"
    shutil.copytree(ROOT / "examples", root)
    shots = Path(os.environ["KG_SCREENSHOTS"]) if os.environ.get("KG_SCREENSHOTS") else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    refusing = _code_cell_indexes(root / "01_huge_allocation.ipynb")[:2]  # %load_ext, %%guard refused
    timing_out = _code_cell_indexes(root / "04_swallowed_interrupt.ipynb")[:3]  # ..., %%guard --timeout 3
    lab = JupyterLab(tmp_path, root)
    chromium = None
    try:
        chromium = Chromium(tmp_path)

        async def drive():
            await chromium.connect()
            await chromium.send("Page.enable")
            return (await _run(chromium, lab, "01_huge_allocation.ipynb", refusing, shots),
                    await _run(chromium, lab, "04_swallowed_interrupt.ipynb", timing_out, shots),
                    await chromium.js(NOTEBOOK_READY % (json.dumps("04_swallowed_interrupt.ipynb"),)))

        refused, timed_out, alive = asyncio.run(asyncio.wait_for(drive(), 240))
    finally:
        if chromium is not None:
            chromium.close()
        lab.close()

    # The refusal: the kernel_guard box rendered as HTML (not its plain-text fallback),
    # then the one-line error, no traceback.
    box = [o for o in refused if o["mime"] == "text/html"]
    assert box and box[0]["text"].startswith("kernel_guard") and "this cell was not run" in box[0]["text"]
    assert "np.random.rand(100000, 100000)" in box[0]["text"] and "74.5 GiB" in box[0]["text"]
    assert "<code>" in box[0]["html"]  # `code` spans rendered, not shown as backticks
    errors = [o for o in refused if o["mime"] == "application/vnd.jupyter.stderr"]
    # under the box, one short line: the box already gives the whole reason
    assert len(errors) == 1
    assert errors[0]["text"].startswith("GuardRefused: cell not run: line 2 allocates 74.5 GiB, only ")
    assert errors[0]["text"].strip().endswith("(details above)") and len(errors[0]["text"].strip().splitlines()) == 1
    assert "Traceback" not in errors[0]["text"]

    # The timeout: the warnings box, what the cell printed, then GuardTimeout.
    assert any(o["mime"] == "text/html" and "KG404" in o["text"] for o in timed_out)
    assert any("failed, retrying" in o["text"] for o in timed_out)
    error = [o for o in timed_out if o["mime"] == "application/vnd.jupyter.stderr"][-1]
    assert "GuardTimeout: the cell ran longer than its 3 s timeout" in error["text"]
    assert alive, "the kernel is not idle after the timeout"
