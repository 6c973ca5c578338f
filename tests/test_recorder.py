"""The crash recorder with real deaths: child processes that record a cell and
then segfault, get SIGKILLed or SIGTERMed, exit, or fork; the test process
plays the next kernel of the same notebook."""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from kernel_guard import recorder as rec_mod
from kernel_guard.postmortem import SHOWN_LINES, post_mortem
from kernel_guard.recorder import Recorder
from kernel_guard.sizes import format_bytes

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "cgroup")
KEY = "/notebooks/analysis.ipynb"


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("KERNEL_GUARD_STATE_DIR", str(tmp_path))
    return tmp_path


def kernel(state, body: str, *, key: str = KEY, wait: bool = True) -> subprocess.Popen:
    """A child process that records like a kernel: ``rec`` is started, then ``body`` runs."""
    code = textwrap.dedent(
        f"""
        import os, signal, sys, time
        from kernel_guard.recorder import Recorder
        rec = Recorder(key={key!r})
        print("START", rec.start(), flush=True)
        """
    ) + textwrap.dedent(body)
    env = dict(os.environ, KERNEL_GUARD_STATE_DIR=str(state))
    child = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    if wait:
        child.wait(timeout=60)
    return child


def next_kernel(key: str = KEY) -> str | None:
    recorder = Recorder(key=key)
    try:
        return recorder.start()
    finally:
        recorder.stop()


def journals(state) -> list[str]:
    return sorted(p.name for p in state.rglob("*") if p.is_file())


def test_segfault_is_reported_once_with_the_cell_and_python_stack(state):
    child = kernel(state, """
        rec.cell_started(7, "import ctypes\\nctypes.string_at(0)", {"max_mem": 2 << 30})
        def crash_here():
            import ctypes
            ctypes.string_at(0)
        crash_here()
    """)
    assert child.returncode == -signal.SIGSEGV
    message = next_kernel()
    assert message.startswith(f"The previous kernel of this notebook (pid {child.pid}) "
                              "died while running cell [7], started ")
    assert "\n    import ctypes\n    ctypes.string_at(0)\n" in message
    assert "Likely cause: a fatal signal: segmentation fault" in message
    assert "the cell ran under --max-mem 2.0 GiB" in message
    crash = message.split("Python stack at the crash (most recent call first):\n")[1]
    stack = [line.strip() for line in crash.splitlines()]
    assert "in string_at" in stack[0]
    assert stack[1].startswith('File "<string>"') and stack[1].endswith("in crash_here")
    # Said once: the files are gone and the next kernel says nothing.
    assert journals(state) == []
    assert next_kernel() is None


