"""estimate(): every supported numpy form against numpy's real nbytes, exactly."""

import numpy as np
import pytest

from kernel_guard.estimator import estimate

SETUP = """\
import numpy as np
base = np.ones((4, 3))
ibase = np.arange(12, dtype=np.int32).reshape(4, 3)
v = np.linspace(0, 1, 5)
iv = np.arange(6, dtype=np.int16)
rng = np.random.default_rng(0)
"""

FORMS = [
    # zeros/ones/empty/full, dtypes in every spelling
    "np.zeros((3, 4))",
    "np.zeros(5, dtype=np.float32)",
    "np.zeros((2, 3), 'f4')",
    "np.zeros((2, 3), dtype='float32')",
    "np.zeros(4, dtype=int)",
    "np.zeros(4, bool)",
    "np.zeros(4, complex)",
    "np.zeros(4, dtype=float)",
    "np.zeros(3, 'u1')",
    "np.zeros(3, '<f2')",
    "np.zeros(3, np.longdouble)",
    "np.zeros(2, dtype='U5')",
    "np.zeros(2, dtype='S3')",
    "np.zeros(3, dtype=np.dtype('c8'))",
    "np.zeros(3, dtype=np.dtypes.Int16DType())",
    "np.ones((2, 2), dtype='i2')",
    "np.ones([2, 5], np.int64)",
    "np.empty((3, 3), dtype=np.uint8)",
    "np.empty(shape=7)",
    "np.full((2, 3), 7)",
    "np.full((2, 3), 7.5)",
    "np.full((2, 3), True)",
    "np.full((2, 3), 1j)",
    "np.full(4, 1, dtype=np.int8)",
    "np.zeros_like(base)",
    "np.ones_like(base, dtype=np.float32)",
    "np.empty_like(ibase)",
    "np.full_like(ibase, 3)",
    "np.zeros_like([[1, 2], [3, 4]])",
    "np.zeros_like(base, shape=(2, 2))",
    "np.eye(4)",
    "np.eye(3, 5, dtype=int)",
    "np.identity(4)",
    "np.identity(3, dtype=np.complex64)",
    "np.tri(4)",
    "np.indices((2, 3))",
    # ranges
    "np.arange(10)",
    "np.arange(2, 11, 3)",
    "np.arange(0.0, 1.0, 0.1)",
    "np.arange(10, dtype=np.float32)",
    "np.arange(5, 0, -1)",
    "np.arange(0, 5, 0.5, dtype=int)",
    "np.arange(1, 2.5)",
    "np.arange(-3, 3)",
    "np.arange(start=1, stop=9)",
    "np.linspace(0, 1)",
    "np.linspace(0, 1, 7)",
    "np.linspace(0, 10, 5, dtype=int)",
    "np.linspace(0, 1, 7, retstep=True)[0]",
    "np.linspace(0, 1j, 3)",
    "np.logspace(0, 3, 4)",
    "np.geomspace(1, 1000, 4)",
    # legacy np.random
    "np.random.rand(3, 4)",
    "np.random.randn(5)",
    "np.random.random((2, 3))",
    "np.random.random_sample(size=4)",
    "np.random.sample(3)",
    "np.random.randint(0, 10, size=(3, 3))",
    "np.random.randint(5, size=7, dtype=np.int8)",
    "np.random.normal(0, 1, (2, 5))",
    "np.random.normal(size=6)",
    "np.random.normal(np.zeros(4), 1)",
    "np.random.uniform(-1, 1, 8)",
    "np.random.choice(10, 5)",
    "np.random.choice([1.5, 2.5], size=(2, 2))",
    "np.random.choice(iv, 3)",
    "np.random.poisson(3.0, 10)",
    "np.random.binomial(10, 0.5, size=(4,))",
    "np.random.exponential(size=3)",
    "np.random.standard_normal((2, 2))",
    "np.random.gamma(2.0, size=(3,))",
    "np.random.beta(1, 2, 5)",
    "np.random.permutation(10)",
    "np.random.permutation(v)",
    "np.random.multivariate_normal([0, 0], [[1, 0], [0, 1]], 5)",
    "np.random.dirichlet([1, 1, 1], 4)",
    "np.random.multinomial(5, [0.5, 0.5], size=3)",
    "np.random.RandomState(0).rand(2, 3)",
    "np.random.RandomState(0).normal(size=(2, 2))",
    # Generator, bound and chained
    "rng.random((3, 3))",
    "rng.random(5, dtype=np.float32)",
    "rng.standard_normal(4, dtype='float32')",
    "rng.integers(0, 10, size=(2, 5))",
    "rng.integers(10, size=3, dtype=np.uint16)",
    "rng.normal(0, 1, size=(2, 3))",
    "rng.uniform(size=4)",
    "rng.choice(10, size=3)",
    "rng.choice(np.arange(12.0).reshape(4, 3), 2)",
    "rng.poisson(2.0, 6)",
    "rng.exponential(size=(2, 2))",
    "rng.permutation(7)",
    "rng.multivariate_normal(np.zeros(3), np.eye(3), size=4)",
    "np.random.default_rng(0).normal(size=(3, 4))",
    "np.random.default_rng().integers(5, size=(2,))",
    # fromfunction
    "np.fromfunction(lambda i, j: i * j, (3, 4))",
    "np.fromfunction(lambda i, j: i + j, (2, 5), dtype=int)",
    "np.fromfunction(lambda i, j: i == j, (3, 3))",
    # repeating and joining
    "np.tile(base, 2)",
    "np.tile(base, (2, 3))",
    "np.tile(np.arange(3), (4, 1))",
    "np.repeat(base, 3)",
    "np.repeat(base, 2, axis=0)",
    "np.repeat(ibase, 2, axis=1)",
    "np.concatenate([base, base])",
    "np.concatenate((base, base), axis=1)",
    "np.concatenate([base, ibase], axis=None)",
    "np.concatenate([v, iv])",
    "np.stack([v, v, v])",
    "np.stack((v, v), axis=1)",
    "np.vstack([v, v])",
    "np.vstack((base, ibase))",
    "np.hstack([v, v])",
    "np.hstack((base, base))",
    "np.column_stack((v, v))",
    "np.dstack((base, base))",
    # outer products
    "np.outer(v, v)",
    "np.outer(v, iv)",
    "np.outer(base, v)",
    "np.multiply.outer(v, v)",
    "np.add.outer(base, v)",
    "np.greater.outer(v, v)",
    "np.subtract.outer(iv, iv)",
    "np.kron(base, np.eye(2))",
    "np.kron(v, iv)",
    # meshgrid (every output array)
    "np.meshgrid(v, iv)",
    "np.meshgrid(v, iv, indexing='ij')",
    "np.meshgrid(v, v, v)",
    "np.meshgrid(v, iv, sparse=True)",
    "np.meshgrid(np.linspace(0, 1, 3), np.arange(4))",
    # astype / copy
    "base.astype(np.float32)",
    "base.astype('int8')",
    "ibase.astype(float)",
    "base.copy()",
    "np.copy(base)",
    "base.T.copy()",
    "base.flatten()",
    "np.array(base)",
    "np.array([[1, 2, 3], [4, 5, 6]])",
    "np.array([1.0, 2.0])",
    "np.array([[1, 2], [3, 4]], dtype=np.float32)",
    "np.array([v, v])",
    "np.array([np.zeros(3) for _ in range(4)])",
    "np.asarray([1, 2, 3])",
    # products
    "base @ base.T",
    "np.dot(base, base.T)",
    "np.matmul(base.T, base)",
    "base @ np.ones(3)",
    "np.ones(4) @ base",
    "np.dot(base, np.ones(3))",
    "np.ones((2, 4, 3)) @ np.ones((3, 5))",
    "base.dot(np.ones((3, 2)))",
    "ibase @ ibase.T",
    # broadcasting arithmetic and ufuncs
    "v[:, None] * v[None, :]",
    "v[:, None] + iv",
    "iv[None, :] - v[:, np.newaxis]",
    "base * 2",
    "ibase * 2.5",
    "ibase / 2",
    "ibase // 2",
    "ibase > 3",
    "(ibase % 3) == 0",
    "~(ibase > 2)",
    "-base",
    "base ** 2",
    "2 ** ibase",
    "ibase.astype(np.int8) + 1",
    "iv + iv",
    "base[1:3] * 2",
    "base[::2, ::-1] + 1",
    "base[..., None] * v",
    "base[[0, 2]]",
    "base[:, [0, 2]]",
    "base[1] + v[:3]",
    "np.sqrt(base)",
    "np.exp(ibase)",
    "np.add(base, 1)",
    "np.maximum(v[:, None], v)",
    "np.sin(v) * np.cos(v)",
    "np.where(base > 0, base, 0)",
    "np.where(ibase > 2, ibase, 0.5)",
    "base.sum(axis=0)",
    "ibase.mean(axis=1)",
    "ibase.cumsum()",
    "iv.cumsum()",
    "np.sum(base, axis=1)",
    "base.reshape(3, 4) * 1",
    "base.reshape(-1) + 1",
    "base.ravel() * 2",
    "base.transpose() * 1",
    "base.T + base.T",
]


