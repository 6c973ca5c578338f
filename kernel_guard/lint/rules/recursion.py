"""KG3: recursion that never ends, or ends past what the interpreter holds.

The notebook is one program: a function defined in cell 3 and called in cell 7
is one recursion, and so is a cycle of functions spread over cells.  The shared
analysis (``kernel_guard.lint.callgraph``) runs once per notebook, and only
when some function calls back into itself.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from kernel_guard.lint import flow
from kernel_guard.lint.callgraph import C_STACK_FRAMES, analysis
from kernel_guard.lint.rule import Case, Rule

if TYPE_CHECKING:
    from kernel_guard.source import Cell


class _RecursionRule(Rule):
    triggers = None
    kind = ""

    def end_document(self) -> None:
        for cell, position, message in analysis(self.context).findings[self.kind]:
            self.report_at(cell, position, message)


class RecursionWithoutBaseCase(_RecursionRule):
    """
    ## What it does
    Flags a function (or a cycle of functions calling each other, across cells)
    where every path from its entry calls back into the recursion before it can
    return: there is no base case. Methods are covered too: a property that reads
    itself, `__setattr__` that assigns `self.x`, `__len__` that calls `len(self)`.

    ## Why is this bad?
    Every call recurses until Python's recursion limit and fails with
    `RecursionError`; with a raised limit, deep recursion through C code
    crashes the kernel with a segmentation fault.

    ## Example
    ```python
    def factorial(n):
        return n * factorial(n - 1)
    ```

    ## Use instead
    ```python
    def factorial(n):
        if n <= 1:
            return 1
        return n * factorial(n - 1)
    ```
    """

    code = "KG301"
    name = "recursion-without-base-case"
    summary = "every path through the function recurses: no base case"
    severity = "error"
    kind = "no-base-case"
    VALID = [
        "def fact(n):\n    if n == 0:\n        return 1\n    return n * fact(n - 1)",
        "def total(lst):\n    if not lst:\n        return 0\n    return lst[0] + total(lst[1:])",
        "def size(node):\n    return 1 + sum(size(child) for child in node.children)",
        "def walk(node):\n    for child in node.children:\n        walk(child)",
        "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)",
        "def walk(tree):\n    yield tree\n    yield from walk(tree.left)",
        "def f(n):\n    check(n)\n    return f(n - 1)\ndef check(n):\n    if n < 0:\n        raise ValueError(n)",
        "class Model:\n    @property\n    def size(self):\n        return self._size",
        "class Node:\n    def __repr__(self):\n        return f'Node({self.value!r})'",
        "class A:\n    def __setattr__(self, name, value):\n        object.__setattr__(self, name, value)",
        "class A:\n    def forward(self, x):\n        return self.layer.forward(x)",
        "def f(n):\n    return f(n - 1)\ndef f(n):\n    return 0",
        "def get(url, retries=3):\n    try:\n        return fetch(url)\n    except IOError:\n"
        "        return get(url, retries - 1)",
        "def is_even(n):\n    return True if n == 0 else is_odd(n - 1)\ndef is_odd(n):\n"
        "    return False if n == 0 else is_even(n - 1)",
        "class Tree:\n    def depth(self):\n        return 1 + max((c.depth() for c in self.children), default=0)",
    ]
    INVALID = [
        Case("def fact(n):\n    return n * fact(n - 1)", line=1, column=1, message="`fact`"),
        "def loop(x):\n    print(x)\n    loop(x + 1)",
        "def f(n):\n    if n > 0:\n        return f(n - 1)\n    else:\n        return f(n + 1)",
        Case(("def is_even(n):\n    return is_odd(n - 1)", "def is_odd(n):\n    return is_even(n - 1)"),
             line=1, message="`is_even`"),
        "class Model:\n    @property\n    def size(self):\n        return self.size",
        "class A:\n    def __setattr__(self, name, value):\n        self.name = value",
        "class Bag:\n    def __len__(self):\n        return len(self)",
        "class P:\n    def __str__(self):\n        return f'P({self})'",
        "class A:\n    def run(self):\n        self.setup()\n        return self.run()",
        "def outer():\n    def helper(k):\n        return helper(k) + 1\n    return helper(3)",
    ]


class RecursionAwayFromBaseCase(_RecursionRule):
    """
    ## What it does
    Flags a recursive function whose base case tests a parameter (`n == 0`,
    `n <= 1`) while the recursive call moves that parameter away from it
    (`f(n + 1)`) or passes it unchanged (`f(n)`); and a call such as `fact(5)`
    whose argument can never reach the base case.

    ## Why is this bad?
    Once the function recurses, the base case can never be reached: every such
    call ends in `RecursionError` (or crashes the kernel under a raised
    recursion limit).

    ## Example
    ```python
    def fact(n):
        if n == 0:
            return 1
        return n * fact(n + 1)

    fact(5)
    ```

    ## Use instead
    ```python
    def fact(n):
        if n == 0:
            return 1
        return n * fact(n - 1)
    ```
    """

    code = "KG302"
    name = "recursion-away-from-base-case"
    summary = "the recursive call moves its argument away from the base case"
    severity = "error"
    kind = "drift"
    VALID = [
        "def fact(n):\n    if n == 0:\n        return 1\n    return n * fact(n - 1)\nfact(5)",
        "def up(n):\n    if n >= 10:\n        return n\n    return up(n + 1)\nup(0)",
        "def count(n):\n    if n == 10:\n        return\n    print(n)\n    count(n + 1)\ncount(0)",
        "def total(lst):\n    if not lst:\n        return 0\n    return lst[0] + total(lst[1:])",
        "def f(n, acc):\n    if acc > 100:\n        return acc\n    return f(n, acc + n)",
        "def f(n):\n    if n in memo:\n        return memo[n]\n    return f(n + 1)",
        "def f(n):\n    if n <= 0:\n        return 0\n    while step():\n        pass\n    return f(n - 1)",
        "def f(n):\n    if n == 0:\n        return 1\n    return f(n - 2)\nf(4)",
    ]
    INVALID = [
        Case("def fact(n):\n    if n <= 1:\n        return 1\n"
             "    return n * fact(n + 1)", line=1, column=1, message="n + 1"),
        Case(("def fact(n):\n    if n == 0:\n        return 1\n    return n * fact(n + 1)", "fact(5)"),
             line=1, column=1, message="fact(5)"),
        "def f(n):\n    if n == 0:\n        return 0\n    print(n)\n    return f(n)",
        "def down(n):\n    if n > 100:\n        return n\n    return down(n - 1)",
        "def f(n):\n    if n == 0:\n        return 1\n    return f(n - 2)\nf(5)",
    ]


class RecursionTooDeep(_RecursionRule):
    """
    ## What it does
    Flags a call to a recursive function whose depth is known statically — a
    constant argument, a base case on that parameter, a constant step — when it
    goes past the recursion limit (1,000 by default, or the value the notebook
    passes to `sys.setrecursionlimit`). With a raised limit, it also flags
    recursion through `functools.lru_cache`/`cache` (C code) deeper than the C
    stack holds. A call inside `try: ... except RecursionError:` is expected to
    fail and is not reported.

    ## Why is this bad?
    The call fails with `RecursionError` every time. Memoization does not help:
    the first call still recurses all the way down. Through C code with a raised
    limit, the kernel process dies with a segmentation fault instead.

    ## Example
    ```python
    def total(n):
        if n == 0:
            return 0
        return n + total(n - 1)

    total(100_000)
    ```

    ## Use instead
    ```python
    def total(n):
        result = 0
        for i in range(n + 1):
            result += i
        return result
    ```
    """

    code = "KG303"
    name = "recursion-too-deep"
    summary = "statically known recursion depth past the recursion limit"
    severity = "error"
    kind = "too-deep"
    VALID = [
        "def total(n):\n    if n == 0:\n        return 0\n    return n + total(n - 1)\ntotal(500)",
        "import sys\nsys.setrecursionlimit(200_000)\ndef total(n):\n    if n == 0:\n        return 0\n"
        "    return n + total(n - 1)\ntotal(100_000)",
        "import sys\nsys.setrecursionlimit(limit)\ndef total(n):\n    if n == 0:\n        return 0\n"
        "    return n + total(n - 1)\ntotal(100_000)",
        "def total(n):\n    if n == 0:\n        return 0\n    return n + total(n // 2)\ntotal(100_000)",
        "def f(n):\n    if n in cache:\n        return cache[n]\n    return f(n - 1)\nf(10_000)",
        "def total(n):\n    return 0 if n == 0 else n + total(n - 1)\ntry:\n    total(10**5)\n"
        "except RecursionError as e:\n    print('too deep:', e)",
    ]
    INVALID = [
        Case(("def total(n):\n    if n == 0:\n        return 0\n    return n + total(n - 1)", "total(100_000)"),
             line=1, column=1, message="100,000"),
        ("N = 5000", "from functools import lru_cache\n@lru_cache(None)\ndef fib(n):\n    if n < 2:\n        return n\n"
         "    return fib(n - 1) + fib(n - 2)\nprint(fib(N))"),
        "def depth(n):\n    return 0 if n <= 0 else 1 + depth(n - 1)\ndepth(1000)",
        Case("import sys, functools\nsys.setrecursionlimit(10**6)\n@functools.cache\ndef f(n):\n"
             "    return 0 if n == 0 else f(n - 1) + 1\nf(50_000)", message="segmentation fault"),
    ]


class RecursionLimitTooHigh(Rule):
    """
    ## What it does
    Flags `sys.setrecursionlimit(N)` with a constant `N` above 13,000, unless the
    notebook also gives its threads a bigger stack (`threading.stack_size`) or
    raises `RLIMIT_STACK`.

    ## Why is this bad?
    The recursion limit is what turns runaway recursion into a `RecursionError`.
    Recursion that goes through C code — `map`, `sorted(key=...)`,
    `functools.lru_cache`, `repr` of nested objects, `pickle` — uses the C stack,
    and with the default 8 MiB stack the process dies with a segmentation fault
    long before such a limit: measured on CPython 3.11, at about 13,500 frames
    through `map`, 16,000 through `lru_cache`, 2,000 through `sorted(key=...)`.
    The kernel dies instead of raising an error.

    ## Example
    ```python
    import sys
    sys.setrecursionlimit(10**6)
    ```

    ## Use instead
    ```python
    # an explicit stack instead of deep recursion, or a thread with a big stack:
    import sys, threading
    threading.stack_size(512 * 2**20)
    sys.setrecursionlimit(10**6)
    threading.Thread(target=main).start()
    ```

    ## Fix
    `kernel-lint --fix` lowers the limit to 13,000, the most the C stack holds.
    """

    code = "KG304"
    name = "recursion-limit-too-high"
    summary = "`sys.setrecursionlimit` above what the C stack holds"
    severity = "warning"
    triggers = None
    VALID = [
        "import sys\nsys.setrecursionlimit(10_000)",
        "import sys, threading\nthreading.stack_size(2**29)\nsys.setrecursionlimit(10**6)",
        "import sys\nsys.setrecursionlimit(limit)",
        "def setrecursionlimit(n):\n    pass\nsetrecursionlimit(10**6)",
    ]
    INVALID = [
        Case("import sys\nsys.setrecursionlimit(10**6)", line=2, column=1, message="1,000,000"),
        ("LIMIT = 100_000", "from sys import setrecursionlimit\nsetrecursionlimit(LIMIT)"),
    ]

    def __init__(self, context) -> None:
        super().__init__(context)
        self.candidates: list[tuple[Cell, ast.Call, int]] = []
        self.big_stack = False

    def visit_cell(self, cell, tree: ast.Module) -> None:
        source = cell.source
        self.big_stack = self.big_stack or "stack_size" in source or "RLIMIT_STACK" in source
        if "setrecursionlimit" not in source:
            return
        facts = flow.facts(self.context)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and node.args and facts.resolve(node.func) == "sys.setrecursionlimit":
                limit = flow.quick_value(node.args[0], self.context)
                if type(limit) is int and limit > C_STACK_FRAMES:
                    self.candidates.append((cell, node, limit))

    def end_document(self) -> None:
        if self.big_stack:
            return
        for cell, node, limit in self.candidates:
            self.report_at(
                cell,
                self.context.ast_position(cell, node),
                f"recursion limit {limit:,} is past what the C stack holds (about {C_STACK_FRAMES:,} frames through "
                "C code such as map, sorted or lru_cache): runaway recursion crashes the kernel instead of raising "
                "RecursionError",
            )
