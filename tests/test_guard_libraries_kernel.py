"""Library operations that kill a kernel, end to end: a real ipykernel in a 1 GiB memory cgroup,
where the unguarded control really dies (pandas merge and get_dummies, scipy.sparse toarray, dask
compute) and the guarded cell is refused before it runs, with the line, the size and the cause."""

from __future__ import annotations

import re

import pytest
from kernel_harness import Kernel, require_cgroup

pytest.importorskip("pandas")
pytest.importorskip("scipy.sparse")
pytest.importorskip("dask.array")
pytestmark = [pytest.mark.kernel, pytest.mark.cgroup]

SETUP = """\
import numpy as np, pandas as pd, dask.array as da
from scipy import sparse
left = pd.DataFrame({"name": ["x"] * 12_000, "v": np.arange(12_000)})
right = pd.DataFrame({"name": ["x"] * 12_000, "w": np.arange(12_000.0)})
events = pd.DataFrame({"user_id": np.arange(40_000), "clicks": 1})
rng = np.random.default_rng(0)
X = sparse.csr_matrix((np.ones(200_000), (rng.integers(0, 20_000, 200_000), rng.integers(0, 20_000, 200_000))),
                      shape=(20_000, 20_000))
x = da.ones((20_000, 20_000), chunks=(2_000, 20_000))
%load_ext kernel_guard
"""
# merge: 144 M rows × 3 columns (3.2 GiB; 3.4 GiB with pyarrow's strings); get_dummies: 40,000 × 40,000
# booleans (1.5 GiB); toarray and compute: 20,000 × 20,000 float64 (3.0 GiB). All over the 1 GiB cgroup.
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
    "toarray": ("dense = X.toarray()",
                (r"line 3: X\.toarray\(\) allocates 3\.0 GiB \(float64, shape 20,000 × 20,000\), but only .*: "
                 r"the sparse matrix stores 19\d,\d{3} values, but \.toarray\(\) makes every cell: 20,000 × 20,000 "
                 r"float64 = 3\.0 GiB; keep it sparse .*")),
    "dask compute": ("y = x.compute()",
                     (r"line 3: x\.compute\(\) allocates 3\.0 GiB \(float64, shape 20,000 × 20,000\), but only .*: "
                      r"\.compute\(\) gathers the dask array of 10 chunks into one numpy array in this kernel: "
                      r"20,000 × 20,000 float64 = 3\.0 GiB; reduce it before \.compute\(\) .*\.persist\(\) it on a "
                      r"distributed cluster, or write it out with x\.to_zarr\(\.\.\.\) / dd\.to_parquet\(\.\.\.\)")),
}


@pytest.fixture(scope="module")
def kernel():
    require_cgroup()
    with Kernel("libraries", mem_limit="1G") as k:
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
    assert kernel.eval("[len(left) + len(events), X.shape[0], x.shape[0]]") == [52_000, 20_000, 20_000]  # intact


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


def test_guard_on_refuses_densifying_in_a_later_cell_but_runs_a_reduction(kernel):
    kernel.run("%guard on --max-mem 700M")
    try:
        result = kernel.execute("import numpy as np\ndense = np.asarray(x)", timeout=60)
        assert result.ename == "GuardRefused", str(result)
        assert result.evalue.startswith("line 2: np.asarray(x) allocates 3.0 GiB"), result.evalue
        assert "np.asarray() gathers the dask array" in result.evalue
        assert kernel.run("total = float(x.sum().compute())", timeout=120).ok
        assert kernel.eval("total") == 400_000_000
    finally:
        kernel.run("%guard off")
    assert kernel.eval("'dense' in globals()") is False


def test_torch_tensor_refused_before_it_runs_and_stopped_by_the_cap_when_forced():
    pytest.importorskip("torch", reason="torch is not installed (optional)")
    require_cgroup()
    with Kernel("libs-torch", mem_limit="1G") as k:
        k.run("import torch\n%load_ext kernel_guard", timeout=120)
        result = k.execute("%%guard --max-mem 700M\nt = torch.zeros(30_000, 30_000)", timeout=60)
        assert result.ename == "GuardRefused", str(result)
        assert result.evalue.startswith("line 2: torch.zeros(30_000, 30_000) allocates 3.4 GiB (float32, shape "
                                        "30,000 × 30,000), but only "), result.evalue
        # run anyway: torch's own allocator error under the cap comes out as GuardMemoryError
        result = k.execute("%%guard --max-mem 700M --force\nt = torch.zeros(30_000, 30_000)", timeout=60)
        assert result.ename == "GuardMemoryError", str(result)
        assert "an array of 3.4 GiB in torch would take the kernel from" in result.evalue
        assert k.eval("'t' in globals()") is False
        assert k.eval("int(torch.ones(1000).sum())") == 1000  # the kernel goes on