def _estimated_result(source: str):
    result_line = source.count("\n")
    est = estimate(source)
    return [a for a in est.allocations if a.line == result_line and a.kept]


def _check(source: str) -> None:
    namespace: dict = {}
    exec(source, namespace)  # the test's own code, to get numpy's real answer
    result = namespace["result"]
    arrays = list(result) if isinstance(result, (tuple, list)) else [result]
    found = _estimated_result(source)
    assert sorted((a.shape, a.dtype) for a in found for _ in range(a.count)) == sorted(
        (x.shape, x.dtype.name) for x in arrays
    )
    assert sum(a.nbytes * a.count for a in found) == sum(x.nbytes for x in arrays)


@pytest.mark.parametrize("form", FORMS)
def test_form_matches_numpy(form):
    _check(SETUP + f"result = {form}\n")


@pytest.mark.parametrize(
    "setup, form",
    [
        ("from numpy.random import rand", "rand(2, 3)"),
        ("from numpy import zeros", "zeros(3)"),
        ("from numpy import ones as o", "o((2, 2))"),
        ("import numpy", "numpy.ones(3)"),
        ("import numpy.random as npr", "npr.randn(2, 2)"),
        ("import numpy.random", "numpy.random.rand(3)"),
        ("from numpy import *", "zeros((2, 3), dtype=float32)"),
        ("from numpy import random", "random.normal(size=4)"),
        ("from numpy.random import default_rng\ng = default_rng(1)", "g.random(3)"),
        ("dt = np.float32", "np.zeros(3, dt)"),
        ("dt = np.dtype('int16')", "np.ones(3, dtype=dt)"),
        ("dt = 'f2'", "np.zeros((2, 2), dt)"),
        ("n = 10**2 // 25\nm = n * 2", "np.zeros((n, m))"),
        ("shape = (3, 4)", "np.ones(shape)"),
        ("shape = [3, 4]", "np.ones(shape)"),
        ("n = 3\nn += 2", "np.zeros(n)"),
        ("", "np.zeros(base.shape)"),
        ("", "np.zeros((len(v), base.shape[1]))"),
        ("", "np.zeros((base.size, ibase.ndim))"),
        ("", "np.zeros(max(3, 5))"),
        ("", "np.empty(int(2.7 * 3))"),
        ("", "np.zeros(len([1, 2, 3]))"),
        ("a = np.zeros(4)\nb = a", "b * 2"),
        ("def make(n):\n    return np.zeros((n, n))", "make(3)"),
        ("def make(n, dtype=np.float32):\n    x = np.ones(n, dtype)\n    return x", "make(5)"),
        ("make = lambda n: np.zeros(n)", "make(4)"),
        ("n = 4 if True else 10", "np.zeros(n)"),
        ("if len(v) > 3:\n    n = 6\nelse:\n    n = 2", "np.zeros(n)"),
    ],
)
def test_names_aliases_and_constants(setup, form):
    _check(SETUP + setup + f"\nresult = {form}\n")


