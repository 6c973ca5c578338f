"""KG3 through the real engine: recursion spread over cells, depths from
constants of other cells, methods, and the C-stack limit KG304 rests on."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

from kernel_guard.lint.callgraph import C_STACK_FRAMES
from kernel_guard.lint.engine import Selection, lint_document
from kernel_guard.source import Cell, Document, python_source

TOTAL = "def total(n):\n    if n == 0:\n        return 0\n    return n + total(n - 1)"


def lint_cells(*cells: str, select: str = "KG3"):
    document = Document(
        "nb.ipynb", [Cell(n, text, *python_source(text)) for n, text in enumerate(cells, start=1)], is_notebook=True
    )
    return lint_document(document, Selection(select=(select,)), mem_budget=2**34)


def where(findings):
    return [(f.code, f.cell, f.line) for f in findings]


def test_no_base_case_message_and_position():
    (finding,) = lint_cells("x = 1", "def fact(n):\n    return n * fact(n - 1)")
    assert (finding.code, finding.severity, finding.cell, finding.line, finding.column, finding.end_column) == (
        "KG301", "error", 2, 1, 1, 9,
    )
    assert finding.message == (
        "every path through `fact` reaches `fact(n - 1)` before it can return: there is no base case, "
        "so every call ends in RecursionError"
    )


def test_mutual_recursion_across_cells_is_reported_once_where_the_cycle_closes():
    findings = lint_cells("def ping(n):\n    return pong(n)", "y = 2", "def pong(n):\n    print(n)\n    return ping(n + 1)")
    assert where(findings) == [("KG301", 3, 1)]
    assert findings[0].message.startswith("`ping` and `pong` call each other on every path")


def test_a_three_function_cycle():
    findings = lint_cells("def a(x):\n    return b(x)", "def b(x):\n    return c(x)", "def c(x):\n    return a(x)")
    assert where(findings) == [("KG301", 3, 1)] and "`a`, `b`, `c`" in findings[0].message


def test_a_cycle_with_one_base_case_is_fine():
    assert lint_cells("def a(x):\n    return b(x - 1)", "def b(x):\n    if x <= 0:\n        return 0\n    return a(x)") == []


def test_a_function_redefined_in_a_later_cell_is_not_judged():
    assert lint_cells("def f(n):\n    return f(n - 1)", "def f(n):\n    return 0 if n == 0 else f(n - 1)") == []


def test_generators_and_recursion_through_comprehensions_are_fine():
    assert lint_cells("def walk(t):\n    yield t\n    yield from walk(t.left)") == []
    assert lint_cells("def flat(x):\n    return [y for item in x for y in flat(item)]") == []


def test_depth_from_constants_of_other_cells():
    findings = lint_cells("N = 5_000", TOTAL, "print(total(N))")
    assert where(findings) == [("KG303", 3, 1)]
    assert findings[0].message == (
        "`total(N)` recurses 5,000 deep, past the recursion limit of 1,000: it raises RecursionError"
    )
    assert lint_cells("N = 500", TOTAL, "print(total(N))") == []


def test_the_notebooks_own_recursion_limit_counts():
    raised = "import sys\nsys.setrecursionlimit(LIMIT)"
    assert lint_cells("LIMIT = 100_000", raised, TOTAL, "total(50_000)", select="KG303") == []
    assert where(lint_cells("LIMIT = 100_000", raised, TOTAL, "total(200_000)", select="KG303")) == [("KG303", 4, 1)]
    # A limit the linter cannot know: no depth finding.
    assert lint_cells("import sys\nsys.setrecursionlimit(int(arg))", TOTAL, "total(50_000)", select="KG303") == []


def test_cached_recursion_past_the_c_stack_under_a_raised_limit():
    cached = "from functools import lru_cache\n@lru_cache(maxsize=None)\n" + TOTAL
    findings = lint_cells("import sys\nsys.setrecursionlimit(10**6)", cached, "total(50_000)", select="KG303")
    assert where(findings) == [("KG303", 3, 1)] and "segmentation fault" in findings[0].message
    assert lint_cells("import sys\nsys.setrecursionlimit(10**6)", TOTAL, "total(50_000)", select="KG303") == []


def test_argument_moving_away_from_the_base_case_is_seen_at_the_call():
    up = "def fact(n):\n    if n == 0:\n        return 1\n    return n * fact(n + 1)"
    findings = lint_cells(up, "fact(5)")
    assert [(f.code, f.cell) for f in findings] == [("KG302", 2)]
    assert "`fact(5)` never reaches the base case of `fact` (`n == 0`)" in findings[0].message
    assert lint_cells(up, "fact(-3)") == []  # reaches 0 from below


def test_recursion_on_a_float_with_a_half_step():
    findings = lint_cells("def f(x):\n    if x < 0.5:\n        return x\n    return f(x + 0.25)")
    assert where(findings) == [("KG302", 1, 1)]


def test_methods_properties_and_special_methods():
    prop = "class C:\n    @property\n    def size(self):\n        return self.size"
    setter = "class C:\n    @property\n    def size(self):\n        return self._size\n    @size.setter\n" \
             "    def size(self, value):\n        self.size = value"
    assert where(lint_cells(prop)) == [("KG301", 1, 3)]
    assert where(lint_cells(setter)) == [("KG301", 1, 6)]
    assert lint_cells("class C:\n    @cached_property\n    def size(self):\n        self.load()\n        return self.size") == []
    assert lint_cells(
        "class Lazy:\n    def __getattribute__(self, name):\n        self.__class__ = Real\n        return self.data"
    ) == []
    assert lint_cells("class C:\n    def __init__(self, run):\n        self.run = run\n    def run(self):\n"
                      "        return self.run()") == []


def test_setrecursionlimit_from_another_cell_and_the_big_stack_escape():
    findings = lint_cells("LIMIT = 10**5", "import sys\nsys.setrecursionlimit(LIMIT)", select="KG304")
    assert [(f.code, f.cell, f.severity) for f in findings] == [("KG304", 2, "warning")]
    assert "100,000" in findings[0].message
    assert lint_cells(
        "import sys, threading\nsys.setrecursionlimit(10**6)", "threading.stack_size(2**28)", select="KG304"
    ) == []


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or resource.getrlimit(resource.RLIMIT_STACK)[0] != 8 * 2**20,
    reason="the measured limit is for Linux's default 8 MiB main-thread stack",
)
def test_recursion_through_c_code_past_the_limit_kg304_uses_kills_the_process():
    """The premise of KG304: with the limit raised well past C_STACK_FRAMES, runaway
    recursion through map() is a segmentation fault, not a RecursionError."""
    program = (
        "import sys\n"
        f"sys.setrecursionlimit({C_STACK_FRAMES * 4})\n"
        "def down(n):\n    return list(map(down, [n + 1]))\n"
        "down(0)\n"
    )

    def no_core_dump():
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    crashed = subprocess.run([sys.executable, "-c", program], capture_output=True, preexec_fn=no_core_dump, timeout=60)
    assert crashed.returncode == -11  # SIGSEGV
    safe = subprocess.run([sys.executable, "-c", program.replace(str(C_STACK_FRAMES * 4), "1000")],
                          capture_output=True, timeout=60)
    assert safe.returncode == 1 and b"RecursionError" in safe.stderr


@pytest.mark.parametrize(
    "cell, name",
    [
        ("def f(n): return f(n + 1)", "f"),
        ("def g(n): return n * g(n - 1)", "g"),
        ("class M:\n    @property\n    def size(self): return self.size", "M.size"),
        ("def is_even(n): return is_odd(n - 1)\ndef is_odd(n): return is_even(n - 1)", "is_even"),
    ],
)
def test_one_line_definitions_are_judged_like_multi_line_ones(cell, name):
    (finding,) = lint_cells(cell)
    assert finding.code == "KG301" and f"`{name}`" in finding.message


def test_one_line_definitions_with_a_base_case_are_fine():
    assert lint_cells("def f(n): return 1 if n < 1 else n * f(n - 1)\nf(10)") == []
