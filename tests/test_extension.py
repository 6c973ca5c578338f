"""The IPython extension in a real ipykernel: loading, options, configuration, the
%guard commands, refusals and unloading. Limits under load are in
test_extension_limits.py (inside a memory cgroup)."""

from __future__ import annotations

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
    assert "auto mode off" in status
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
        assert "auto mode on: every cell runs as `%%guard --max-mem 4G --timeout 30 --max-output 2M`" in status
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