HUGE = [
    ("np.random.rand(100000, 100000)", (100_000, 100_000), "float64", 80_000_000_000),
    ("np.zeros((10**6, 10**6), dtype=np.float32)", (10**6, 10**6), "float32", 4 * 10**12),
    ("np.ones(10**10, dtype=np.int8)", (10**10,), "int8", 10**10),
    ("np.random.default_rng().random((n, n))", (100_000, 100_000), "float64", 80_000_000_000),
    ("rng.standard_normal((n, n), dtype=np.float32)", (100_000, 100_000), "float32", 40_000_000_000),
    ("np.outer(np.arange(10**6), np.arange(10**6))", (10**6, 10**6), "int64", 8 * 10**12),
    ("np.eye(n)", (100_000, 100_000), "float64", 80_000_000_000),
    ("np.arange(n)[:, None] * np.arange(n)[None, :]", (100_000, 100_000), "int64", 80_000_000_000),
    ("np.full((n, n), 1.5)", (100_000, 100_000), "float64", 80_000_000_000),
    ("np.empty((n, n, 3), 'uint8')", (100_000, 100_000, 3), "uint8", 30_000_000_000),
]


@pytest.mark.parametrize("form, shape, dtype, nbytes", HUGE)
def test_huge_literal_sizes(form, shape, dtype, nbytes):
    source = f"import numpy as np\nn = 100_000\nrng = np.random.default_rng(0)\nx = {form}\n"
    (allocation,) = [a for a in estimate(source).allocations if a.shape == shape]
    assert (allocation.shape, allocation.dtype, allocation.nbytes) == (shape, dtype, nbytes)
    assert allocation.line == 4 and allocation.expr == form


