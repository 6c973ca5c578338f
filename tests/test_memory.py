"""The memory this kernel can really get: cgroup v1/v2 readers against fixture
trees laid out like the kernel's, and against a real cgroup on this machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psutil
import pytest
from kgtest_cgroup import add_process, memory_cgroup

from kernel_guard import memory

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "cgroup")
G, M = 1 << 30, 1 << 20


def read(layout: str) -> memory.CgroupMemory | None:
    base = os.path.join(FIXTURES, layout)
    return memory.read_cgroup_memory(os.path.join(base, "proc_self_cgroup"), os.path.join(base, "sys"))


def test_v1_nested_takes_the_tightest_ancestor():
    cg = read("v1")
    assert cg.version == 1
    assert cg.path == "/user.slice/notebook"
    assert cg.directory.endswith("sys/memory/user.slice/notebook")
    # The parent's 2 GiB binds, not the child's looser 4 GiB.
    assert cg.limit == 2 * G
    assert cg.limit_directory.endswith("sys/memory/user.slice")
    # Usage and peak are the limiting cgroup's; inactive page cache is reclaimable.
    assert cg.usage == 1536 * M
    assert cg.working_set == 1 * G
    assert cg.peak == 2 * G
    assert cg.headroom == 1 * G
    # failcnt counts hits of the limit where it is set; oom_kill counts the victim's cgroup.
    assert cg.failcnt == 5
    assert cg.oom_kill == 1


def test_v1_is_read_in_a_hybrid_layout_even_with_a_v2_line():
    # /proc/self/cgroup also has "0::/..." and root/unified exists, without memory.
    assert read("v1").version == 1


def test_v1_unlimited_values_mean_no_limit():
    cg = read("v1_unlimited")
    assert cg.version == 1
    assert cg.limit is None and cg.limit_directory is None and cg.headroom is None
    assert cg.usage == 1 * G  # the own cgroup's usage when nothing is limited


def test_v1_container_mount_showing_only_its_own_subtree():
    cg = read("v1_container")
    assert cg.path == "/docker/0123abcd"
    assert cg.directory == os.path.join(FIXTURES, "v1_container", "sys", "memory")
    assert cg.limit == 1 * G
    assert cg.headroom == 1 * G - 800 * M
    assert (cg.failcnt, cg.oom_kill) == (12, 3)


def test_v2_nested_takes_the_tightest_ancestor():
    cg = read("v2")
    assert cg.version == 2
    assert cg.limit == 3 * G
    assert cg.limit_directory.endswith("user.slice/user-1000.slice")
    assert cg.usage == 2 * G
    assert cg.working_set == 2 * G - 256 * M
    assert cg.peak == 3 * G
    assert cg.headroom == 1 * G + 256 * M
    assert cg.failcnt == 9  # memory.events "max" where the limit is set
    assert cg.oom_kill == 1  # memory.events "oom_kill" of the own cgroup


def test_v2_container_namespace_root():
    cg = read("v2_container")
    assert cg.version == 2 and cg.path == "/"
    assert cg.limit == 512 * M
    assert cg.headroom == 512 * M - 256 * M
    assert cg.peak == 511 * M
    assert (cg.failcnt, cg.oom_kill) == (4, 0)


def test_v2_max_means_unlimited():
    cg = read("v2_unlimited")
    assert cg.limit is None and cg.headroom is None
    assert cg.usage == 700 * M


def test_v2_missing_files_are_unknown_not_errors():
    cg = read("v2_missing")
    assert cg.version == 2
    assert cg.limit is None and cg.usage is None and cg.working_set is None
    assert cg.failcnt is None and cg.oom_kill is None


def test_no_memory_cgroup():
    assert read("none") is None
    assert memory.read_cgroup_memory("/nonexistent/cgroup", "/nonexistent") is None


def test_usable_and_available_take_the_lower_of_ram_and_cgroup():
    ram = psutil.virtual_memory()
    limited = read("v1")
    assert memory.usable_memory(limited) == min(ram.total, 2 * G)
    assert memory.available_memory(limited) <= 1 * G
    unlimited = read("v2_unlimited")
    assert memory.usable_memory(unlimited) == ram.total
    assert abs(memory.available_memory(unlimited) - ram.available) < 256 * M


def test_counters_are_reread_from_the_recorded_directories():
    cg = read("v2")
    counters = memory.read_oom_counters(cg)
    assert counters["cgroup_oom_kill"] == 1 and counters["cgroup_failcnt"] == 9
    assert memory.cgroup_counters(1, "/nonexistent") == {}


def test_this_machine_matches_proc_self_cgroup():
    cg = memory.read_cgroup_memory()
    if cg is None:
        pytest.skip("no memory cgroup on this machine")
    with open("/proc/self/cgroup") as f:
        assert any(line.endswith(":" + cg.path) for line in f.read().splitlines())
    assert os.path.isdir(cg.directory)
    assert cg.usage is not None and cg.usage > 0


def test_rlimits_and_overcommit():
    limits = memory.rlimits()
    assert {"AS", "DATA", "STACK", "NPROC"} <= limits.keys()
    soft, hard = limits["STACK"]
    assert soft is None or soft > 0
    assert memory.overcommit_mode() in (0, 1, 2)
    assert memory.overcommit_mode("/nonexistent") is None


CHILD = (
    "import json; from kernel_guard import memory as m; cg = m.read_cgroup_memory();"
    "print(json.dumps([m.usable_memory(), m.available_memory(), cg.limit, cg.path]))"
)


def test_a_real_cgroup_limit_is_what_the_kernel_can_get():
    # A process started inside a 300 MiB cgroup sees 300 MiB, though `free` shows the host's RAM.
    with memory_cgroup("memory", 300 * M) as cgroup:
        child = subprocess.Popen(
            [sys.executable, "-c", f"import sys; sys.stdin.readline(); {CHILD}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            add_process(cgroup, child.pid)
            out, _ = child.communicate("go\n", timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    usable, available, limit, path = json.loads(out)
    assert limit == usable == 300 * M
    assert 0 < available < 300 * M
    assert path.endswith(os.path.basename(cgroup))
