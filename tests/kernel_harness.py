"""Drive a real ipykernel through jupyter_client, optionally inside a memory cgroup.

    with Kernel(purpose="guard", mem_limit="1G") as k:      # cgroup v1, 1 GiB
        r = k.execute("%load_ext kernel_guard")
        assert r.ok, r.error_text

`Kernel` starts ``python -m ipykernel_launcher`` with this interpreter; with a
``mem_limit`` the launcher joins a fresh cgroup
``/sys/fs/cgroup/memory/kgtest-<purpose>-<pid>`` *before* exec'ing Python, so every
byte the kernel ever allocates is charged there and the out-of-memory killer
really fires. ``require_cgroup()`` skips a test when that is impossible (not root,
no writable cgroup v1 memory controller). Every kernel and cgroup is removed on
close, and by a finalizer if a test forgets.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import re
import shutil
import signal
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager

CGROUP_ROOT = Path("/sys/fs/cgroup/memory")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def cgroup_unavailable() -> str | None:
    """Why a memory cgroup cannot be made here, or None if it can."""
    if os.geteuid() != 0:
        return "needs root to create a memory cgroup"
    if not (CGROUP_ROOT / "cgroup.procs").exists():
        return f"no cgroup v1 memory controller at {CGROUP_ROOT}"
    if not os.access(CGROUP_ROOT, os.W_OK):
        return f"{CGROUP_ROOT} is not writable"
    return None


def require_cgroup() -> None:
    reason = cgroup_unavailable()
    if reason:
        pytest.skip(reason)


class MemoryCgroup:
    """A cgroup v1 memory cgroup of a fixed size, removed by ``remove()``."""

    def __init__(self, purpose: str, limit_bytes: int):
        name = f"kgtest-{purpose}-{os.getpid()}"
        self.path = CGROUP_ROOT / name
        for n in itertools.count(2):  # two kernels of one purpose in one test process
            try:
                self.path.mkdir()
                break
            except FileExistsError:
                self.path = CGROUP_ROOT / f"{name}-{n}"
        (self.path / "memory.limit_in_bytes").write_text(str(limit_bytes))
        swap = self.path / "memory.memsw.limit_in_bytes"
        if swap.exists():  # without swap accounting, swap is not limited at all
            swap.write_text(str(limit_bytes))
        self.limit = limit_bytes

    @property
    def procs_file(self) -> Path:
        return self.path / "cgroup.procs"

    def members(self) -> list[int]:
        try:
            return [int(p) for p in self.procs_file.read_text().split()]
        except FileNotFoundError:
            return []

    def oom_kills(self) -> int:
        for line in (self.path / "memory.oom_control").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def _kill_members(self) -> None:
        for pid in self.members():  # only processes our kernel started
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def remove(self) -> None:
        if not self.path.exists():
            return
        deadline = time.monotonic() + 10
        while True:
            self._kill_members()
            try:
                self.path.rmdir()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


@dataclass
class CellResult:
    """What a cell sent back: its reply and the iopub messages for it."""

    status: str  # "ok", "error", "aborted", "dead" (kernel died) or "timeout"
    stdout: str = ""
    stderr: str = ""
    errors: list[dict] = field(default_factory=list)  # ename, evalue, traceback
    displays: list[dict] = field(default_factory=list)  # display_data "data" bundles
    results: list[dict] = field(default_factory=list)  # execute_result "data" bundles
    reply: dict = field(default_factory=dict)  # execute_reply content (status, ename, payload...)
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def died(self) -> bool:
        return self.status == "dead"

    @property
    def ename(self) -> str | None:
        """The error's name; UsageErrors have no error message, only the reply's."""
        return self.errors[-1]["ename"] if self.errors else self.reply.get("ename")

    @property
    def evalue(self) -> str | None:
        return self.errors[-1]["evalue"] if self.errors else self.reply.get("evalue")

    @property
    def payload(self) -> list[dict]:
        """Pages and other payloads of the reply (what `obj?` shows)."""
        return self.reply.get("payload", [])

    @property
    def error_text(self) -> str:
        """Every traceback, ANSI stripped, for assertions and failure messages."""
        return "\n".join(strip_ansi("\n".join(e["traceback"])) for e in self.errors)

    @property
    def html(self) -> str:
        return "\n".join(d["text/html"] for d in self.displays if "text/html" in d)

    @property
    def plain(self) -> str:
        """Every text/plain bundle, displays and results, in order."""
        return "\n".join(d["text/plain"] for d in self.displays + self.results if "text/plain" in d)

    @property
    def text(self) -> str:
        """All text the user would read: streams, plain displays and tracebacks."""
        return "\n".join(s for s in (self.stdout, self.stderr, self.plain, self.error_text) if s)

    def __str__(self) -> str:  # shown by pytest when an assertion on a result fails
        return f"<cell {self.status} in {self.elapsed:.2f}s>\n{self.text}"


_PROCESS_STATE = r"""
def _kg_state():
    import json, resource, signal, sys, threading
    limits = {n: resource.getrlimit(getattr(resource, n)) for n in dir(resource)
              if n.startswith("RLIMIT_")}
    handlers = {}
    for s in signal.valid_signals():
        try:
            handlers[int(s)] = repr(signal.getsignal(s))
        except (ValueError, OSError):
            pass
    return json.dumps({
        "rlimits": limits, "signals": handlers,
        "itimer": signal.getitimer(signal.ITIMER_REAL),
        "recursionlimit": sys.getrecursionlimit(),
        "streams": [repr(type(sys.stdout)), id(sys.stdout), repr(type(sys.stderr)), id(sys.stderr)],
        "trace": repr(sys.gettrace()), "profile": repr(sys.getprofile()),
        # pyzmq starts its garbage-collector thread on the first large message
        "threads": sorted(t.name for t in threading.enumerate()
                          if type(t).__module__ != "zmq.utils.garbage"),
        "excepthook": repr(sys.excepthook),
    })