def test_meshgrid_huge_counts_every_output():
    source = "import numpy as np\nX, Y = np.meshgrid(np.arange(10**5), np.linspace(0, 1, 10**5))\n"
    kept = [a for a in estimate(source).allocations if a.kept]
    assert sum(a.nbytes for a in kept) == 2 * 80_000_000_000


def test_positions_and_expression_text():
    source = "import numpy as np\nx = 1\ny = np.zeros((10,\n              20))  # note\nz = 'é' + str(np.ones(3))\n"
    first, second = estimate(source).allocations
    assert (first.line, first.col, first.end_line, first.end_col) == (3, 5, 4, 19)
    assert first.expr == "np.zeros((10,\n              20))"
    assert (second.line, second.col, second.end_col, second.expr) == (5, 15, 25, "np.ones(3)")


def test_total_nbytes_and_largest():
    est = estimate("import numpy as np\na = np.zeros(10)\nb = np.ones((10, 10), np.float32)\n")
    assert est.total_nbytes == 80 + 400
    assert est.largest.expr == "np.ones((10, 10), np.float32)"


@pytest.mark.parametrize(
    "source",
    [
        "import numpy as np\nnp.zeros(n)",  # unknown name
        "import numpy as np\nnp.zeros(f(3))",
        "import numpy as np\nnp.zeros(-1)",
        "import numpy as np\nnp.zeros((2.5, 3))",
        "import numpy as np\nnp.zeros(3, dtype=mystery)",
        "import numpy as np\nnp.random.rand()",  # a scalar
        "import numpy as np\nnp.random.normal(0, 1)",
        "import numpy as np\nx = np.zeros(4)\nx[x > 0]",  # boolean mask: size unknown (the mask is known)
        "np.zeros(10)",  # np never imported
        "import mylib as np\nnp.zeros(10)",
        "import numpy as np\ndef np_zeros(n): pass\nnp_zeros(10)",
        "import numpy as np\nfor n in range(3):\n    np.zeros(n)",  # n varies
        "import numpy as np\ntotal = 0\nfor i in range(3):\n    total = total + 5\nnp.zeros(total)",
    ],
)
def test_unknown_sizes_are_absent(source):
    shapes = [a.shape for a in estimate(source).allocations]
    assert all(shape == (4,) for shape in shapes)  # only the known mask operand, never a guess


def test_unparsable_source_gives_empty_estimate():
    assert estimate("def broken(:\n    np.zeros(10)").allocations == []
    assert estimate("").allocations == []


def test_ipython_syntax_keeps_line_numbers():
    source = "%matplotlib inline\nimport numpy as np\n!ls\nfiles = !ls\nx = np.zeros(100)\nx?\n"
    (allocation,) = estimate(source).allocations
    assert (allocation.line, allocation.nbytes) == (5, 800)


def test_non_python_cell_magic_gives_empty_estimate():
    assert estimate("%%bash\npython -c 'import numpy; numpy.zeros(10**10)'\n").allocations == []


def test_temporaries_are_not_kept():
    est = estimate("import numpy as np\ntotal = np.zeros(100).sum()\nkeep = np.ones(5)\n")
    assert [(a.expr, a.kept) for a in est.allocations] == [("np.zeros(100)", False), ("np.ones(5)", True)]


