"""scipy.sparse, scikit-learn pairwise, dask and torch in the estimator: every form against
the real result's size, forms whose sizes are constants known without the library, and
no user code run (booby-trapped subclasses are not read)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from kernel_guard.estimator import estimate

sparse = pytest.importorskip("scipy.sparse")


def only(source: str, namespace: dict | None = None):
    allocations = [a for a in estimate(source, namespace).allocations if a.cause or "torch" in source]
    assert len(allocations) == 1, allocations
    return allocations[0]


def close(estimated: int, real: int, share: float = 0.05) -> bool:
    return abs(estimated - real) <= share * real


# -- scipy.sparse ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "bsr", "dia", "dok", "lil"])
@pytest.mark.parametrize("kind", ["matrix", "array"])
@pytest.mark.parametrize("method", ["toarray", "todense"])
def test_densifying_a_live_sparse_matrix(fmt, kind, method):
    matrix = getattr(sparse, f"{fmt}_{kind}")(sparse.random(300, 500, density=0.02, dtype=np.float32, rng=0))
    found = only(f"dense = X.{method}()", {"X": matrix})
    real = getattr(matrix, method)()
    assert found.shape == real.shape and found.dtype == str(real.dtype) and close(found.nbytes, real.nbytes)
    stored = f"stores {matrix.nnz:,} values, but " if fmt in ("csr", "csc", "coo", "bsr") else ""
    assert f"the sparse matrix {stored}.{method}() makes every cell: 300 × 500 float32" in found.cause
    assert "keep it sparse" in found.cause


def test_toarray_into_the_users_own_buffer_allocates_nothing():
    matrix = sparse.random(30, 50, density=0.1, format="csr")
    assert estimate("X.toarray(out=buf)", {"X": matrix, "buf": np.zeros((30, 50))}).allocations == []


@pytest.mark.parametrize("source, make", [
    ("from scipy import sparse\nD = sparse.random(400, 700, density=0.05).toarray()",
     lambda: sparse.random(400, 700, density=0.05).toarray()),
    ("import scipy.sparse as sp\nimport numpy as np\nD = sp.random(400, 700, 0.01, 'csr', np.float32).todense()",
     lambda: sparse.random(400, 700, 0.01, "csr", np.float32).todense()),
    ("from scipy.sparse import random_array\nD = random_array((50, 60, 7), density=0.1).toarray()",
     lambda: sparse.random_array((50, 60, 7), density=0.1).toarray()),
    ("import scipy.sparse as sp\nD = sp.eye(500, 300).toarray()", lambda: sparse.eye(500, 300).toarray()),
    ("import scipy.sparse as sp\nD = sp.identity(256, dtype='int8').toarray()",
     lambda: sparse.identity(256, dtype="int8").toarray()),
    ("import scipy.sparse as sp\nD = sp.lil_matrix((300, 200)).toarray()",
     lambda: sparse.lil_matrix((300, 200)).toarray()),
])
def test_constant_size_sparse_constructors(source, make):
    found, real = only(source), make()
    assert found.shape == real.shape and found.dtype == str(real.dtype) and close(found.nbytes, real.nbytes)


# -- scikit-learn pairwise -------------------------------------------------------------------


@pytest.mark.parametrize("call", [
    "cosine_similarity(X)", "cosine_similarity(X, Y)", "linear_kernel(X32, Y32)", "euclidean_distances(X32)",
    "euclidean_distances(S, Y)", "pairwise_distances(X, Y, metric='cosine')", "pairwise_distances(X32, Y32)",
    "cosine_similarity(S)", "cosine_similarity(frame)",
])
def test_pairwise_result_is_dense_n_by_m(call):
    pytest.importorskip("sklearn")
    pd = pytest.importorskip("pandas")
    from sklearn.metrics import pairwise

    rng = np.random.default_rng(0)
    ns = {"X": rng.random((400, 20)), "Y": rng.random((150, 20)), "S": sparse.random(400, 20, density=0.2, rng=0,
                                                                                    format="csr")}
    ns.update(X32=ns["X"].astype(np.float32), Y32=ns["Y"].astype(np.float32), frame=pd.DataFrame(ns["X"]))
    source = ("from sklearn.metrics.pairwise import cosine_similarity, linear_kernel, euclidean_distances\n"
              f"from sklearn.metrics import pairwise_distances\nR = {call}")
    found = only(source, ns)
    real = eval(call, {**vars(pairwise), **ns})
    assert found.shape == real.shape and found.dtype == str(real.dtype) and close(found.nbytes, real.nbytes)
    assert "compares every row of X with every row of" in found.cause
    assert "pairwise_distances_chunked" in found.cause


def test_pairwise_functions_bound_in_an_earlier_cell_are_recognised():
    pytest.importorskip("sklearn")
    from sklearn.metrics.pairwise import cosine_similarity as cs

    found = only("R = cs(tfidf)", {"cs": cs, "tfidf": sparse.csr_matrix((100_000, 5_000))})
    assert found.shape == (100_000, 100_000) and found.nbytes == 80_000_000_000
    assert "its result is dense however sparse the input" in found.cause


def test_sparse_output_when_asked_is_not_counted_as_dense():
    pytest.importorskip("sklearn")
    source = "from sklearn.metrics.pairwise import cosine_similarity\nR = cosine_similarity(S, dense_output=False)"
    assert estimate(source, {"S": sparse.random(400, 20, density=0.2, format="csr")}).allocations == []


# -- dask ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("expr", [
    "x.compute()", "np.asarray(x)", "np.array(x, dtype=np.float32)", "x.T.compute()", "x.astype('int8').compute()",
    "x.sum(axis=0).compute()", "x.rechunk((50, 50)).compute()", "(x - x.mean()).compute()",
    "(1 - x * 2).astype('float32').compute()", "(x @ x.T).compute()",
])
def test_computing_a_live_dask_array(expr):
    da = pytest.importorskip("dask.array")
    x = da.random.random((300, 400), chunks=(100, 100))
    found = only(f"import numpy as np\nr = {expr}", {"x": x})
    real = eval(expr, {"x": x, "np": np})
    assert found.shape == real.shape and found.dtype == str(real.dtype) and close(found.nbytes, real.nbytes)
    assert "into one numpy array in this kernel" in found.cause
    for way_out in ("reduce it before .compute()", ".persist()", "to_zarr", "to_parquet"):
        assert way_out in found.cause
    if expr == "x.compute()":
        assert "the dask array of 12 chunks" in found.cause


def test_dask_array_of_unknown_chunk_sizes_is_not_read():
    da = pytest.importorskip("dask.array")
    x = da.random.random((300, 40), chunks=(100, 40))
    assert estimate("r = y.compute()", {"y": x[x[:, 0] > 0.5]}).allocations == []


@pytest.mark.parametrize("source", [
    "import dask.array as da\nr = da.ones((300, 200), chunks=(100, 100)).compute()",
    "import dask.array as da\nr = da.zeros((300, 200), dtype='float32').compute()",
    "import dask.array as da\nr = da.full((30, 20), 7).compute()",
    "import dask.array as da\nr = da.random.random((300, 200)).compute()",
    "import dask.array as da\nr = da.random.normal(0, 1, size=(300, 20)).compute()",
    "import dask.array as da\nimport numpy as np\nr = np.asarray(da.from_array(np.zeros((30, 40))))",
    "import dask.array as da\nr = da.arange(1000).compute()",
])
def test_constant_size_dask_constructors(source):
    pytest.importorskip("dask.array")
    found = only(source)
    namespace: dict = {}
    exec(source, namespace)
    real = namespace["r"]
    assert found.shape == real.shape and found.dtype == str(real.dtype) and close(found.nbytes, real.nbytes)


@pytest.mark.parametrize("expr", ["d.compute()", "d[['a', 'c']].compute()"])
def test_computing_a_dask_frame_of_known_partition_lengths(expr):
    pytest.importorskip("pyarrow")  # dask.dataframe needs it
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    frame = pd.DataFrame({"a": np.arange(10_000), "b": np.ones(10_000, dtype=np.float32), "c": np.zeros(10_000, bool)})
    d = dd.from_pandas(frame, npartitions=7)
    found = only(f"r = {expr}", {"d": d})
    real = eval(expr, {"d": d})
    assert found.shape == real.shape and close(found.nbytes, int(real.memory_usage(deep=True).sum()))
    assert found.cause.startswith(".compute() gathers the dask frame's 7 partitions into one pandas frame")
    assert "to_parquet" in found.cause


def test_dask_frames_of_unknown_lengths_or_sizes_are_not_read():
    pytest.importorskip("pyarrow")
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    d = dd.from_pandas(pd.DataFrame({"a": np.arange(100), "s": ["x"] * 100}), npartitions=2)
    for source in ("r = d[d.a > 5].compute()", "r = d.compute()"):  # filtered; strings of unknown size
        assert estimate(source, {"d": d}).allocations == []


# -- torch ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("call", [
    "torch.zeros(300, 400)", "torch.ones((300, 400), dtype=torch.float64)", "torch.empty([30, 40, 5])",
    "torch.rand(300, 40, dtype=torch.half)", "torch.randn(size=(30, 40))", "torch.full((30, 40), 7)",
    "torch.full((30, 40), 7.0)", "torch.eye(300)", "torch.randint(0, 10, (300, 40))", "torch.randint(10, (30,))",
    "torch.zeros(30, 40, dtype=torch.uint8, device='cpu')",
])
def test_torch_cpu_constructors_are_sized_like_numpy(call):
    torch = pytest.importorskip("torch")
    found = only(f"import torch\nt = {call}")
    real = eval(call, {"torch": torch})
    assert found.shape == tuple(real.shape) and close(found.nbytes, real.element_size() * real.nelement())


def test_tensors_on_a_gpu_are_not_counted_against_host_memory():
    assert estimate("import torch\nt = torch.zeros(100_000, 100_000, device='cuda')").allocations == []


def test_the_check_never_initialises_cuda_itself():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_initialized():
        pytest.skip("CUDA already initialised in this process")
    found = estimate("t = torch.zeros(100_000, 100_000, device='cuda:0')", {"torch": torch}).allocations
    assert found == [] and not torch.cuda.is_initialized()


def test_a_cuda_tensor_over_the_free_device_memory_is_refused():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    from kernel_guard.extension.checks import Budget, check_cell

    torch.cuda.init()
    free, _ = torch.cuda.mem_get_info()
    budget = lambda: Budget(1 << 50, "fit")  # noqa: E731 - the host has room: only the device matters
    over = check_cell(f"t = torch.empty({free // 4 + (1 << 20)}, device='cuda')", {"torch": torch},
                      offset=1, lint=False, budget=budget)
    [refusal] = over.refusals
    assert refusal.line == 2 and " on cuda (float32, shape " in refusal.text
    assert "are free (torch.cuda.mem_get_info())" in refusal.text
    fits = check_cell(f"t = torch.empty({free // 16}, device='cuda')", {"torch": torch}, offset=1, lint=False,
                      budget=budget)
    assert fits.refusals == []


# -- pandas.DataFrame(array) ------------------------------------------------------------------------


@pytest.mark.parametrize("source", [
    "import pandas as pd\nimport numpy as np\ndf = pd.DataFrame(np.zeros((300, 40), dtype=np.float32))",
    "import pandas as pd\nimport numpy as np\ndf = pd.DataFrame(data=np.random.rand(300, 40))",
])
def test_a_frame_built_from_a_2d_array_is_a_copy(source):
    pd = pytest.importorskip("pandas")
    if pd.__version__.split(".")[0] < "3":
        pytest.skip("pandas before 3 shares the array")
    found = only(source)
    namespace: dict = {}
    exec(source, namespace)
    real = namespace["df"]
    assert found.shape == real.shape and close(found.nbytes, int(real.memory_usage(index=False).sum()))
    assert found.cause.startswith("pandas copies the array into the frame: 300 × 40")


def test_a_frame_sharing_its_array_allocates_nothing():
    pytest.importorskip("pandas")
    source = "import pandas as pd\nimport numpy as np\na = np.ones((30, 4))\ndf = pd.DataFrame(a, copy=False)"
    assert [a.line for a in estimate(source).allocations] == [3]


# -- the libraries are never imported; user code never runs ---------------------------------------


def test_constant_forms_are_known_without_importing_the_libraries():
    code = textwrap.dedent("""
        import sys
        from kernel_guard import estimate
        cell = '''
        from scipy import sparse
        import dask.array as da
        import torch
        from sklearn.metrics.pairwise import cosine_similarity
        a = sparse.random(100_000, 100_000, density=0.0001).toarray()
        b = da.ones((100_000, 100_000)).compute()
        c = torch.zeros(100_000, 100_000)
        d = cosine_similarity(sparse.random(50_000, 300, format="csr"))
        import pandas as pd
        import numpy as np
        e = pd.DataFrame(np.zeros((10_000, 1_000)))
        '''
        sizes = [a.nbytes for a in estimate(cell).allocations]
        loaded = sorted(m for m in ("scipy", "dask", "torch", "sklearn", "pandas") if m in sys.modules)
        print(sizes, loaded)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    sizes = "[80000000000, 80000000000, 40000000000, 20000000000, 80000000, 80000000]"
    assert out.stdout.strip() == f"{sizes} []", out.stderr


