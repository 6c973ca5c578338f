"""kernel_guard.runtime outside IPython: timeouts, recursion, output cap, and that
everything the Guard changes is back afterwards, on every path.

Most tests run their code in a fresh Python process: the Guard changes signal
handlers, rlimits and trace functions, and a mistake must not take pytest down.
Memory caps with real allocations are in test_runtime_memory.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from kernel_guard.runtime import Limits, current_rss
from kernel_guard.runtime.interrupt import SWALLOWED
from kernel_guard.runtime.limits import MAX_SAMPLES

PRELUDE = """
import json, os, resource, signal, sys, threading, time
from kernel_guard.runtime import Guard, Limits, current_rss, safe_max_depth
from kernel_guard.errors import GuardMemoryError, GuardOutputLimit, GuardTimeout

def state():
    return {
        "data": resource.getrlimit(resource.RLIMIT_DATA),
        "stack": resource.getrlimit(resource.RLIMIT_STACK),
        "handlers": {int(s): repr(signal.getsignal(s)) for s in signal.valid_signals()},
        "itimer": signal.getitimer(signal.ITIMER_REAL)[0] > 0,
        "recursion": sys.getrecursionlimit(),
        "trace": repr(sys.gettrace()),
        "thread_trace": repr(threading.gettrace()),
        "streams": [id(sys.stdout), id(sys.stderr)],
        "threads": threading.active_count(),
    }

def result(**values):
    print("\\nRESULT " + json.dumps(values), flush=True)