def test_sigkill_mid_cell_is_reported_with_unknown_cause(state):
    child = kernel(state, """
        rec.cell_started(3, "x = build_everything()", None)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert child.returncode == -signal.SIGKILL
    message = next_kernel()
    assert "died while running cell [3]" in message
    assert "\n    x = build_everything()\n" in message
    assert "Likely cause: unknown: the process ended without a Python error" in message
    assert "SIGKILL from outside, os._exit()" in message


def test_sigterm_mid_cell_shows_where_the_cell_was(state):
    child = kernel(state, """
        rec.cell_started(2, "while True: time.sleep(1)", None)
        def stuck():
            print("RUNNING", flush=True)
            while True:
                time.sleep(1)
        stuck()
    """, wait=False)
    assert child.stdout.readline().startswith("START")
    assert child.stdout.readline() == "RUNNING\n"
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == -signal.SIGTERM  # it still dies of SIGTERM
    message = next_kernel()
    assert "Likely cause: terminated by SIGTERM (a restart or shutdown from Jupyter, or `kill`)" in message
    stack = message.split("most recent call first):\n")[1].splitlines()
    assert stack[0].strip().endswith("in stuck")


def test_sigterm_is_left_alone_when_the_kernel_handles_it(state):
    # A handler of the user's (or a library's) may survive SIGTERM: a later death
    # must not be blamed on it.
    child = kernel(state, f"""
        rec.stop()
        signal.signal(signal.SIGTERM, lambda *a: print("HANDLED", flush=True))
        rec = Recorder(key={KEY!r})
        rec.start()
        rec.cell_started(8, "serve_forever()", None)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert child.returncode == -signal.SIGKILL
    assert "HANDLED" in child.stdout.read()
    message = next_kernel()
    assert "serve_forever()" in message and "SIGTERM" not in message


def test_stop_gives_sigterm_back(state):
    child = kernel(state, """
        rec.cell_started(1, "x = 1", None)
        rec.cell_finished()
        rec.stop()
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    """)
    assert child.returncode == -signal.SIGTERM
    assert child.stderr.read() == ""
    assert journals(state) == []


def test_normal_exit_and_death_while_idle_report_nothing(state):
    kernel(state, """
        rec.cell_started(1, "print(1)", None)
        rec.cell_finished()
    """)
    assert journals(state) == []  # the exit removed its files
    child = kernel(state, """
        rec.cell_started(1, "print(1)", None)
        rec.cell_finished()
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert child.returncode == -signal.SIGKILL
    assert len(journals(state)) == 3  # journal, fault and term files of the idle kernel
    assert next_kernel() is None
    assert journals(state) == []  # cleaned up without a word


def test_other_notebooks_are_not_told(state):
    kernel(state, """
        rec.cell_started(1, "boom()", None)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert next_kernel(key="/notebooks/other.ipynb") is None
    assert "boom()" in next_kernel()


def test_a_live_kernel_of_the_same_notebook_is_left_alone(state):
    child = kernel(state, """
        rec.cell_started(4, "train()", None)
        print("RUNNING", flush=True)
        time.sleep(60)
    """, wait=False)
    try:
        assert child.stdout.readline().startswith("START")
        assert child.stdout.readline() == "RUNNING\n"
        assert next_kernel() is None  # running, but alive
        assert len(journals(state)) == 3
    finally:
        child.kill()
        child.wait()
    assert "train()" in next_kernel()


def test_a_reused_pid_does_not_keep_a_dead_kernel_alive(state):
    kernel(state, """
        rec.cell_started(5, "step()", None)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    [path] = state.rglob("*.json")
    journal = json.loads(path.read_text())
    journal["pid"] = os.getppid()  # a live process, started at another time
    path.write_text(json.dumps(journal))
    assert "step()" in next_kernel()


def test_journals_of_other_machines_are_not_judged(state):
    kernel(state, """
        rec.cell_started(5, "step()", None)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    [path] = state.rglob("*.json")
    journal = json.loads(path.read_text())
    journal["hostname"] = "another-host-sharing-this-home"
    path.write_text(json.dumps(journal))
    assert next_kernel() is None
    assert path.exists()


def test_old_journals_expire_and_empty_folders_go(state):
    kernel(state, """
        rec.cell_started(5, "step()", None)
        os.kill(os.getpid(), signal.SIGKILL)
    """, key="/somewhere/forgotten.ipynb")
    files = [p for p in state.rglob("*") if p.is_file()]
    assert len(files) == 3
    next_kernel()  # a young journal of another notebook is kept for its next kernel
    assert all(p.exists() for p in files)
    old = time.time() - rec_mod.MAX_AGE - 3600
    for p in files:
        os.utime(p, (old, old))
    next_kernel()
    assert journals(state) == []
    assert [p.name for p in state.iterdir()] == []  # both notebook folders removed


def test_the_sampler_records_memory_of_an_unguarded_cell(state):
    child = kernel(state, """
        rec.cell_started(9, "big = bytearray(300 << 20)", None)
        big = bytearray(300 << 20)
        time.sleep(2.5)  # the recorder samples once a second
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert child.returncode == -signal.SIGKILL
    message = next_kernel()
    rss_mib = float(message.split("Memory last measured: ")[1].split(" MiB")[0])
    assert 300 <= rss_mib < 400


def test_a_forked_child_neither_writes_nor_deletes_the_kernels_files(state):
    child = kernel(state, """
        rec.cell_started(6, "pool_work()", None)
        pid = os.fork()
        if pid == 0:
            os.kill(os.getpid(), signal.SIGSEGV)  # the child's crash is not the kernel's
        os.waitpid(pid, 0)
        pid = os.fork()
        if pid == 0:
            sys.exit(0)  # runs atexit handlers in the child
        os.waitpid(pid, 0)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert child.returncode == -signal.SIGKILL
    message = next_kernel()
    assert "pool_work()" in message
    assert "segmentation fault" not in message


def test_stop_restores_faulthandler_and_sigterm(state):
    before_enabled = faulthandler.is_enabled()
    before_term = signal.getsignal(signal.SIGTERM)
    recorder = Recorder(key=KEY)
    recorder.start()
    assert faulthandler.is_enabled()
    recorder.cell_started(1, "x = 1", {})
    recorder.cell_finished()
    recorder.stop()
    assert faulthandler.is_enabled() == before_enabled
    assert signal.getsignal(signal.SIGTERM) == before_term
    assert journals(state) == []
    assert not any(t.name == "kernel_guard-recorder" for t in __import__("threading").enumerate())


def test_an_unwritable_state_dir_disables_recording_quietly(monkeypatch):
    monkeypatch.setenv("KERNEL_GUARD_STATE_DIR", "/dev/null/kernel_guard")
    before = faulthandler.is_enabled()
    recorder = Recorder(key=KEY)
    assert recorder.start() is None
    assert not recorder.active
    recorder.cell_started(1, "x = 1", {})
    recorder.sample(1 << 20)
    recorder.cell_finished()
    recorder.stop()
    assert faulthandler.is_enabled() == before


def test_long_cells_are_truncated(state):
    source = "\n".join(f"line_{i} = {i}" for i in range(1000))
    kernel(state, f"""
        rec.cell_started(1, {source!r}, None)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    [path] = state.rglob("*.json")
    cell = json.loads(path.read_text())["cell"]
    assert len(cell["source"]) == rec_mod.SOURCE_LIMIT and cell["truncated"]
    message = next_kernel()
    quoted = [line for line in message.splitlines() if line.startswith("    line_")]
    assert len(quoted) == SHOWN_LINES
    assert "\n    ...\n" in message


# -- the OOM evidence, from journals and cgroup trees laid out like the kernel's --


def dead_journal(**overrides) -> dict:
    journal = {
        "pid": 999999, "hostname": "h", "boot_time": psutil.boot_time(), "ram_total": 16 << 30,
        "status": "running", "updated": time.time(),
        "cell": {"number": 12, "source": "a = np.ones((20000, 20000))", "started": time.time(),
                 "limits": {}},
        "cgroup": None, "counters": {}, "rss": 100 << 20, "rss_time": time.time(),
    }
    journal.update(overrides)
    return journal


def test_oom_kill_counted_by_the_cgroup():
    directory = os.path.join(FIXTURES, "v1", "sys", "memory", "user.slice", "notebook")
    message = post_mortem(dead_journal(
        cgroup={"version": 1, "directory": directory, "limit_directory": None, "limit": 4 << 30},
        counters={"cgroup_oom_kill": 0},
    ))
    assert ("Likely cause: killed by the out-of-memory killer "
            "(the memory cgroup's oom_kill count went from 0 to 1).") in message
    assert "Memory at the end: the cgroup limit of 4.0 GiB was reached (last measured: 100.0 MiB resident" in message
    assert "%%guard --max-mem 80%" in message


def test_no_new_oom_kill_is_no_evidence():
    directory = os.path.join(FIXTURES, "v2", "sys", "user.slice", "user-1000.slice", "session-1.scope")
    message = post_mortem(dead_journal(
        cgroup={"version": 2, "directory": directory, "limit_directory": None, "limit": 8 << 30},
        counters={"cgroup_oom_kill": 1},
    ))
    assert "Likely cause: unknown" in message


def test_memory_near_the_limit_is_weaker_evidence():
    message = post_mortem(dead_journal(
        cgroup={"version": 2, "directory": "/nonexistent", "limit_directory": None, "limit": 1 << 30},
        rss=1000 << 20,
    ))
    assert "Likely cause: probably killed by the out-of-memory killer (its memory was at 98% of the limit)." in message
    assert "Memory last measured: 1000.0 MiB resident at " in message
    assert "against the cgroup limit of 1.0 GiB" in message


def test_a_reboot_in_between():
    message = post_mortem(dead_journal(boot_time=psutil.boot_time() - 86400))
    assert "Likely cause: the machine restarted while the cell was running." in message


@pytest.mark.parametrize("cap, rss, advised", [
    (819 << 20, 1000 << 20, "--max-mem 655M"),  # died over the cap (memory the cap could not stop)
    (2 << 30, 700 << 20, "--max-mem 560M"),  # died under the cap: less was left than the cap allowed
])
def test_advice_never_repeats_the_cap_that_was_in_force(cap, rss, advised):
    directory = os.path.join(FIXTURES, "v1", "sys", "memory", "user.slice", "notebook")  # one OOM kill since
    message = post_mortem(dead_journal(
        cgroup={"version": 1, "directory": directory, "limit_directory": None, "limit": 4 << 30},
        counters={"cgroup_oom_kill": 0}, rss=rss,
        cell={"number": 4, "source": "x = f()", "started": time.time(), "limits": {"max_mem": cap}},
    ))
    advice = message.splitlines()[-1]
    assert f"`%%guard {advised}`" in advice and "80%" not in advice
    assert f"--max-mem {format_bytes(cap)}" not in advice


def test_advice_after_a_segfault_under_max_depth_does_not_advise_it_again():
    journal = dead_journal(cell={"number": 2, "source": "crash()", "started": time.time(),
                                 "limits": {"max_depth": 3000}})
    message = post_mortem(journal, fault="Fatal Python error: Segmentation fault\n\nCurrent thread 0x1:\n")
    advice = message.splitlines()[-1]
    assert "--max-depth 3,000" in advice and "prevents" not in advice
    assert "which `%%guard --max-depth` prevents" in post_mortem(
        dead_journal(), fault="Fatal Python error: Segmentation fault\n\nCurrent thread 0x1:\n").splitlines()[-1]
