"""torch's allocator under the memory cap: its RuntimeError becomes GuardMemoryError.

torch is optional: every test here is skipped cleanly without it.
"""

from __future__ import annotations

import os

import pytest
from kgtest_cgroup import add_process, memory_cgroup
from test_runtime import check, run_child
from test_runtime_memory import guarded

from kernel_guard.runtime.library_oom import refused_allocation

torch = pytest.importorskip("torch", reason="torch is not installed (optional)")

GiB = 1 << 30
TORCH_CAP = 768 << 20  # torch itself takes a few hundred MiB once imported

_CPU_ERROR = ("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
              "you tried to allocate 3600000000 bytes. Error code 12 (Cannot allocate memory)")


def run_in_cgroup(purpose: str, body: str) -> tuple:
    with memory_cgroup(f"torch-{purpose}", GiB) as cgroup:
        return run_child(body, preexec_fn=lambda: add_process(cgroup, os.getpid()), timeout=120)


def test_the_cpu_allocator_error_is_recognised_with_its_size():
    assert refused_allocation(RuntimeError(_CPU_ERROR)) == ("torch", 3_600_000_000)
    newer = _CPU_ERROR.replace("can't allocate memory", "not enough memory")
    assert refused_allocation(torch.OutOfMemoryError(newer)) == ("torch", 3_600_000_000)


def test_other_errors_and_subclasses_are_left_alone():
    class Trap(RuntimeError):
        def __str__(self):  # would run user code if the guard read it
            raise AssertionError("user __str__ called")

    assert refused_allocation(Trap(_CPU_ERROR)) is None
    assert refused_allocation(RuntimeError("shape mismatch")) is None
    assert refused_allocation(ValueError(_CPU_ERROR)) is None


@pytest.mark.cgroup
def test_unguarded_torch_allocation_is_killed_by_the_oom_killer():
    proc, result = run_in_cgroup("control", "import torch\nt = torch.ones(20_000, 20_000)\nresult(alive=True)")
    assert proc.returncode == -9 and result == {}


@pytest.mark.cgroup
@pytest.mark.parametrize("call, size", [
    ("torch.zeros(30_000, 30_000)", "3.4 GiB"),
    ("torch.ones(20_000, 20_000)", "1.5 GiB"),
    ("torch.randn(20_000, 20_000, dtype=torch.float64)", "3.0 GiB"),
])
def test_torch_allocation_over_the_cap_raises_guard_memory_error(call, size):
    body = "import torch\n" + guarded(f"t = {call}", cap=TORCH_CAP)
    proc, result = run_in_cgroup("capped", body)
    result = check(proc, result)
    assert result["error"].startswith(f"an array of {size} in torch would take the kernel from "), result["error"]
    assert result["error"].endswith(", over its 768.0 MiB cap")
    assert result["hit"] == "memory" and result["after"] and result["restored"]

