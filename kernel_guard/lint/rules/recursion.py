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
        """
        def fact(n):
            if n == 0:
                return 1
            return n * fact(n - 1)
        """,
        """
        def total(lst):
            if not lst:
                return 0
            return lst[0] + total(lst[1:])
        """,
        """
        def size(node):
            return 1 + sum(size(child) for child in node.children)
        """,
        """
        def walk(node):
            for child in node.children:
                walk(child)
        """,
        """
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)
        """,
        """
        def walk(tree):
            yield tree
            yield from walk(tree.left)
        """,
        """
        def f(n):
            check(n)
            return f(n - 1)
        def check(n):
            if n < 0:
                raise ValueError(n)
        """,
        """
        class Model:
            @property
            def size(self):
                return self._size
        """,
        """
        class Node:
            def __repr__(self):
                return f'Node({self.value!r})'
        """,
        """
        class A:
            def __setattr__(self, name, value):
                object.__setattr__(self, name, value)
        """,
        """
        class A:
            def forward(self, x):
                return self.layer.forward(x)
        """,
        """
        def f(n):
            return f(n - 1)
        def f(n):
            return 0
        """,
        """
        def get(url, retries=3):
            try:
                return fetch(url)
            except IOError:
                return get(url, retries - 1)
        """,
        """
        def is_even(n):
            return True if n == 0 else is_odd(n - 1)
        def is_odd(n):
            return False if n == 0 else is_even(n - 1)
        """,
        """
        class Tree:
            def depth(self):
                return 1 + max((c.depth() for c in self.children), default=0)
        """,
    ]
    INVALID = [
        Case(
            """
            def fact(n):
                return n * fact(n - 1)
            """,
            line=1, column=1, message="`fact`",
        ),
        """
        def loop(x):
            print(x)
            loop(x + 1)
        """,
        """
        def f(n):
            if n > 0:
                return f(n - 1)
            else:
                return f(n + 1)
        """,
        Case((
            """
            def is_even(n):
                return is_odd(n - 1)
            """,
            """
            def is_odd(n):
                return is_even(n - 1)
            """,
        ), line=1, message="`is_even`"),
        """
        class Model:
            @property
            def size(self):
                return self.size
        """,
        """
        class A:
            def __setattr__(self, name, value):
                self.name = value
        """,
        """
        class Bag:
            def __len__(self):
                return len(self)
        """,
        """
        class P:
            def __str__(self):
                return f'P({self})'
        """,
        """
        class A:
            def run(self):
                self.setup()
                return self.run()
        """,
        """
        def outer():
            def helper(k):
                return helper(k) + 1
            return helper(3)
        """,
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
        """
        def fact(n):
            if n == 0:
                return 1
            return n * fact(n - 1)
        fact(5)
        """,
        """
        def up(n):
            if n >= 10:
                return n
            return up(n + 1)
        up(0)
        """,
        """
        def count(n):
            if n == 10:
                return
            print(n)
            count(n + 1)
        count(0)
        """,
        """
        def total(lst):
            if not lst:
                return 0
            return lst[0] + total(lst[1:])
        """,
        """
        def f(n, acc):
            if acc > 100:
                return acc
            return f(n, acc + n)
        """,
        """
        def f(n):
            if n in memo:
                return memo[n]
            return f(n + 1)
        """,
        """
        def f(n):
            if n <= 0:
                return 0
            while step():
                pass
            return f(n - 1)
        """,
        """
        def f(n):
            if n == 0:
                return 1
            return f(n - 2)
        f(4)
        """,
    ]
    INVALID = [
        Case(
            """
            def fact(n):
                if n <= 1:
                    return 1
                return n * fact(n + 1)
            """,
            line=1, column=1, message="n + 1",
        ),
        Case((
            """
            def fact(n):
                if n == 0:
                    return 1
                return n * fact(n + 1)
            """,
            "fact(5)",
        ), line=1, column=1, message="fact(5)"),
        """
        def f(n):
            if n == 0:
                return 0
            print(n)
            return f(n)
        """,
        """
        def down(n):
            if n > 100:
                return n
            return down(n - 1)
        """,
        """
        def f(n):
            if n == 0:
                return 1
            return f(n - 2)
        f(5)
        """,
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
        """
        def total(n):
            if n == 0:
                return 0
            return n + total(n - 1)
        total(500)
        """,
        """
        import sys
        sys.setrecursionlimit(200_000)
        def total(n):
            if n == 0:
                return 0
            return n + total(n - 1)
        total(100_000)
        """,
        """
        import sys
        sys.setrecursionlimit(limit)
        def total(n):
            if n == 0:
                return 0
            return n + total(n - 1)
        total(100_000)
        """,
        """
        def total(n):
            if n == 0:
                return 0
            return n + total(n // 2)
        total(100_000)
        """,
        """
        def f(n):
            if n in cache:
                return cache[n]
            return f(n - 1)
        f(10_000)
        """,
        """
        def total(n):
            return 0 if n == 0 else n + total(n - 1)
        try:
            total(10**5)
        except RecursionError as e:
            print('too deep:', e)
        """,
    ]
    INVALID = [
        Case((
            """
            def total(n):
                if n == 0:
                    return 0
                return n + total(n - 1)
            """,
            "total(100_000)",
        ), line=1, column=1, message="100,000"),
        (
            "N = 5000",
            """
            from functools import lru_cache
            @lru_cache(None)
            def fib(n):
                if n < 2:
                    return n
                return fib(n - 1) + fib(n - 2)
            print(fib(N))
            """,
        ),
        """
        def depth(n):
            return 0 if n <= 0 else 1 + depth(n - 1)
        depth(1000)
        """,
        Case(
            """
            import sys, functools
            sys.setrecursionlimit(10**6)
            @functools.cache
            def f(n):
                return 0 if n == 0 else f(n - 1) + 1
            f(50_000)
            """,
            message="segmentation fault",
        ),
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
        """
        import sys
        sys.setrecursionlimit(10_000)
        """,
        """
        import sys, threading
        threading.stack_size(2**29)
        sys.setrecursionlimit(10**6)
        """,
        """
        import sys
        sys.setrecursionlimit(limit)
        """,
        """
        def setrecursionlimit(n):
            pass
        setrecursionlimit(10**6)
        """,
    ]
    INVALID = [
        Case(
            """
            import sys
            sys.setrecursionlimit(10**6)
            """,
            line=2, column=1, message="1,000,000",
        ),
        (
            "LIMIT = 100_000",
            """
            from sys import setrecursionlimit
            setrecursionlimit(LIMIT)
            """,
        ),
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
