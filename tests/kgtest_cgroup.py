"""A throw-away cgroup v1 memory cgroup for tests that really run out of memory.

Named ``kgtest-<purpose>-<pid>`` under /sys/fs/cgroup/memory; removed on exit
after every process left in it has been killed (by PID).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest

V1_MEMORY = "/sys/fs/cgroup/memory"


def skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create a memory cgroup"
    if not os.access(V1_MEMORY, os.W_OK) or not os.path.exists(
        os.path.join(V1_MEMORY, "memory.limit_in_bytes")
    ):
        return "no writable cgroup v1 memory hierarchy at /sys/fs/cgroup/memory"
    return None


def require_cgroup() -> None:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)


@contextlib.contextmanager
def memory_cgroup(purpose: str, limit: int):
    """Create the cgroup with ``limit`` bytes (no swap) and yield its directory."""
    require_cgroup()
    path = os.path.join(V1_MEMORY, f"kgtest-{purpose}-{os.getpid()}")
    os.mkdir(path)
    try:
        _write(path, "memory.limit_in_bytes", limit)
        with contextlib.suppress(OSError):  # absent when swap accounting is off
            _write(path, "memory.memsw.limit_in_bytes", limit)
        yield path
    finally:
        _remove(path)


def add_process(cgroup: str, pid: int) -> None:
    _write(cgroup, "cgroup.procs", pid)


def _write(cgroup: str, name: str, value) -> None:
    with open(os.path.join(cgroup, name), "w") as f:
        f.write(str(value))


def _remove(path: str) -> None:
    for _ in range(100):
        with open(os.path.join(path, "cgroup.procs")) as f:
            pids = [int(p) for p in f.read().split()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            os.rmdir(path)
            return
        except OSError:
            time.sleep(0.05)
    os.rmdir(path)