"""


def run_child(body: str, *, timeout: float = 60, **popen) -> tuple[subprocess.CompletedProcess, dict]:
    """Run PRELUDE + ``body`` in a new interpreter; return the process and the
    keyword arguments of its last ``result(...)`` call."""
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(body)],
        capture_output=True, text=True, timeout=timeout, **popen,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    return proc, json.loads(lines[-1][7:]) if lines else {}


def check(proc: subprocess.CompletedProcess, result: dict, returncodes=(0,)) -> dict:
    assert proc.returncode in returncodes and result, f"rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return result


# -- the API ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_mem": 0}, "max_mem must be more than 0"),
        ({"timeout": -1}, "timeout must be a finite number more than 0"),
        ({"timeout": float("nan")}, "timeout must be a finite number more than 0"),
        ({"max_depth": 0}, "max_depth must be at least 1"),
        ({"max_output": -5}, "max_output must be at least 0"),
    ],
)
def test_limits_reject_impossible_values_with_one_line(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Limits(**kwargs)


def test_limits_reject_non_numbers():
    with pytest.raises(TypeError, match="max_mem must be a number, not str"):
        Limits(max_mem="4G")
    with pytest.raises(TypeError, match="max_depth must be a number, not bool"):
        Limits(max_depth=True)


def test_current_rss_agrees_with_psutil():
    import psutil

    assert abs(current_rss() - psutil.Process().memory_info().rss) < 8 * 1024 * 1024


def test_safe_max_depth_follows_the_stack_limit():
    # 8 MiB stack here (the Linux default): 7 MiB at 2 KiB per level.
    proc, result = run_child("""
        seen = {}
        for size in (8 << 20, 16 << 20):
            resource.setrlimit(resource.RLIMIT_STACK, (size, resource.getrlimit(resource.RLIMIT_STACK)[1]))
            seen[str(size)] = safe_max_depth()
        result(**seen)
    """)
    result = check(proc, result)
    assert result[str(8 << 20)] == 3584
    assert result[str(16 << 20)] == 7680


def test_samples_stay_bounded_and_ordered():
    from kernel_guard.runtime.interrupt import Interrupter
    from kernel_guard.runtime.watchdog import Watch

    dog = Watch(Interrupter(None), cap=None, timeout=None, on_sample=None)
    for i in range(50_000):
        dog.record(dog.start_time + i * 0.02, i)
    times = [t for t, _ in dog.samples]
    assert len(dog.samples) <= MAX_SAMPLES
    assert times == sorted(times) and times[-1] > 900  # spans the whole run, thinned evenly
    assert dog.peak == 49_999


# -- timeouts ---------------------------------------------------------------------------

TIMEOUT_CELLS = {
    "sleep": "time.sleep(30)",
    "event-wait": "threading.Event().wait(30)",
    "busy-loop": "while True:\n    pass",
    "except-exception-loop": """
        while True:
            try:
                time.sleep(0.01)
            except Exception:
                pass
    """,
    "bare-except-loop": """
        n = 0
        while True:
            try:
                n += 1
            except:
                pass
    """,
    "nested-bare-except-loops": """
        while True:
            try:
                while True:
                    try:
                        time.sleep(0.001)
                    except:
                        pass
            except:
                pass
    """,
    "except-baseexception-continue-in-a-function": """
        def retry():
            while True:
                try:
                    sum(range(100))
                except BaseException as error:
                    continue
        while True:
            try:
                retry()
            except BaseException:
                pass
    """,
    "generator-that-swallows": """
        def ticks():
            while True:
                try:
                    yield 1
                except:
                    pass
        for _ in ticks():
            try:
                pass
            except:
                pass
    """,
}


@pytest.mark.parametrize("cell", TIMEOUT_CELLS, ids=str)
def test_timeout_stops_the_cell(cell):
    proc, result = run_child(f"""
        before = state()
        start = time.monotonic()
        try:
            with Guard(Limits(timeout=0.3)) as guard:
                exec({textwrap.dedent(TIMEOUT_CELLS[cell])!r}, {{"time": time, "threading": threading}})
            error = None
        except GuardTimeout as e:
            error = str(e)
        result(error=error, elapsed=time.monotonic() - start, hit=guard.report.limit_hit,
               restored=state() == before)
    """)
    result = check(proc, result)
    message = "the cell ran longer than its 0.3 s timeout"
    if "except:" in TIMEOUT_CELLS[cell] or "except BaseException" in TIMEOUT_CELLS[cell]:
        # raised again past the handler, the message says so (unless the first raise got out)
        assert result["error"] in (message, message + SWALLOWED), result["error"]
    else:
        assert result["error"] == message
    assert 0.3 <= result["elapsed"] < 0.5  # escaping needs no 0.25 s re-send
    assert result["hit"] == "timeout" and result["restored"]


def test_timeout_lets_finally_blocks_and_with_exits_run():
    proc, result = run_child("""
        cell = '''
        lock = threading.Lock()
        cleanups = []
        while True:
            try:
                with lock:
                    try:
                        time.sleep(0.05)
                    finally:
                        cleanups.append(lock.locked())
            except:
                held.append(lock.locked())
        '''
        held = []
        namespace = {"time": time, "threading": threading, "held": held}
        try:
            with Guard(Limits(timeout=0.2)):
                exec(cell, namespace)
        except GuardTimeout:
            pass
        result(held=held, cleanups=namespace["cleanups"], locked=namespace["lock"].locked())
    """)
    result = check(proc, result)
    assert result["cleanups"] and all(result["cleanups"])  # finally ran, inside the with
    assert not any(result["held"]) and not result["locked"]  # the with released the lock


def test_no_timeout_escapes_after_the_block_ended():
    # Blocks that end right at their deadline: the error is raised inside the block
    # or not at all, never afterwards (in ipykernel it would end the kernel).
    proc, result = run_child("""
        inside = 0
        for i in range(40):
            try:
                with Guard(Limits(timeout=0.02)):
                    time.sleep(0.016 + 0.008 * i / 39)  # from well before to well after
            except GuardTimeout:
                inside += 1
            for _ in range(20000):
                pass
        time.sleep(0.3)
        result(inside=inside)
    """)
    assert 0 < check(proc, result)["inside"] < 40


def test_a_signal_arriving_after_the_cell_does_nothing():
    from kernel_guard.errors import GuardMemoryError
    from kernel_guard.runtime.interrupt import SIGNAL, Interrupter

    interrupter = Interrupter(None)
    interrupter.timeout_message = interrupter.memory_message = "late"
    assert interrupter._on_signal(SIGNAL, sys._getframe()) is None  # not armed: no raise
    interrupter.armed, interrupter.timeout_message = True, None
    with pytest.raises(GuardMemoryError, match="late"):
        interrupter._on_signal(SIGNAL, sys._getframe())


def test_timeout_in_a_c_call_is_raised_when_it_returns():
    proc, result = run_child("""
        start = time.monotonic()
        try:
            with Guard(Limits(timeout=0.2)):
                os.system("sleep 0.6")  # libc's system() waits out signals
        except GuardTimeout as e:
            error = str(e)
        result(error=error, elapsed=time.monotonic() - start)
    """)
    result = check(proc, result)
    assert result["error"].startswith("the cell ran longer than its 0.2 s timeout")
    assert 0.6 <= result["elapsed"] < 0.8


def test_timeout_needs_the_main_thread():
    proc, result = run_child("""
        errors = []
        def worker():
            try:
                with Guard(Limits(timeout=1)):
                    pass
            except RuntimeError as e:
                errors.append(str(e))
            with Guard(Limits(max_output=5)) as guard:  # no signals needed: fine
                pass
            errors.append(guard.report.limit_hit)
        t = threading.Thread(target=worker); t.start(); t.join()
        result(errors=errors)
    """)
    errors = check(proc, result)["errors"]
    assert "need signals, which only the main thread" in errors[0] and errors[1] is None


# -- recursion --------------------------------------------------------------------------


def test_max_depth_raises_recursion_error_and_restores_the_limit():
    proc, result = run_child("""
        sys.setrecursionlimit(1234)
        def down(n):
            return down(n + 1)
        try:
            with Guard(Limits(max_depth=300)) as guard:
                inside = sys.getrecursionlimit()
                down(0)
        except RecursionError:
            pass
        result(inside=inside, after=sys.getrecursionlimit(), hit=guard.report.limit_hit,
               notice=guard.report.depth_notice)
    """)
    result = check(proc, result)
    assert result == {"inside": 300, "after": 1234, "hit": "recursion", "notice": None}


@pytest.mark.parametrize("kind", ["map", "sorted-key", "lru_cache", "repr"])
def test_huge_max_depth_is_clamped_so_recursion_through_c_never_crashes(kind):
    # Without the clamp each of these ends the process with SIGSEGV (8 MiB stack):
    # map near 13,000 levels, sorted(key=) near 1,600, lru_cache near 16,000.
    cells = {
        "map": "def f(n):\n    return list(map(f, [n + 1]))\nf(0)",
        "sorted-key": "def f(n):\n    return sorted([n], key=lambda x: f(x + 1))\nf(0)",
        "lru_cache": "import functools\n@functools.lru_cache(None)\ndef f(n):\n    return f(n + 1)\nf(0)",
        "repr": "class R:\n    def __init__(s, i):\n        s.i = i\n"
                "    def __repr__(s):\n        return 'R(%r)' % (s.i,)\n"
                "x = None\nfor _ in range(200000):\n    x = R(x)\nrepr(x)",
    }
    proc, result = run_child(f"""
        stack = resource.getrlimit(resource.RLIMIT_STACK)
        try:
            with Guard(Limits(max_depth=10**6)) as guard:
                inside = sys.getrecursionlimit()
                exec({cells[kind]!r}, {{}})
        except RecursionError:
            error = "RecursionError"
        result(error=error, inside=inside, notice=guard.report.depth_notice,
               hit=guard.report.limit_hit, stack_restored=resource.getrlimit(resource.RLIMIT_STACK) == stack)
    """)
    result = check(proc, result)
    assert result["error"] == "RecursionError" and result["hit"] == "recursion"
    assert 10_000 < result["inside"] < 10**6
    assert result["notice"].startswith(
        f"max_depth 1,000,000 lowered to {result['inside']:,}: deeper recursion through C code"
    )
    assert result["stack_restored"]


def test_max_depth_below_the_current_depth_is_raised_with_a_notice():
    proc, result = run_child("""
        def nest(n):
            if n:
                return nest(n - 1)
            with Guard(Limits(max_depth=5)) as guard:
                inside = sys.getrecursionlimit()
            return inside, guard.report.depth_notice
        inside, notice = nest(100)
        result(inside=inside, notice=notice)
    """)
    result = check(proc, result)
    assert result["inside"] > 100
    assert result["notice"].startswith(
        f"max_depth 5 raised to {result['inside']}: the code running the cell is already"
    )


def test_a_recursion_limit_in_force_above_the_stack_is_lowered_without_max_depth():
    # sys.setrecursionlimit(100_000) in an earlier cell, then recursion through C
    # code: SIGSEGV under a Guard that left the limit alone.
    proc, result = run_child("""
        def f(n):
            return list(map(f, [n + 1]))
        sys.setrecursionlimit(100_000)
        try:
            with Guard(Limits(max_output=1 << 20)) as guard:
                inside = sys.getrecursionlimit()
                f(0)
        except RecursionError:
            error = "RecursionError"
        after = sys.getrecursionlimit()
        sys.setrecursionlimit(2000)
        with Guard(Limits()) as fits:  # a limit the stack holds is left alone
            fits_inside = sys.getrecursionlimit()
        result(error=error, inside=inside, after=after, notice=guard.report.depth_notice,
               fits_inside=fits_inside, fits_notice=fits.report.depth_notice)
    """)
    result = check(proc, result)
    assert result["error"] == "RecursionError" and result["after"] == 100_000
    assert result["inside"] < 100_000
    assert result["notice"].startswith(f"the recursion limit in force, 100,000, lowered to {result['inside']:,} "
                                       "for the cell: deeper recursion through C code")
    assert result["fits_inside"] == 2000 and result["fits_notice"] is None


# -- output -------------------------------------------------------------------------------


def test_output_cap_prints_what_fits_then_stops():
    proc, result = run_child("""
        sys.stdout.flush()
        try:
            with Guard(Limits(max_output=99)) as guard:
                for i in range(10**6):
                    print("é" * 7)  # 14 + 1 bytes of UTF-8 a line
        except GuardOutputLimit as e:
            error = str(e)
        sys.stdout.flush()
        print()
        result(error=error, hit=guard.report.limit_hit, i=i)
    """)
    result = check(proc, result)
    assert result["error"] == "the cell printed 99 B (6 lines), all its output cap allows, and was stopped"
    assert result["hit"] == "output" and result["i"] == 6
    printed = proc.stdout.split("\n\nRESULT")[0].rstrip("\n")
    assert printed == ("é" * 7 + "\n") * 6 + "é" * 4  # 90 bytes, then 8 of the 9 left: no half character


def test_output_cap_counts_stderr_and_keeps_stopping_code_that_swallows_it():
    proc, result = run_child("""
        errors = 0
        with Guard(Limits(max_output=50)) as guard:
            for i in range(100):
                try:
                    print("x" * 9, file=sys.stderr if i % 2 else sys.stdout)
                except Exception:
                    errors += 1
        print("after", flush=True)
        result(errors=errors, hit=guard.report.limit_hit)
    """)
    result = check(proc, result)
    assert result["errors"] == 95 and result["hit"] == "output"
    assert proc.stdout.count("x" * 9) + proc.stderr.count("x" * 9) == 5
    assert "after" in proc.stdout  # the real stream is back


# -- restoring ----------------------------------------------------------------------------

ENDINGS = {
    "success": "x = 1",
    "error": "raise ValueError('boom')",
    "timeout": "time.sleep(10)",
    "memory": "import numpy; numpy.ones(10**12)",
    "output": "print('y' * 5000)",
    "recursion": "def f():\n    return f()\nf()",
    "keyboard-interrupt": "os.kill(os.getpid(), signal.SIGINT); time.sleep(10)",
}


@pytest.mark.parametrize("ending", ENDINGS, ids=str)
def test_everything_is_restored_on_every_path(ending):
    # Start from non-default values, so that "restored" cannot mean "reset".
    proc, result = run_child(f"""
        from kernel_guard.runtime.interrupt import SIGNAL
        resource.setrlimit(resource.RLIMIT_DATA, (64 << 30, resource.RLIM_INFINITY))
        sys.setrecursionlimit(1500)
        signal.signal(SIGNAL, lambda *a: None)
        signal.signal(signal.SIGALRM, lambda *a: None)
        def tracer(frame, event, arg):
            return None
        sys.settrace(tracer)
        threading.settrace(tracer)
        before = state()
        try:
            with Guard(Limits(max_mem=4 << 30, timeout=0.5, max_depth=10**6, max_output=1000)) as guard:
                exec({ENDINGS[ending]!r}, {{"time": time, "os": os, "signal": signal}})
            error = None
        except BaseException as e:
            error = type(e).__name__
        after = state()
        sys.settrace(None)
        result(error=error, hit=guard.report.limit_hit,
               changed={{k: [before[k], after[k]] for k in before if before[k] != after[k]}})
    """)
    # Python ends by SIGINT after a KeyboardInterrupt left exec(), even when caught.
    result = check(proc, result, (-2,) if ending == "keyboard-interrupt" else (0,))
    if ending == "recursion":  # CPython drops a trace function that hits the limit itself
        result["changed"].pop("trace", None)
    expected = {
        "success": (None, None), "error": ("ValueError", None), "timeout": ("GuardTimeout", "timeout"),
        "memory": ("GuardMemoryError", "memory"), "output": ("GuardOutputLimit", "output"),
        "recursion": ("RecursionError", "recursion"), "keyboard-interrupt": ("KeyboardInterrupt", None),
    }[ending]
    assert (result["error"], result["hit"]) == expected
    assert result["changed"] == {}


def test_a_nested_guard_runs_under_the_tighter_limits_and_gives_the_outer_ones_back():
    proc, result = run_child("""
        before = state()
        def limits_now():
            return [resource.getrlimit(resource.RLIMIT_DATA)[0], sys.getrecursionlimit(), id(sys.stdout)]
        with Guard(Limits(max_mem=4 << 30, timeout=30, max_depth=5000, max_output=10_000)) as outer:
            outside = limits_now()
            start = time.monotonic()
            try:
                with Guard(Limits(max_mem=2 << 30, timeout=1, max_depth=1000, max_output=100)) as inner:
                    tight = limits_now()
                    time.sleep(3)
            except GuardTimeout as e:
                tight_error, tight_after = str(e), time.monotonic() - start
            after_tight = limits_now()
            try:
                with Guard(Limits(max_mem=8 << 30, timeout=60, max_depth=100_000, max_output=1 << 20)):
                    loose = limits_now()
                    print("x" * 20_000)
            except GuardOutputLimit as e:
                loose_error = str(e)
            after_loose = limits_now()
            endings = []
            for ending in (ValueError, KeyboardInterrupt):
                try:
                    with Guard(Limits(max_mem=1 << 30, timeout=5, max_depth=700, max_output=50)):
                        if ending is KeyboardInterrupt:
                            signal.raise_signal(signal.SIGINT)  # as the notebook's stop button
                        raise ending("x")
                except (ValueError, KeyboardInterrupt) as e:
                    endings.append([type(e).__name__, limits_now() == outside])
            try:
                with outer:
                    pass
            except RuntimeError as e:
                reentered = str(e)
            errors = []
            def other():
                try:
                    with Guard(Limits(max_depth=100)):
                        pass
                except RuntimeError as e:
                    errors.append(str(e))
            thread = threading.Thread(target=other)
            thread.start()
            thread.join()
        result(outside=outside, tight=tight, tight_error=tight_error, tight_after=tight_after,
               hit=inner.report.limit_hit, after_tight=after_tight, loose=loose, loose_error=loose_error,
               after_loose=after_loose, endings=endings, reentered=reentered, thread=errors,
               outer_hit=outer.report.limit_hit,
               changed=[k for k, v in state().items() if v != before[k]])
    """)
    result = check(proc, result)
    outside = result["outside"]
    tight = result["tight"]
    assert tight[0] < outside[0] and tight[1] == 1000 and tight[2] != outside[2]  # the inner limits hold inside
    assert result["tight_error"] == "the cell ran longer than its 1 s timeout"
    assert 0.9 < result["tight_after"] < 2.9 and result["hit"] == "timeout"
    assert result["after_tight"] == outside == result["after_loose"]  # the outer limits exactly, after either
    loose = result["loose"]
    assert loose[0] <= outside[0] and loose[1] == outside[1]  # a looser inner limit does not loosen the outer
    assert result["loose_error"].startswith("the cell printed 9.8 KiB")  # the outer output cap stopped it
    assert result["endings"] == [["ValueError", True], ["KeyboardInterrupt", True]]  # on error and interrupt too
    assert result["reentered"] == "kernel_guard: this Guard is already running; use a new Guard for a nested block"
    assert result["thread"] == [("kernel_guard: a Guard is already running in another thread; "
                                 "guarded blocks nest only on the thread of the outer one")]
    assert result["outer_hit"] == "output" and result["changed"] == []  # its cap stopped the inner print


def test_the_outer_deadline_stops_a_looser_inner_block_and_then_the_outer_one():
    proc, result = run_child("""
        start = time.monotonic()
        caught = []
        try:
            with Guard(Limits(timeout=1)) as outer:
                try:
                    with Guard(Limits(timeout=60, max_depth=2000)) as inner:
                        time.sleep(5)
                except GuardTimeout as e:
                    caught.append([str(e), round(time.monotonic() - start, 1), inner.report.limit_hit])
                time.sleep(5)
        except GuardTimeout as e:
            caught.append([str(e), round(time.monotonic() - start, 1), outer.report.limit_hit])
        result(caught=caught)
    """)
    (inner, inner_at, inner_hit), (outer, outer_at, outer_hit) = check(proc, result)["caught"]
    assert inner == outer == "the cell ran longer than its 1 s timeout"
    assert 0.9 < inner_at < 2.9 and inner_at <= outer_at < 3.9 and inner_hit == outer_hit == "timeout"


def test_without_signals_python_code_is_still_stopped_and_ctrl_c_still_works():
    # As on Windows (no POSIX signal, no RLIMIT_DATA): the handler goes on SIGINT,
    # raised by _thread.interrupt_main. Entering used to raise RuntimeError, with
    # no report.
    proc, result = run_child("""
        from kernel_guard.runtime import interrupt, memcap
        from kernel_guard.runtime.guard import NO_RLIMIT, NO_SIGNALS
        from kernel_guard.runtime.rss import rss_and_anon
        interrupt.SIGNAL = None
        memcap.ENABLED = False
        before = state()
        start = time.monotonic()
        try:
            with Guard(Limits(max_mem=8 << 30, timeout=0.3)) as guard:
                while True:
                    pass
        except GuardTimeout as e:
            timeout = str(e)
        elapsed = time.monotonic() - start
        try:
            with Guard(Limits(max_mem=rss_and_anon()[1] + (64 << 20))) as capped:
                chunks = []
                while True:
                    chunks.append(bytearray(1 << 20))
        except GuardMemoryError as e:
            memory = str(e)
        del chunks
        try:
            with Guard(Limits(timeout=5)) as interrupted:
                os.kill(os.getpid(), signal.SIGINT)  # the user's Ctrl-C
                time.sleep(2)
        except KeyboardInterrupt:
            ctrl_c = "KeyboardInterrupt"
        result(timeout=timeout, elapsed=elapsed, report=guard.report.limit_hit,
               notices=guard.report.notices == [NO_SIGNALS, NO_RLIMIT], memory=memory,
               memory_hit=capped.report.limit_hit, ctrl_c=ctrl_c, ctrl_c_report=interrupted.report is not None,
               restored=state() == before)
    """)
    result = check(proc, result)
    assert result["timeout"] == "the cell ran longer than its 0.3 s timeout" and result["elapsed"] < 1
    assert result["report"] == "timeout" and result["notices"]
    assert result["memory"].startswith("the cell's memory reached ") and result["memory_hit"] == "memory"
    assert result["ctrl_c"] == "KeyboardInterrupt" and result["ctrl_c_report"]
    assert result["restored"]


def test_one_kept_watchdog_serves_every_guard_and_costs_nothing_between():
    proc, result = run_child("""
        from kernel_guard.runtime import watchdog
        threads = threading.active_count()
        watchdog.keep()
        kept = threading.active_count()
        idents = set()
        for _ in range(20):
            with Guard(Limits(max_mem=8 << 30, timeout=5, max_output=1 << 20)):
                idents.update(t.ident for t in threading.enumerate() if t.name == "kernel_guard watchdog")
        try:
            with Guard(Limits(timeout=0.2)):
                time.sleep(5)
        except GuardTimeout:
            timed_out = True
        tid = watchdog.kept()._thread.native_id
        def cpu_ticks():  # utime + stime of the watchdog thread
            fields = open(f"/proc/self/task/{tid}/stat").read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])
        ticks = cpu_ticks()
        time.sleep(1)
        idle = cpu_ticks() - ticks
        watchdog.release()
        result(threads=threads, kept=kept, idents=len(idents), timed_out=timed_out, idle=idle,
               released=threading.active_count(), alive=tid in [t.native_id for t in threading.enumerate()])
    """)
    result = check(proc, result)
    assert result["kept"] == result["threads"] + 1 and result["idents"] == 1  # the same thread every time
    assert result["timed_out"] and result["idle"] == 0  # blocked between blocks: no CPU at all
    assert result["released"] == result["threads"] and not result["alive"]


def test_on_sample_reports_memory_about_once_a_second_from_another_thread():
    proc, result = run_child("""
        calls = []
        with Guard(Limits(timeout=10), on_sample=lambda rss: calls.append((rss, threading.get_ident()))) as guard:
            time.sleep(2.1)
        result(calls=len(calls), sizes=all(c[0] > 10 << 20 for c in calls),
               other_thread=all(c[1] != threading.get_ident() for c in calls),
               samples=len(guard.report.samples), elapsed=guard.report.elapsed,
               peak_ok=guard.report.peak_rss >= max(s[1] for s in guard.report.samples))
    """)
    result = check(proc, result)
    assert result["calls"] == 3 and result["sizes"] and result["other_thread"]
    assert 30 <= result["samples"] <= 50  # every 50 ms: memory stands still
    assert 2.1 <= result["elapsed"] < 2.3 and result["peak_ok"]
