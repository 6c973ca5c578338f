"""End to end: real ipykernels load the extension; kernel A dies mid-cell (out of
memory in a 1 GiB cgroup, or a segfault), kernel B of the same notebook says what
happened, kernel C says nothing."""

from __future__ import annotations

import time

import pytest
from kernel_harness import Kernel

pytestmark = pytest.mark.kernel

OOM_CELL = "import numpy as np\nx = np.ones((20000, 20000))  # 3.0 GiB, unguarded"
SEGFAULT_CELL = "import ctypes\nctypes.string_at(0)"
BANNER = "previous kernel of this notebook"


@pytest.fixture
def notebook(tmp_path):
    """The environment every kernel of one notebook shares."""
    state = tmp_path / "state"
    state.mkdir()
    return {
        "env": {"KERNEL_GUARD_STATE_DIR": str(state), "JPY_SESSION_NAME": str(tmp_path / "analysis.ipynb")},
        "cwd": tmp_path,
        "state": state,
    }


def wait_dead(kernel: Kernel, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while kernel.is_alive():
        assert time.monotonic() < deadline, "the kernel did not die"
        time.sleep(0.05)


def load(kernel: Kernel) -> str:
    result = kernel.run("%load_ext kernel_guard")
    return result.text


def test_oom_kill_reported_once_by_the_next_kernel(notebook):
    with Kernel("recorder", mem_limit="1G", env=notebook["env"], cwd=notebook["cwd"]) as a:
        assert BANNER not in load(a)
        # The doctor in the kernel sees the cgroup that `free` does not show.
        doctor = a.run("%guard doctor").text
        assert "Memory this kernel can really get: 1.0 GiB (cgroup v1 limit)" in doctor
        assert f"v1 /{a.cgroup.path.name}, limit 1.0 GiB" in doctor
        assert "but this kernel is limited to 1.0 GiB" in doctor
        died = a.execute(OOM_CELL, timeout=60)
        assert died.died, str(died)
        wait_dead(a)
        assert a.cgroup.oom_kills() == 1  # the control really was OOM-killed

        with Kernel("recorder-b", env=notebook["env"], cwd=notebook["cwd"]) as b:
            text = load(b)
        assert f"{BANNER} (pid {a.pid}) died while running cell [3]" in text
        assert "    import numpy as np\n    x = np.ones((20000, 20000))  # 3.0 GiB, unguarded" in text
        assert ("Likely cause: killed by the out-of-memory killer "
                "(the memory cgroup's oom_kill count went from 0 to 1)") in text
        assert "Memory at the end: the cgroup limit of 1.0 GiB was reached" in text

    with Kernel("recorder-c", env=notebook["env"], cwd=notebook["cwd"]) as c:
        assert BANNER not in load(c)


def test_segfault_reported_with_the_python_stack(notebook):
    with Kernel("recorder-a", env=notebook["env"], cwd=notebook["cwd"]) as a:
        load(a)
        pid = a.pid
        died = a.execute(SEGFAULT_CELL, timeout=60)
        assert died.died, str(died)
        wait_dead(a)
    with Kernel("recorder-b", env=notebook["env"], cwd=notebook["cwd"]) as b:
        text = load(b)
    assert f"{BANNER} (pid {pid}) died while running cell [2]" in text
    assert "    import ctypes\n    ctypes.string_at(0)" in text
    assert "Likely cause: a fatal signal: segmentation fault" in text
    stack = text.split("Python stack at the crash (most recent call first):\n")[1].splitlines()
    assert stack[0].strip().endswith("in string_at")
    assert "ipykernel_" in stack[1] and stack[1].strip().endswith("line 2 in <module>")
    with Kernel("recorder-c", env=notebook["env"], cwd=notebook["cwd"]) as c:
        assert BANNER not in load(c)


def test_a_kernel_that_shuts_down_normally_leaves_nothing(notebook):
    with Kernel("recorder-a", env=notebook["env"], cwd=notebook["cwd"]) as a:
        load(a)
        a.run("z = 2")
        assert len(list(notebook["state"].rglob("*.json"))) == 1
        a.km.shutdown_kernel(now=False)  # what Jupyter does: a shutdown request
    assert list(notebook["state"].rglob("*")) == []
    with Kernel("recorder-b", env=notebook["env"], cwd=notebook["cwd"]) as b:
        assert BANNER not in load(b)