print(_kg_state()); del _kg_state
"""


class Kernel:
    """A real ipykernel (this interpreter), optionally confined to a memory cgroup.

    ``execute()`` runs one cell and collects its iopub messages until the kernel is
    idle again, the kernel dies, or ``timeout`` seconds pass.
    """

    def __init__(
        self,
        purpose: str = "kernel",
        *,
        mem_limit: int | str | None = None,
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike | None = None,
        ipython_config: str | None = None,
        startup_timeout: float = 60,
    ):
        self.cgroup: MemoryCgroup | None = None
        self._tmp = Path(tempfile.mkdtemp(prefix=f"kgtest-{purpose}-"))
        self._closed = False
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        if mem_limit is not None:
            require_cgroup()
            from kernel_guard.sizes import parse_size

            self.cgroup = MemoryCgroup(purpose, parse_size(mem_limit))
            # The shell joins the cgroup, then becomes the kernel: nothing is charged elsewhere.
            argv = ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.cgroup.procs_file), *argv]
        spec_dir = self._tmp / "kernels" / "kgtest"
        spec_dir.mkdir(parents=True)
        (spec_dir / "kernel.json").write_text(
            json.dumps({"argv": argv, "display_name": "kgtest", "language": "python"})
        )
        if ipython_config is not None:  # e.g. c.KernelGuard.max_mem = "4G"
            profile = self._tmp / "ipython" / "profile_default"
            profile.mkdir(parents=True)
            (profile / "ipython_kernel_config.py").write_text(ipython_config)
        kernel_env = dict(os.environ)
        kernel_env.update(
            IPYTHONDIR=str(self._tmp / "ipython"),  # no user profile, private history db
            XDG_STATE_HOME=str(self._tmp / "state"),  # crash journals stay in the sandbox
            PYDEVD_DISABLE_FILE_VALIDATION="1",
        )
        kernel_env.update(env or {})
        self.env = kernel_env
        ksm = KernelSpecManager(kernel_dirs=[str(spec_dir.parent)], ensure_native_kernel=False)
        self.km = KernelManager(kernel_name="kgtest", kernel_spec_manager=ksm,
                                transport="ipc", ip=str(self._tmp / "ipc"))  # no open TCP ports
        self._finalizer = weakref.finalize(self, _cleanup, self.km, self.cgroup, self._tmp)
        self.km.start_kernel(env=kernel_env, cwd=str(cwd or self._tmp))
        self.kc = None
        self._connect(startup_timeout)

    def _connect(self, timeout: float) -> None:
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=timeout)

    @property
    def pid(self) -> int:
        return self.km.provisioner.process.pid

    def is_alive(self) -> bool:
        return self.km.is_alive()

    def execute(self, code: str, timeout: float = 60, *, interrupt_after: float | None = None) -> CellResult:
        """Run ``code``; with ``interrupt_after``, press "interrupt" (SIGINT) that many
        seconds after sending it."""
        start = time.monotonic()
        msg_id = self.kc.execute(code, allow_stdin=False)
        result = CellResult(status="timeout")
        deadline = start + timeout
        idle = reply = False
        while not (idle and reply):
            now = time.monotonic()
            if now > deadline:
                break
            if interrupt_after is not None and now - start >= interrupt_after:
                self.km.interrupt_kernel()
                interrupt_after = None
            try:
                msg = self.kc.get_iopub_msg(timeout=0.1)
            except queue.Empty:
                if not self.km.is_alive():
                    result.status = "dead"
                    break
                if not reply:
                    reply = self._poll_reply(msg_id, result)
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                name = content["name"]
                setattr(result, name, getattr(result, name) + content["text"])
            elif kind == "error":
                result.errors.append(content)
            elif kind in ("display_data", "update_display_data"):
                result.displays.append(content["data"])
            elif kind == "execute_result":
                result.results.append(content["data"])
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
                if not reply:
                    reply = self._poll_reply(msg_id, result, wait=5)
        result.elapsed = time.monotonic() - start
        return result

    def _poll_reply(self, msg_id: str, result: CellResult, wait: float = 0) -> bool:
        try:
            while True:
                msg = self.kc.get_shell_msg(timeout=wait)
                if msg["parent_header"].get("msg_id") == msg_id:
                    result.reply = msg["content"]
                    result.status = result.reply["status"]
                    return True
        except queue.Empty:
            return False

    def run(self, code: str, timeout: float = 60) -> CellResult:
        """``execute`` that fails the test unless the cell succeeded."""
        result = self.execute(code, timeout)
        assert result.ok, str(result)
        return result

    def eval(self, expr: str, timeout: float = 30):
        """The value of a JSON-serialisable expression in the kernel."""
        out = self.run(f"import json as _kg_json; print(_kg_json.dumps({expr})); del _kg_json", timeout)
        return json.loads(out.stdout.strip().splitlines()[-1])

    def process_state(self) -> dict:
        """Everything a guard may change and must restore: rlimits, signal handlers,
        interval timer, recursion limit, streams, trace function, threads."""
        out = self.run(_PROCESS_STATE)
        return json.loads(out.stdout.strip().splitlines()[-1])

    def reconnect(self, timeout: float = 30) -> None:
        """A new client, e.g. after another client (nbclient) used this kernel manager."""
        self.kc.stop_channels()
        self._connect(timeout)

    def restart(self, timeout: float = 60) -> None:
        """A fresh kernel process (in the same cgroup), e.g. after it was killed."""
        self.kc.stop_channels()
        self.km.restart_kernel(now=True)
        self._connect(timeout)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self.kc is not None:
                self.kc.stop_channels()
            self._finalizer()

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _cleanup(km: KernelManager, cgroup: MemoryCgroup | None, tmp: Path) -> None:
    try:
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    finally:
        if cgroup is not None:
            cgroup.remove()
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def left_as_found(kernel: Kernel):
    """The cell run inside must leave the kernel's process as it found it (limits, handlers,
    recursion limit, streams), the namespace from before intact, and the next cell usable."""
    kernel.run("sentinel = 'before'")
    state = kernel.process_state()
    yield
    assert kernel.is_alive()
    assert kernel.eval("sentinel") == "before"
    assert kernel.process_state() == state
    assert kernel.eval("sum(range(10))") == 45  # the next cell runs normally
