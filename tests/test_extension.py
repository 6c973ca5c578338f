"""The IPython extension in a real ipykernel: loading, options, configuration, the
%guard commands, refusals and unloading. Limits under load are in
test_extension_limits.py (inside a memory cgroup)."""

from __future__ import annotations

import re

import pytest
from kernel_harness import Kernel

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def kernel():
    with Kernel("ext") as k:
        yield k


def load(kernel):
    kernel.run("%load_ext kernel_guard")


def test_unload_restores_every_hook_and_the_process_state(kernel):
    hooks = (
        "get_ipython().find_line_magic('load_ext') and "  # IPython's own magics, loaded lazily
        "[len(get_ipython().input_transformers_cleanup),"
        " {e: len(c) for e, c in get_ipython().events.callbacks.items()},"
        " sorted(get_ipython().magics_manager.magics['line']),"
        " sorted(get_ipython().magics_manager.magics['cell']),"
        " [type(c).__name__ for c in get_ipython().configurables],"
        " __import__('faulthandler').is_enabled()]"
    )
    before, state = kernel.eval(hooks), kernel.process_state()
    load(kernel)
    loaded = kernel.eval(hooks)
    assert "guard" in loaded[2] and "guard" in loaded[3]
    kernel.run("%%guard --timeout 5 --max-output 1M --max-depth 500\nx = 1")
    kernel.run("%guard on --timeout 5")
    kernel.run("%unload_ext kernel_guard")
    assert kernel.eval(hooks) == before
    assert kernel.process_state() == state
    assert kernel.execute("%%guard\n1").ename == "UsageError"  # the magic is gone
    load(kernel)


def test_help_shows_every_option(kernel):
    load(kernel)
    page = kernel.run("%%guard?").payload[0]["data"]["text/plain"]
    for option in ("--max-mem SIZE", "--timeout SECONDS", "--max-depth N", "--max-output SIZE",
                   "--force", "--dry-run", "--no-lint", "--verbose", "80%"):
        assert option in page
    assert "--auto-cell" not in page  # internal to auto mode
    page = kernel.run("%guard?").payload[0]["data"]["text/plain"]
    for command in ("%guard on", "%guard off", "%guard check", "%guard doctor", "%guard history"):
        assert command in page


@pytest.mark.parametrize("line, message", [
    ("--max-mem 4X", "argument --max-mem: invalid size '4X'"),
    ("--max-mem 0", "argument --max-mem: invalid size '0'"),
    ("--max-mem 120%", "a percentage must be in (0, 100]"),
    ("--max-output 10%", "a percentage is not allowed here"),
    ("--timeout soon", "argument --timeout: invalid time 'soon'"),
    ("--timeout 0", "argument --timeout: invalid time '0'"),
    ("--max-depth -5", "argument --max-depth: invalid depth '-5'"),
    ("--frobnicate", "unrecognized arguments: --frobnicate"),
])
def test_bad_option_is_a_one_line_usage_error_and_nothing_runs(kernel, line, message):
    load(kernel)
    kernel.run("ran = False")
    result = kernel.execute(f"%%guard {line}\nran = True")
    assert result.ename == "UsageError"
    assert message in result.evalue
    assert len(result.text.strip().splitlines()) == 1, result.text
    assert kernel.eval("ran") is False


def test_status_on_off(kernel):
    load(kernel)
    kernel.run("%guard off")
    status = kernel.run("%guard").plain
    assert status.startswith("kernel_guard: auto mode off\n  `%guard on [OPTIONS]` guards every cell\n"), status
    assert "--max-mem 90% (" in status  # the configured default, resolved
    assert "it can get" in status and "available now" in status
    on = kernel.run("%guard on --timeout 2 --max-output 1M").plain
    assert "every cell runs as `%%guard --max-mem 90% --timeout 2 --max-output 1M`" in on
    assert "auto mode on" in kernel.run("%guard").plain
    assert "--timeout 2 s" in kernel.run("%guard status").plain
    assert "auto mode off" in kernel.run("%guard off").plain
    assert "auto mode off" in kernel.run("%guard").plain


@pytest.mark.parametrize("line, message", [
    ("%guard bogus", "unknown %guard command 'bogus'"),
    ("%guard on --dry-run", "--dry-run cannot be used with `%guard on`"),
    ("%guard on --max-mem lots", "invalid size 'lots'"),
    ("%guard off now", "`%guard off` takes no arguments"),
])
def test_bad_guard_command_is_a_one_line_usage_error(kernel, line, message):
    load(kernel)
    result = kernel.execute(line)
    assert result.ename == "UsageError" and message in result.evalue
    assert len(result.text.strip().splitlines()) == 1, result.text


def test_messages_are_html_with_a_plain_text_fallback(kernel):
    load(kernel)
    result = kernel.run("%guard")
    assert result.displays and all({"text/html", "text/plain"} <= set(d) for d in result.displays)
    assert "<div" in result.html and "auto mode" in result.html


