"""The output cap in terminal IPython, through a pty as a user sees it (issue 11.9):
the error starts on a line of its own, not glued to the cut line."""

from __future__ import annotations

import os
import re
import sys

import pytest

pexpect = pytest.importorskip("pexpect")
PROMPT = r"In \[\d+\]: "


def test_output_cap_error_is_not_glued_to_the_cut_line(tmp_path):
    env = dict(os.environ, IPYTHONDIR=str(tmp_path), TERM="dumb")
    shell = pexpect.spawn(sys.executable, ["-m", "IPython", "--no-banner", "--colors=NoColor", "--simple-prompt",
                                           "--no-confirm-exit"], env=env, encoding="utf-8", timeout=60)
    try:
        shell.expect(PROMPT)
        shell.sendline("%load_ext kernel_guard")
        shell.expect(PROMPT)
        shell.sendline("get_ipython().run_cell_magic('guard', '--max-output 20', \"print('results tab' * 5)\")")
        shell.expect(PROMPT)
        screen = re.sub(r"\x1b\[[0-9;]*m", "", shell.before).replace("\r\n", "\n")
        assert "\nresults tabresults t\nGuardOutputLimit: the cell printed 20 B" in screen, screen
        shell.sendline("print('after')")  # the terminal's own stream is back
        shell.expect(PROMPT)
        assert "after" in shell.before
        shell.sendline("exit")
        shell.expect(pexpect.EOF)
    finally:
        shell.close(force=True)
