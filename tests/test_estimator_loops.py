"""Loops, containers and growth: arrays kept across iterations count trip x size."""

import textwrap

import pytest

from kernel_guard.estimator import Program, estimate, parse_cell


def allocations(source):
    return estimate(textwrap.dedent(source)).allocations


def growth(source):
    return estimate(textwrap.dedent(source)).growth


def real_nbytes(source, name):
    namespace: dict = {}
    exec(textwrap.dedent(source), namespace)  # the test's own code: numpy's real answer
    value = namespace[name]
    items = value.values() if isinstance(value, dict) else value
    return sum(x.nbytes for x in items)


@pytest.mark.parametrize(
    "source, name",
    [
        (
            """
            import numpy as np
            kept = []
            for i in range(7):
                kept.append(np.zeros((10, 10)))
            """,
            "kept",
        ),
        (
            """
            import numpy as np
            kept = []
            for i in range(3):
                for j in range(4):
                    kept.append(np.ones(5, dtype=np.float32))
            """,
            "kept",
        ),
        (
            """
            import numpy as np
            kept = {}
            for i in range(6):
                kept[i] = np.random.rand(8)
            """,
            "kept",
        ),
        (
            """
            import numpy as np
            kept = [None] * 5
            for i in range(5):
                block = np.zeros((3, 3))
                kept[i] = block
            """,
            "kept",
        ),
        ("import numpy as np\nkept = [np.zeros(6) for _ in range(9)]\n", "kept"),
        ("import numpy as np\nkept = {k: np.ones(4) for k in range(3)}\n", "kept"),
        ("import numpy as np\nkept = [np.zeros(2) for i in range(3) for j in range(5)]\n", "kept"),
        (
            """
            import numpy as np
            rng = np.random.default_rng(0)
            kept = []
            for name in ["a", "b", "c"]:
                kept.append(rng.normal(size=(4, 4)))
            """,
            "kept",
        ),
        (
            """
            import numpy as np
            kept = []
            for i, row in enumerate(np.zeros((4, 2))):
                kept.append(np.ones(3))
            """,
            "kept",
        ),
        (
            """
            import numpy as np
            kept = []
            for a, b in zip(range(5), range(3)):
                kept += [np.zeros(10)]
            """,
            "kept",
        ),
        (
            """
            import numpy as np
            kept = []
            def make(n):
                return np.zeros(n)
            for i in range(4):
                kept.append(make(16))
            """,
            "kept",
        ),
        (
            """
            import numpy as np
            kept = []
            for i in range(3):
                kept.extend([np.zeros(2), np.ones(4)])
            """,
            "kept",
        ),
    ],
)
def test_kept_in_loops_counts_trip_times_size(source, name):
    found = [a for a in allocations(source) if a.kept]
    assert sum(a.nbytes * a.count for a in found) == real_nbytes(source, name)


def test_overwritten_each_iteration_counts_once():
    (allocation,) = allocations(
        """
        import numpy as np
        for i in range(1000):
            x = np.zeros((100, 100))
        """
    )
    assert allocation.count == 1


def test_same_array_appended_many_times_is_one_array():
    found = allocations(
        """
        import numpy as np
        x = np.zeros(10)
        kept = []
        for i in range(100):
            kept.append(x)
        """
    )
    assert [a.count for a in found] == [1]


def test_container_made_inside_the_loop_is_not_multiplied():
    found = allocations(
        """
        import numpy as np
        for epoch in range(50):
            batch = []
            for i in range(4):
                batch.append(np.zeros(8))
        """
    )
    assert [a.count for a in found] == [4]


def test_constant_key_overwrites():
    found = allocations(
        """
        import numpy as np
        cache = {}
        for i in range(100):
            cache["last"] = np.zeros(8)
        """
    )
    assert [a.count for a in found] == [1]


def test_unknown_trip_count_is_not_guessed():
    found = allocations(
        """
        import numpy as np
        kept = []
        for path in paths:
            kept.append(np.zeros(8))
        i = 0
        while i < 10:
            kept.append(np.ones(8))
            i += 1
        """
    )
    assert [a.count for a in found] == [1, 1]