def test_configuration_through_traitlets():
    config = (
        "c.InteractiveShellApp.extensions = ['kernel_guard']\n"
        "c.KernelGuard.max_mem = '4G'\n"
        "c.KernelGuard.timeout = 30\n"
        "c.KernelGuard.max_output = '2M'\n"
        "c.KernelGuard.auto = True\n"
    )
    with Kernel("extcfg", ipython_config=config) as k:
        status = k.run("%guard").plain
        assert status.startswith("kernel_guard: auto mode on\n  every cell runs as "
                                 "`%%guard --max-mem 4G --timeout 30 --max-output 2M`\n"), status
        assert "--max-mem 4.0 GiB" in status and "--timeout 30 s" in status
        # %config reaches the loaded extension, as for any IPython configurable
        k.run("%config KernelGuard.max_depth = 500")
        assert "--max-depth 500" in k.run("%guard off\n%guard").plain


def test_bad_configuration_is_a_one_line_usage_error():
    with Kernel("extbad", ipython_config="c.KernelGuard.max_mem = '4X'\n") as k:
        result = k.execute("%load_ext kernel_guard")
        assert result.ename == "UsageError"
        assert "c.KernelGuard.max_mem" in result.evalue and "'4X'" in result.evalue
        assert len(result.text.strip().splitlines()) == 1, result.text


def test_guarded_cell_behaves_like_a_normal_cell(kernel):
    load(kernel)
    result = kernel.run("%%guard\nkept = 41\nkept + 1")
    assert result.results == [{"text/plain": "42"}]
    assert kernel.eval("kept") == 41
    assert kernel.run("%%guard\nkept + 1;").results == []  # a trailing ; silences, as in any cell
    shell_syntax = kernel.run("%%guard\nfiles = !echo one two\n%time joined = ' '.join(files)\njoined")
    assert shell_syntax.results == [{"text/plain": "'one two'"}]
    nested = kernel.run("%%guard --timeout 10\n%%capture captured\nprint('inside')")
    assert nested.stdout == "" and kernel.eval("captured.stdout") == "inside\n"


def test_errors_point_at_the_cell_as_shown(kernel):
    load(kernel)
    result = kernel.execute("%%guard --timeout 10\nx = 1\n1 / 0")
    assert result.ename == "ZeroDivisionError"
    assert "----> 3 1 / 0" in result.error_text
    assert "run_cell_magic" not in result.error_text and "kernel_guard" not in result.error_text


def test_syntax_error_is_shown_as_for_any_cell_and_nothing_runs(kernel):
    load(kernel)
    kernel.run("ran = False")
    result = kernel.execute("%%guard\nran = True\ny = (1,")
    assert result.ename == "SyntaxError"
    assert "line 3" in result.error_text and "kernel_guard" not in result.error_text
    assert kernel.eval("ran") is False


def test_top_level_await(kernel):
    load(kernel)
    kernel.run("import asyncio")
    result = kernel.execute("%%guard\nawait asyncio.sleep(0)")
    assert result.ename == "UsageError" and "top-level `await`" in result.evalue
    kernel.run("%guard on --timeout 5")
    try:  # auto mode leaves such cells to IPython's own runner
        assert kernel.run("await asyncio.sleep(0)\n'awaited'").results == [{"text/plain": "'awaited'"}]
    finally:
        kernel.run("%guard off")


def test_kernel_killer_is_refused_with_its_line(kernel):
    load(kernel)
    result = kernel.execute("%%guard\nimport os\nos._exit(3)")
    assert result.ename == "GuardRefused"
    # the whole reason in the message, for logs and nbclient
    assert result.evalue == (
        "line 3: KG501 os._exit() ends the kernel process at once; raise an exception to stop instead"
    )
    # on screen the box says it all: the error under it is one short line, no traceback
    assert result.error_text.strip() == (
        "GuardRefused: cell not run: line 3: KG501 os._exit() ends the kernel process at once (details above)")
    assert "not run" in result.plain and "not run" in result.html
    assert "raise an exception to stop instead" in result.plain and "<code>os._exit()</code>" in result.html
    assert kernel.is_alive()


def test_kernel_killer_imported_in_an_earlier_cell_is_refused(kernel):
    load(kernel)
    kernel.execute("import os as system\nfrom os import _exit as bye")
    for body, line in (("x = 1\nsystem._exit(3)", 3), ("bye(2)", 2)):
        result = kernel.execute(f"%%guard\n{body}")
        assert result.ename == "GuardRefused", result
        assert result.evalue.startswith(f"line {line}: KG501"), result.evalue
    assert kernel.is_alive()


