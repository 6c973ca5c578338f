"""The doctor report on this machine (cgroup v1), without any cgroup, and with the
settings that kill kernels actually in force in a child process."""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys

import psutil
import pytest

from kernel_guard import memory
from kernel_guard.doctor import _overcommit_check, doctor, doctor_report
from kernel_guard.sizes import format_bytes

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "cgroup")


def fixture(layout: str) -> dict:
    base = os.path.join(FIXTURES, layout)
    return {"proc_self_cgroup": os.path.join(base, "proc_self_cgroup"), "cgroup_root": os.path.join(base, "sys")}


def run_doctor(*args: str, preexec_fn=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kernel_guard", "doctor", *args],
        capture_output=True, text=True, timeout=60, preexec_fn=preexec_fn,
    )


def has_row(out: str, label: str, value: str) -> bool:
    """A report row as printed: the label column is as wide as the longest label of this report,
    which depends on what the machine shows (an "OOM kills since boot" row only after one)."""
    return re.search(rf"\n  {re.escape(label)} +{re.escape(value)}", out) is not None


def test_command_on_this_machine():
    result = run_doctor()
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("Memory this kernel can really get: ")
    assert f"{format_bytes(psutil.virtual_memory().total)} total" in out
    cgroup = memory.read_cgroup_memory()
    if cgroup is not None:  # the child runs in our cgroup
        assert f"v{cgroup.version} {cgroup.path}" in out
    stack = memory.rlimits()["STACK"][0]
    # The child's own recursion limit: this process's may have been raised by an earlier test (jedi does).
    assert re.search(r"recursion +limit \d+, main thread stack ", out)
    assert "STACK" in out and (format_bytes(stack) if stack else "unlimited") in out
    assert has_row(out, "working directory", f"{os.getcwd()}: ")
    for name in ("Python", "ipython", "ipykernel", "numpy", "libcst", "BLAS"):
        assert f"\n  {name} " in out
    assert out.rstrip().endswith(("warnings.", "warning.", "No warnings."))


def test_json_matches_the_memory_functions():
    result = run_doctor("--json")
    data = json.loads(result.stdout)
    assert data["usable"] == memory.usable_memory()
    assert data["limited_by"] in ("RAM", "cgroup v1 limit", "cgroup v2 limit")
    assert {"section", "label", "value", "warning"} == set(data["checks"][0])


def test_usage_error_is_one_line():
    result = run_doctor("--bogus")
    assert result.returncode == 2
    assert "unrecognized arguments: --bogus" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_cgroup_at_all():
    report = doctor(**fixture("none"))
    assert report.limited_by == "RAM"
    assert report.usable == psutil.virtual_memory().total
    cgroup = next(c for c in report.checks if c.label == "cgroup")
    assert cgroup.value == "no memory cgroup" and cgroup.warning is None
    swap = next(c for c in report.checks if c.label == "swap")
    if psutil.swap_memory().total == 0:  # this machine: no swap, so the OOM killer is the only stop
        assert "no swap and no memory cgroup limit" in swap.warning
    else:
        assert swap.warning is None


def test_a_cgroup_limit_free_does_not_show():
    report = doctor(**fixture("v1"))
    assert report.limited_by == "cgroup v1 limit"
    assert report.usable == min(2 << 30, psutil.virtual_memory().total)
    text = str(report)
    assert "Memory this kernel can really get: 2.0 GiB (cgroup v1 limit)" in text
    assert "limit 2.0 GiB (set on " in text
    assert "but this kernel is limited to 2.0 GiB" in text
    assert "the OOM killer has already killed processes in this cgroup" in text
    # With a limit the swap warning does not apply: the cgroup's OOM killer is the stop.
    assert "no swap and no memory cgroup limit" not in text


def test_nearly_full_cgroup():
    report = doctor(**fixture("v2_container"))  # 256 MiB working set of 512 MiB: not full
    assert not any("nearly full" in (c.warning or "") for c in report.checks)
    report = doctor(**fixture("v1_container"))  # 800 MiB of 1 GiB: not full either
    usage = next(c for c in report.checks if c.label == "cgroup usage")
    assert usage.value.startswith("900.0 MiB (800.0 MiB not reclaimable), peak")


CHILD_LIMITS = {resource.RLIMIT_STACK: 512 * 1024, resource.RLIMIT_NOFILE: 256, resource.RLIMIT_AS: 8 << 30}


def _lower_limits():
    for which, soft in CHILD_LIMITS.items():
        hard = resource.getrlimit(which)[1]
        resource.setrlimit(which, (soft, hard))


def test_limits_that_kill_kernels_are_warned_about():
    if psutil.virtual_memory().total <= 8 << 30:
        pytest.skip("needs more than 8 GiB of RAM for an AS limit below it")
    result = run_doctor(preexec_fn=_lower_limits)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert has_row(out, "STACK", "512.0 KiB / ")
    assert "a tiny stack: deep recursion through C code segfaults the kernel" in out
    assert "few open files allowed" in out
    assert "RLIMIT_AS is below the memory this kernel can get" in out


def test_recursion_limit_above_the_stack():
    try:
        from kernel_guard.runtime import safe_max_depth  # noqa: F401
    except ImportError:
        pytest.skip("kernel_guard.runtime.safe_max_depth is not available")
    code = ("import sys; sys.setrecursionlimit(1_000_000); "
            "from kernel_guard.doctor import doctor_report; print(doctor_report())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "limit 1000000" in out
    assert "the recursion limit is above what the stack can hold" in out


def test_strict_overcommit_warning():
    check = _overcommit_check(2, {"CommitLimit": 12 << 30, "Committed_AS": 11 << 30})
    assert check.value == "2 (strict), committed 11.0 GiB of 12.0 GiB"
    assert "fork" in check.warning and "OpenBLAS" in check.warning
    assert _overcommit_check(0, {}).warning is None


def test_html_form_escapes_and_shows_warnings():
    report = doctor(**fixture("v1"))
    page = report._repr_html_()
    assert page.startswith("<div><b>Memory this kernel can really get")
    assert "&#9888; free, top and psutil show" in page
    assert "(&quot;kernel died&quot;)" in page
    assert doctor_report(**fixture("v1")).count("\n  ") == len(report.checks) + len(report.warnings)


def test_ipython_shows_the_text_and_the_html():
    # What `%guard doctor` displays: text/plain for consoles, HTML for notebooks.
    from IPython.core.interactiveshell import InteractiveShell

    report = doctor(**fixture("v1"))
    data, _ = InteractiveShell.instance().display_formatter.format(report)
    assert data["text/plain"] == str(report)
    assert data["text/html"] == report._repr_html_()