def test_tqdm_and_trange_keep_the_trip_count():
    found = allocations(
        """
        import numpy as np
        from tqdm.auto import tqdm, trange
        kept = []
        for i in tqdm(range(6), desc="x"):
            kept.append(np.zeros(2))
        for i in trange(2, 5):
            kept.append(np.zeros(2))
        """
    )
    assert [a.count for a in found] == [6, 3]


def test_loop_growth_across_cells():
    program = Program()
    for cell in ("import numpy as np\nkept = []\n", "for i in range(10):\n    kept.append(np.zeros(100))\n"):
        tree, python, _ = parse_cell(cell)
        found = program.run(tree, python)
    assert [(a.count, a.kept) for a in found] == [(10, True)]
    assert program.live_nbytes == 8000


@pytest.mark.parametrize(
    "source, target",
    [
        ("results = []\nwhile True:\n    results.append(read())\n", "results"),
        ("import numpy as np\nframes = []\nwhile 1:\n    frames.append(np.zeros((480, 640)))\n", "frames"),
        ("seen = set()\nwhile True:\n    seen.add(next_id())\n", "seen"),
        ("log = {}\nn = 0\nwhile True:\n    n += 1\n    log[n] = n\n", "log"),
        ("import itertools\nout = []\nfor i in itertools.count():\n    out.append(i)\n", "out"),
        ("from itertools import cycle\nout = []\nfor x in cycle([1, 2]):\n    out += [x]\n", "out"),
        ("import numpy as np\na = np.zeros(0)\nwhile True:\n    a = np.append(a, 1.0)\n", "a"),
        ("xs = []\nwhile True:\n    xs = xs + [1]\n", "xs"),
        ("buf = []\nwhile True:\n    for i in range(10):\n        buf.append(i)\n", "buf"),
        ("import collections\nq = collections.deque()\nwhile True:\n    q.append(1)\n", "q"),
    ],
)
def test_growth_in_a_loop_that_never_ends(source, target):
    (found,) = growth(source)
    assert found.target == target


@pytest.mark.parametrize(
    "source",
    [
        "results = []\nwhile True:\n    results.append(read())\n    if len(results) > 10:\n        break\n",
        "results = []\nwhile True:\n    x = read()\n    if x is None:\n        raise StopIteration\n"
        "    results.append(x)\n",
        "results = []\ntry:\n    while True:\n        results.append(read())\nexcept KeyboardInterrupt:\n    pass\n",
        "results = []\nit = iter(data)\nwhile True:\n    results.append(next(it))\n",
        "import sys\nresults = []\nwhile True:\n    results.append(1)\n    sys.exit(0)\n",
        "while True:\n    batch = []\n    batch.append(1)\n    if done():\n        break\n",
        "while True:\n    batch = []\n    batch.append(read())\n",  # rebuilt every iteration: bounded
        "import collections\nq = collections.deque(maxlen=100)\nwhile True:\n    q.append(read())\n",
        "cache = {}\nwhile True:\n    cache['last'] = read()\n",
        "def serve():\n    out = []\n    while True:\n        out.append(1)\n        return out\n",
        "results = []\nfor i in range(10):\n    results.append(i)\n",
        "total = 0\nwhile True:\n    total += 1\n",
        "import itertools\nout = []\nfor i in itertools.count():\n    out.append(i)\n    if i > 5:\n        break\n",
        "import itertools\nout = []\nfor x in itertools.repeat(1, 5):\n    out.append(x)\n",
    ],
)
def test_bounded_or_non_growing_loops_are_not_flagged(source):
    assert growth(source) == []


def test_unbounded_array_growth_is_marked_on_the_allocation():
    (allocation,) = allocations(
        """
        import numpy as np
        frames = []
        while True:
            frames.append(np.zeros((480, 640, 3), np.uint8))
        """
    )
    assert allocation.unbounded and allocation.kept


def test_growth_position_and_text():
    (found,) = growth("data = []\nwhile True:\n    data.append(1)\n")
    assert (found.line, found.col, found.end_line, found.end_col, found.expr) == (3, 5, 3, 19, "data.append(1)")


def test_trange_of_an_unknown_length_is_unknown():
    found = allocations(
        """
        import numpy as np
        from tqdm import trange
        kept = []
        for i in trange(len(items)):
            kept.append(np.zeros(2))
        """
    )
    assert [a.count for a in found] == [1]
