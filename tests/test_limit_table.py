"""The table of limits (kernel_guard.runtime.limits.LIMITS): every place a limit
shows up is made from its row, with the words and numbers users saw before."""

from __future__ import annotations

import sys
from dataclasses import fields

from kernel_guard.extension.options import (
    KernelGuard,
    Options,
    Resolved,
    resolve,
    status_parts,
    summary_parts,
    with_limit_arguments,
)
from kernel_guard.runtime.limits import LIMITS, Limits, TypedLimits

NAMES = [limit.name for limit in LIMITS]


def test_every_limit_is_an_option_a_trait_and_a_field_of_each_record():
    from IPython.core.magic_arguments import magic_arguments, real_name

    @magic_arguments()
    @with_limit_arguments
    def magic(line):
        pass

    assert [f.name for f in fields(Limits)] == NAMES
    assert [f.name for f in fields(Resolved)] == [*NAMES, "notice"]
    assert [f.name for f in fields(TypedLimits)] == [f.name for f in fields(Options)][:len(NAMES)] == NAMES
    assert set(NAMES) <= set(KernelGuard.class_trait_names(config=True))
    flags = {flag for action in magic.parser._actions for flag in action.option_strings}
    assert {limit.option for limit in LIMITS} <= flags and real_name(magic) == "magic"


def test_the_status_line_as_before():
    assert status_parts(Options(), resolve(Options(), 8 << 30)) == [
        "no memory cap", "no timeout", f"recursion limit {sys.getrecursionlimit():,}", "no output cap", "no disk limit"]
    options = Options(max_mem="50%", timeout=30.0, max_depth=2000, max_output="1M", max_disk="1K")
    assert status_parts(options, resolve(options, 8 << 30)) == [
        "--max-mem 50% (4.0 GiB)", "--timeout 30 s", "--max-depth 2,000", "--max-output 1.0 MiB", "--max-disk 1.0 KiB"]


def test_the_summary_line_as_before():
    assert summary_parts(resolve(Options(max_mem="1G"), 8 << 30), {}) == ["no timeout"]
    limits = resolve(Options(timeout=2.5, max_depth=5000, max_output="10K", max_disk="1G"), 8 << 30)
    assert summary_parts(limits, {}) == ["timeout 2.5 s", "recursion limit 5,000", "output cap 10.0 KiB",
                                         "disk limit 1.0 GiB"]
    assert summary_parts(limits, {"max_depth": 3000})[1] == "recursion limit 3,000"  # what the runtime set


def test_configured_defaults_become_options():
    from traitlets.config import Config

    config = KernelGuard(config=Config({"KernelGuard": {"timeout": 30.0, "max_disk": "none", "max_output": "1M"}}))
    assert config.defaults() == Options(max_mem="90%", timeout=30.0, max_output="1M")