def test_refusal_stops_a_notebook_run_by_nbclient(kernel):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%load_ext kernel_guard"),
        nbformat.v4.new_code_cell("%%guard\nimport os\nos._exit(0)"),
        nbformat.v4.new_code_cell("after_the_refusal = True"),
    ])
    client = nbclient.NotebookClient(nb, km=kernel.km, timeout=60)
    try:
        with pytest.raises(nbclient.exceptions.CellExecutionError) as raised:
            client.execute()
    finally:
        client.kc.stop_channels()
        kernel.reconnect()
    assert raised.value.ename == "GuardRefused"
    assert raised.value.evalue.startswith("line 3: KG501 os._exit() ends the kernel process at once")
    assert nb.cells[1].outputs[-1]["traceback"] == [
        "\x1b[0;31mGuardRefused\x1b[0m: cell not run: line 3: KG501 os._exit() ends the kernel process at once "
        "(details above)"]
    assert kernel.eval("'after_the_refusal' in globals()") is False


def test_check_and_dry_run(kernel):
    load(kernel)
    kernel.run("import numpy as np\nside = 10**6")
    refused = kernel.run("%guard check grid = np.ones((side, side))").plain
    assert "would be refused" in refused and "7.3 TiB" in refused
    assert "would run" in kernel.run("%guard check small = np.ones(side)").plain
    session = kernel.run("%guard check").plain
    assert "check of this session's" in session
    dry = kernel.run("%%guard --dry-run --max-mem 512M\nvector = np.zeros(side)\nprint('ran')")
    assert "would run" in dry.plain and "7.6 MiB" in dry.plain and dry.stdout == ""
    assert kernel.eval("'vector' in globals()") is False
    # the budget in words: under a cap, or what the machine has left without one. A cap far below what
    # the machine has free: the 90% default is over what a busy machine has available, and then the
    # budget is rightly what is available.
    assert re.search(r"estimated total 7\.6 MiB; [\d.]+ MiB fit under the 512\.0 MiB cap", dry.plain), dry.plain
    uncapped = kernel.run("%%guard --max-mem none --dry-run\nvector = np.zeros(side)").plain
    assert re.search(r"estimated total 7\.6 MiB; [\d.]+ [MG]iB are available to this kernel now", uncapped), uncapped


def test_doctor(kernel):
    load(kernel)
    result = kernel.run("%guard doctor")
    assert result.plain.startswith("Memory this kernel can really get")
    assert "<table>" in result.html


def test_pre_run_checks_that_crash_fail_open(kernel):
    # A bug in the linter or the estimator must never stand between the user and the cell.
    load(kernel)
    kernel.run("import kernel_guard.extension.checks as _kg_checks\n_kg_check_cell = _kg_checks.check_cell\n"
               "def _kg_broken(*args, **kwargs):\n    raise ValueError('estimator bug\\nin two lines')\n"
               "_kg_checks.check_cell = _kg_broken")
    try:
        result = kernel.execute("%%guard --max-mem 90%\nanswer = 41 + 1\nanswer")
        assert result.ok and not result.errors, str(result)
        assert result.results == [{"text/plain": "42"}]
        assert ("pre-run checks failed (ValueError: estimator bug in two lines); "
                "running the cell under its limits") in result.plain, result.plain
        stopped = kernel.execute("%%guard --timeout 1\nwhile True:\n    pass", timeout=30)
        assert stopped.ename == "GuardTimeout", str(stopped)  # still under its limits
    finally:
        kernel.run("_kg_checks.check_cell = _kg_check_cell\ndel _kg_checks, _kg_check_cell, _kg_broken")


def test_without_signals_the_guard_degrades(kernel):
    # As on Windows: no POSIX signal for the watchdog. Every %%guard failed with
    # AttributeError ('NoneType' object has no attribute 'peak_rss').
    load(kernel)
    kernel.run("import time")
    state = kernel.process_state()
    kernel.run("from kernel_guard.runtime import interrupt as _kg_interrupt\n"
               "_kg_signal, _kg_interrupt.SIGNAL = _kg_interrupt.SIGNAL, None")
    try:
        plain = kernel.execute("%%guard\nx = 6 * 7\nx")
        assert plain.ok and plain.results == [{"text/plain": "42"}], str(plain)
        busy = kernel.execute("%%guard --timeout 1\nwhile True:\n    pass", timeout=30)
        assert busy.ename == "GuardTimeout" and busy.elapsed < 5, str(busy)  # Python code is interrupted
        assert busy.plain.count("no POSIX signals") == 1, busy.plain  # what it cannot do, said once
        sleeping = kernel.execute("%%guard --timeout 0.5\ntime.sleep(2)", timeout=30)
        assert sleeping.ename == "GuardTimeout" and sleeping.elapsed >= 2, str(sleeping)  # when the call returns
        assert "no POSIX signals" not in sleeping.plain
        interrupted = kernel.execute("%%guard --timeout 60\ntime.sleep(30)", interrupt_after=1.0)
        assert interrupted.ename == "KeyboardInterrupt" and interrupted.elapsed < 10, str(interrupted)
    finally:
        kernel.run("_kg_interrupt.SIGNAL = _kg_signal\ndel _kg_interrupt, _kg_signal")
    assert kernel.process_state() == state
