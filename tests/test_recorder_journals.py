"""Journals a recorder cannot read (issue 12, item 12): wrong shapes, special files
under a journal's name. Loading never fails or waits because of one; each is said
once, then set aside."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kernel_harness import Kernel

from kernel_guard.recorder import Recorder

KEY = "/notebooks/odd.ipynb"


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("KERNEL_GUARD_STATE_DIR", str(tmp_path))
    path = tmp_path / hashlib.sha256(KEY.encode()).hexdigest()[:16]
    path.mkdir()
    return path


def dead_journal(**overrides) -> dict:
    """A journal of a kernel that died mid-cell (its pid is not running)."""
    pid = max(psutil.pids()) + 100_000
    journal = {"format": 1, "key": KEY, "pid": pid, "create_time": time.time() - 60, "start_ticks": None,
               "hostname": socket.gethostname(), "boot_time": psutil.boot_time(), "ram_total": 16 << 30,
               "cgroup": None, "counters": {}, "status": "running",
               "cell": {"number": 3, "source": "x = 1", "truncated": False, "started": time.time() - 30,
                        "limits": {}},
               "rss": 100 << 20, "rss_time": time.time() - 30, "updated": time.time() - 30}
    journal.update(overrides)
    return journal


def start_in_time(seconds: float = 20) -> Recorder:
    """Start a recorder for KEY in a thread; fail if it does not return in time."""
    recorder, done = Recorder(key=KEY), []
    thread = threading.Thread(target=lambda: done.append(recorder.start()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "Recorder.start() waited on a special file"
    recorder.stop()
    recorder.message = done[0]
    return recorder


@pytest.mark.parametrize("overrides, problem", [
    ({"cell": {"source": 5}}, "cell.source is int"),
    ({"cell": "abc"}, "cell is str"),
    ({"rss": "big"}, "rss is str"),
    ({"pid": [1]}, "pid is list"),
    ({"cell": {"number": 1, "source": "x", "limits": {"max_mem": "80%"}}}, "cell.limits.max_mem is str"),
    ({"updated": 1e300}, "updated is out of range"),
    ({"counters": {"cgroup_oom_kill": "1"}}, "counters hold something other than counts"),
])
def test_a_journal_of_the_wrong_shape_is_said_once_and_set_aside(folder, overrides, problem):
    (folder / "1-1.json").write_text(json.dumps(dead_journal(**overrides)))
    first = start_in_time()
    assert first.message is None
    assert first.skipped == [f"1-1.json: {problem}"]
    assert start_in_time().skipped == []  # said once
    assert (folder / "1-1.json.skipped").exists()  # kept for whoever wants to look, until it expires


def test_a_journal_that_is_not_json_is_skipped_once_old_enough(folder):
    path = folder / "1-1.json"
    path.write_text('{"pid": ')
    assert start_in_time().skipped == []  # may be half written by a kernel starting right now
    os.utime(path, (time.time() - 60, time.time() - 60))
    assert start_in_time().skipped == ["1-1.json: not a JSON journal"]


@pytest.mark.parametrize("name", ["1-1.json", "2-2.fault"])
def test_a_fifo_in_the_state_folder_never_blocks(folder, name):
    (folder / "2-2.json").write_text(json.dumps(dead_journal()))
    if name == "1-1.json":
        os.mkfifo(folder / name)
        recorder = start_in_time()
        assert recorder.skipped == ["1-1.json: not a regular file"]
        assert "died while running cell [3]" in recorder.message
    else:
        os.remove(folder / "2-2.json")
        (folder / "2-2.json").write_text(json.dumps(dead_journal()))
        os.mkfifo(folder / name)
        recorder = start_in_time()
        assert "died while running cell [3]" in recorder.message  # without the fault file's stack
        assert recorder.skipped == []


def test_a_journal_linked_to_a_device_is_not_read(folder):
    os.symlink("/dev/zero", folder / "3-3.json")
    assert start_in_time().skipped == ["3-3.json: not a regular file"]


@pytest.mark.kernel
def test_load_ext_in_a_real_kernel_says_it_once_and_loading_twice_is_loading_once(tmp_path):
    state = tmp_path / "state"
    notebook = str(tmp_path / "odd.ipynb")
    folder = state / hashlib.sha256(notebook.encode()).hexdigest()[:16]
    folder.mkdir(parents=True)
    (folder / "1-1.json").write_text(json.dumps(dead_journal(cell={"source": 5})))
    (folder / "2-2.json").write_text(json.dumps(dead_journal(rss="big")))
    os.mkfifo(folder / "4-4.json")
    hooks = ("[len(get_ipython().input_transformers_cleanup),"
             " {e: len(c) for e, c in get_ipython().events.callbacks.items()}]")
    with Kernel("journals", env={"KERNEL_GUARD_STATE_DIR": str(state), "JPY_SESSION_NAME": notebook}) as kernel:
        before = kernel.eval(hooks)
        result = kernel.run("%load_ext kernel_guard", timeout=30)
        assert "crash journals skipped" in result.text
        for problem in ("1-1.json: cell.source is int", "2-2.json: rss is str", "4-4.json: not a regular file"):
            assert problem in result.text
        loaded = kernel.eval(hooks)
        kernel.run("import kernel_guard; kernel_guard.load_ipython_extension(get_ipython())")
        kernel.run("%load_ext kernel_guard")
        assert kernel.eval(hooks) == loaded
        kernel.run("%unload_ext kernel_guard")
        assert kernel.eval(hooks) == before
        again = kernel.run("%load_ext kernel_guard")
        assert "skipped" not in again.text
        assert kernel.run("40 + 2").plain == "42"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
FIELDS = ["pid", "hostname", "status", "create_time", "start_ticks", "boot_time", "ram_total", "rss",
          "rss_time", "updated", "cell", "cgroup", "counters", "format", "key"]
CELL_FIELDS = ["number", "source", "truncated", "started", "limits"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=3),
       cell_changes=st.dictionaries(st.sampled_from(CELL_FIELDS), JSON, max_size=2))
def test_generated_journals_never_break_loading(folder, changes, cell_changes):
    journal = dead_journal()
    journal["cell"].update(cell_changes)
    journal.update(changes)
    folder.mkdir(exist_ok=True)  # an empty folder goes when a recorder stops
    for leftover in folder.iterdir():
        leftover.unlink()
    (folder / "5-5.json").write_text(json.dumps(journal))
    recorder = start_in_time()
    assert recorder.message is None or "died while running" in recorder.message
    assert len(recorder.skipped) <= 1
    if (folder / "5-5.json").exists():  # kept only when not ours to judge: another machine's, or alive
        pid = journal.get("pid")
        assert journal.get("hostname") != socket.gethostname() or (type(pid) is int and psutil.pid_exists(pid))
