"""pandas operations that kill a kernel, end to end: a real ipykernel in a 1 GiB memory
cgroup, where the unguarded control really dies and the guarded cell is refused before
it runs, with the line, the size and the cause."""

from __future__ import annotations

import re

import pytest
from kernel_harness import Kernel, require_cgroup

pytest.importorskip("pandas")
pytestmark = [pytest.mark.kernel, pytest.mark.cgroup]

SETUP = """\
import numpy as np, pandas as pd
left = pd.DataFrame({"name": ["x"] * 12_000, "v": np.arange(12_000)})
right = pd.DataFrame({"name": ["x"] * 12_000, "w": np.arange(12_000.0)})
events = pd.DataFrame({"user_id": np.arange(40_000), "clicks": 1})
%load_ext kernel_guard
"""
# 144 M rows × 3 columns (3.2 GiB; 3.4 GiB with pyarrow's strings), and 40,000 × 40,000 booleans
# (1.5 GiB): both over the 1 GiB cgroup.
CASES = {
    "merge": ("m = left.merge(right, on='name')",
              (r"line 3: left\.merge\(right, on='name'\) allocates 3\.[24] GiB \(mixed, shape 144,000,000 × 3\), "
               r"but only .*: key 'name' = 'x' is on 12,000 rows of the left and 12,000 of the right "
               r"\(144,000,000 rows from it alone\): the inner merge makes 144,000,000 rows × 3 columns, 3\.[24] GiB; "
               r"check the keys with validate='one_to_one' \(or 'many_to_one'\), or drop_duplicates\(subset=\.\.\.\) "
               r"first")),
    "get_dummies": ("d = pd.get_dummies(events['user_id'])",
                    (r"line 3: pd\.get_dummies\(events\['user_id'\]\) allocates 1\.5 GiB \(bool, shape 40,000 × "
                    r"40,000\), but only .*: the series has 40,000 distinct values: get_dummies makes a bool column "
                    r"for each, 40,000 rows × 40,000 columns, 1\.5 GiB; .*sparse=True")),
}


@pytest.fixture(scope="module")
def kernel():
    require_cgroup()
    with Kernel("pandas", mem_limit="1G") as k:
        k.run(SETUP, timeout=120)
        yield k


@pytest.mark.parametrize("case", sorted(CASES))
def test_unguarded_control_is_killed(kernel, case):
    code, _ = CASES[case]
    kills = kernel.cgroup.oom_kills()
    result = kernel.execute(code, timeout=180)
    assert result.died, str(result)
    assert kernel.cgroup.oom_kills() > kills
    kernel.restart()
    kernel.run(SETUP, timeout=120)


@pytest.mark.parametrize("case", sorted(CASES))
def test_guarded_cell_is_refused_before_it_runs_with_its_cause(kernel, case):
    code, expected = CASES[case]
    result = kernel.execute(f"%%guard --max-mem 700M\nran = True\n{code}", timeout=60)
    assert result.ename == "GuardRefused", str(result)
    assert re.fullmatch(expected, result.evalue), result.evalue
    assert kernel.is_alive()
    assert kernel.eval("'ran' in globals()") is False
    assert kernel.eval("len(left) + len(events)") == 52_000  # the namespace is intact


def test_guard_on_refuses_a_merge_in_any_later_cell(kernel):
    kernel.run("%guard on --max-mem 700M")
    try:
        result = kernel.execute("m = pd.merge(left, right, on='name', how='outer')", timeout=60)
        assert result.ename == "GuardRefused", str(result)
        assert result.evalue.startswith(("line 1: pd.merge(left, right, on='name', how='outer') allocates 3.2 GiB",
                                     "line 1: pd.merge(left, right, on='name', how='outer') allocates 3.4 GiB"))
        assert "the outer merge makes 144,000,000 rows" in result.evalue
    finally:
        kernel.run("%guard off")
    assert kernel.eval("'m' in globals()") is False
