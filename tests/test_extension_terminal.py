"""Terminal IPython through a real pty (issue 11, item 5): with auto mode on, Enter
still runs a finished cell, and a multi-line cell still waits for its blank line."""

from __future__ import annotations

import os
import re
import sys

import pytest

pexpect = pytest.importorskip("pexpect")

IPYTHON = os.path.join(os.path.dirname(sys.executable), "ipython")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def terminal(tmp_path):
    if not os.path.exists(IPYTHON):
        pytest.skip("no ipython script beside this Python")
    env = dict(os.environ, IPYTHONDIR=str(tmp_path / "ipython"), KERNEL_GUARD_STATE_DIR=str(tmp_path / "state"),
               TERM="xterm")
    child = pexpect.spawn(IPYTHON, ["--no-banner", "--colors=NoColor"], env=env, encoding="utf-8",
                          timeout=60, dimensions=(40, 200))
    try:
        prompt(child, 1)
        yield child
    finally:
        child.close(force=True)


def prompt(child, number: int) -> str:
    """Wait for ``In [number]:``; return what was printed before it, escapes removed."""
    child.expect(rf"In \[{number}\]:")
    return ANSI.sub("", child.before)


def test_enter_runs_cells_with_auto_mode_on_and_after_it_is_off(terminal):
    terminal.sendline("%load_ext kernel_guard")
    prompt(terminal, 2)
    terminal.sendline("%guard on --timeout 2")
    assert "auto mode on" in prompt(terminal, 3)
    terminal.sendline("40 + 2")
    assert re.search(r"Out\[3\]:\s*42", prompt(terminal, 4))
    terminal.sendline("import time; time.sleep(30)")  # guarded indeed: stopped by auto mode's timeout
    assert "GuardTimeout" in prompt(terminal, 5)
    terminal.send("for i in range(3):\r")  # not finished: the terminal asks for more
    terminal.expect(r"\.\.\.:")
    terminal.send("    print('row', i)\r")
    terminal.expect(r"\.\.\.:")
    terminal.send("\r")
    shown = prompt(terminal, 6)
    assert all(f"row {i}" in shown for i in range(3))
    terminal.sendline("%guard off")
    assert "auto mode off" in prompt(terminal, 7)
    terminal.sendline("6 * 7")
    assert re.search(r"Out\[7\]:\s*42", prompt(terminal, 8))
    terminal.send("%%guard --timeout 30\r")  # a cell magic: it ends with blank lines, as %%time does
    terminal.expect(r"\.\.\.:")
    terminal.send("x = 40 + 2\r")
    terminal.expect(r"\.\.\.:")
    terminal.send("\r\r")
    prompt(terminal, 9)
    terminal.sendline("x")
    assert re.search(r"Out\[9\]:\s*42", prompt(terminal, 10))