def test_subclasses_are_not_read():
    touched = []

    class TrappedSparse(sparse.csr_matrix):
        @property
        def nnz(self):
            touched.append("nnz")
            return 1

        def toarray(self, *args, **kwargs):
            touched.append("toarray")
            return np.zeros(1)

    ns = {"X": TrappedSparse(sparse.random(30, 40, density=0.1, format="csr"))}
    cells = ["D = X.toarray()", "from sklearn.metrics.pairwise import cosine_similarity\nD = cosine_similarity(X)"]
    try:
        da = __import__("dask.array", fromlist=["Array"])

        class TrappedLazy(da.Array):
            def __getattribute__(self, name):
                touched.append(name)
                return super().__getattribute__(name)

        x = da.ones((30, 40))
        ns["L"] = TrappedLazy(x.dask, x.name, x.chunks, dtype=x.dtype)
        touched.clear()
        cells += ["D = L.compute()", "import numpy as np\nD = np.asarray(L)"]
    except ImportError:
        pass
    for cell in cells:
        assert [a for a in estimate(cell, ns).allocations if a.cause] == []
    assert touched == []


def test_a_users_own_function_of_the_same_name_is_not_taken_for_the_library():
    def cosine_similarity(matrix):  # the user's, in the namespace: not scikit-learn's
        raise AssertionError("user code run")

    ns = {"cosine_similarity": cosine_similarity, "X": sparse.random(300, 20, density=0.1, format="csr")}
    assert [a for a in estimate("S = cosine_similarity(X)", ns).allocations if a.cause] == []