def test_rebinding_and_del_release_arrays():
    est = estimate("import numpy as np\na = np.zeros(10)\na = np.ones(20)\nb = np.ones(30)\ndel b\n")
    assert [(a.nbytes, a.kept) for a in est.allocations] == [(80, False), (160, True), (240, False)]


def test_views_keep_their_base_alive():
    est = estimate("import numpy as np\nview = np.zeros((10, 10))[:5]\nrow = np.ones((4, 4)).T\n")
    assert [a.kept for a in est.allocations] == [True, True]


def test_numpy_agrees_on_every_dtype_default():
    # the defaults the table relies on, as this numpy defines them
    assert np.arange(3).dtype.name == "int64"
    assert np.random.randint(0, 2, 2).dtype.name == "int64"


@pytest.mark.parametrize(
    "source, expected",
    [
        # a guard that raises before the allocation: the call never allocates
        ("def make(n):\n    if n > 10_000:\n        raise ValueError(n)\n    return np.zeros((n, n))\n"
         "x = make(10**5)", []),
        ("def make(n):\n    if n > 10_000:\n        raise ValueError(n)\n    return np.zeros((n, n))\n"
         "x = make(10)", [(10, 10)]),
        # early return
        ("def make(n):\n    if n < 5:\n        return None\n    return np.zeros(n)\nx = make(3)", []),
        # try: the body or a handler, not both in sequence
        ("try:\n    n = int(arg)\nexcept ValueError:\n    n = 10**6\nx = np.zeros((n, n))", []),
        ("try:\n    n = 4\nexcept ValueError:\n    n = 4\nx = np.zeros(n)", [(4,)]),
        # the cell stops at a raise or an exit
        ("x = np.zeros(3)\nraise SystemExit\ny = np.zeros(4)", [(3,)]),
        ("import sys\nx = np.zeros(3)\nsys.exit(0)\ny = np.zeros(4)", [(3,)]),
        ("if flag:\n    raise ValueError\nelse:\n    raise KeyError\ny = np.zeros(4)", []),
        ("if flag:\n    raise ValueError\ny = np.zeros(4)", [(4,)]),
        ("for f in files:\n    raise ValueError\ny = np.zeros(4)", [(4,)]),
    ],
)
def test_code_after_a_raise_or_return_does_not_run(source, expected):
    found = estimate("import numpy as np\n" + source).allocations
    assert [a.shape for a in found] == expected


def test_positions_with_form_feeds_and_crlf():
    source = "import numpy as np\r\nx = 1\x0c+ 1\r\ny = np.zeros(3)\r\n"
    (allocation,) = estimate(source).allocations
    assert (allocation.line, allocation.col, allocation.expr) == (3, 5, "np.zeros(3)")


def test_a_list_of_unknown_contents_has_no_shape():
    source = "import numpy as np\nparts = [f(i) for i in range(1000)]\nx = np.ones_like(parts)\ny = np.array(parts)\n"
    assert estimate(source).allocations == []


def test_live_check_walks_the_namespace_a_bounded_number_of_times(monkeypatch):
    # A generated cell of thousands of allocations: the live-arrays check walked everything bound after
    # each one (quadratic: 20,000 lines took minutes). Under the budget nothing is walked; over it, at
    # most _LIVE_WALKS times.
    from kernel_guard.estimator import interpreter, parse_cell

    walks = []
    reachable = interpreter.Program._reachable
    monkeypatch.setattr(interpreter.Program, "_reachable",
                        lambda self, roots=None: walks.append(roots is None) or reachable(self, roots))
    for size, budget in ((10, 2**40), (1000, 2**30)):
        walks.clear()
        lines = "\n".join(f"a{i} = np.zeros(({size}, 1000))" for i in range(3000))
        tree, python, _ = parse_cell("import numpy as np\n" + lines)
        program = interpreter.Program({}, live_budget=budget)
        assert len(program.run(tree, python)) == 3000
        assert sum(walks) <= interpreter._LIVE_WALKS + 2  # + the cell's start and end
    assert [o.allocation.line for o in program.live_over] == [136]  # 135 arrays of 7.6 MiB fit in 1 GiB
