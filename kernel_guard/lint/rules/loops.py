"""KG2: loops that never end.

A loop is only reported when nothing in it can leave it: no ``break`` of its own,
no ``return``, ``raise``, ``assert``, ``yield`` or ``await``, no exit call, no call
that conventionally ends loops by raising (``next``, ``sess.run``, ``q.get_nowait``
...) or to a function of the notebook that may raise, no ``try`` around it, and it
runs in the kernel's own thread (module level, or a plain function that is called
and never handed over as a thread target or callback).
"""

from __future__ import annotations

import ast
import re

from kernel_guard.lint import flow
from kernel_guard.lint.rule import Case, Rule


class InfiniteWhileLoop(Rule):
    """
    ## What it does
    Flags a `while True` loop (or any condition that is constant and true, such
    as `while 1` or a flag bound once to `True`) that nothing inside can leave:
    no `break` of its own, `return`, `raise`, `sys.exit()`, nor a call that
    ends loops by raising (`next()`, `sess.run()`, `q.get(timeout=...)`, a
    function of the notebook that raises). Loops inside a `try`, in generators
    and coroutines, and in functions handed to a thread or a callback are not
    reported.

    ## Why is this bad?
    The cell never finishes. The kernel stays busy until it is interrupted, and
    the cells queued after it never run (a notebook run with nbconvert or
    papermill hangs until its timeout).

    ## Example
    ```python
    while True:
        status = job.refresh()
        time.sleep(10)
    ```

    ## Use instead
    ```python
    while True:
        status = job.refresh()
        if status.done:
            break
        time.sleep(10)
    ```
    """

    code = "KG201"
    name = "infinite-while-loop"
    summary = "`while True` loop that nothing inside can leave"
    severity = "error"
    triggers = None
    VALID = [
        """
        while True:
            line = read()
            if not line:
                break
            handle(line)
        """,
        """
        def poll(job):
            while True:
                if job.done():
                    return job.result
                sleep(1)
        poll(j)
        """,
        """
        while True:
            x = compute()
            if x < 0:
                raise ValueError(x)
        """,
        """
        import queue
        def worker(q):
            while True:
                item = q.get()
                if item is None:
                    break
                work(item)
        worker(q)
        """,
        """
        def gen():
            i = 0
            while True:
                yield i
                i += 1
        """,
        """
        import threading
        def worker():
            while True:
                item = q.get()
                work(item)
                q.task_done()
        threading.Thread(target=worker, daemon=True).start()
        """,
        """
        try:
            while True:
                print(next(it))
        except StopIteration:
            pass
        """,
        """
        while True:
            batch = sess.run(next_batch)
            total += batch.sum()
        """,
        """
        while True:
            try:
                step()
            except KeyboardInterrupt:
                break
        """,
        """
        import sys
        while True:
            if done():
                sys.exit(0)
        """,
        """
        def check(x):
            if x > 3:
                raise StopIteration
        while True:
            check(read())
        """,
        """
        while True:
            for item in items:
                handle(item)
            else:
                break
        """,
        """
        async def main():
            while True:
                await asyncio.sleep(1)
        """,
        """
        running = True
        def stop():
            global running
            running = False
        while running:
            step()
        """,
        """
        while True:
            assert step() < 10
        """,
    ]
    INVALID = [
        Case(
            """
            while True:
                print('hi')
            """,
            line=1, column=1, message="`while True`",
        ),
        Case(
            """
            import time
            while 1:
                time.sleep(1)
            """,
            line=2,
        ),
        """
        while True:
            for item in items:
                if item:
                    break
        """,
        """
        def spin():
            while True:
                pass
        spin()
        """,
        (
            "running = True",
            """
            while running:
                step()
            """,
        ),
        Case(
            """
            i = 0
            while True:
                i += 1
            """,
            script=True,
        ),
        """
        while True:
            try:
                step()
            except Exception:
                continue
        """,
    ]

    def visit_cell(self, cell, tree: ast.Module) -> None:
        if "while" not in cell.source or not flow.WHILE_LINE.search(cell.source):
            return
        for loop, ancestors in flow.statements_with_ancestors(tree, (ast.While,)):
            if flow.endless_loop(loop, ancestors, self.context):
                self.report_at(
                    cell,
                    flow.head_position(cell, loop, loop.test),
                    f"`while {flow.source_of(loop.test)}` loop has no reachable break, return or raise: it never ends",
                )


class UnchangingLoopCondition(Rule):
    """
    ## What it does
    Flags a `while` loop whose condition depends only on names that nothing in
    the loop changes: the loop does not assign them, and nowhere in the notebook
    are they mutated, passed to a function (other than read-only builtins such as
    `print` or `len`), aliased, or used by another function (a thread, a callback).

    ## Why is this bad?
    If the condition is true once, it stays true: the loop never ends and the
    cell hangs. It is usually a forgotten `i += 1` or an update of the wrong
    variable.

    ## Example
    ```python
    def countdown(n):
        while n > 0:
            print(n)
    ```

    ## Use instead
    ```python
    def countdown(n):
        while n > 0:
            print(n)
            n -= 1
    ```
    """

    code = "KG202"
    name = "unchanging-loop-condition"
    summary = "`while` condition that nothing in the loop can change"
    severity = "warning"
    triggers = None
    VALID = [
        """
        i = 0
        while i < 10:
            print(i)
            i += 1
        """,
        """
        while queue:
            node = queue.pop()
            visit(node)
        """,
        """
        while stack:
            expand(stack)
        """,
        """
        while n > 1:
            n = n // 2 if n % 2 == 0 else 3 * n + 1
        """,
        """
        done = False
        def on_event():
            global done
            done = True
        while not done:
            wait()
        """,
        """
        results = []
        def collect(x):
            results.append(x)
        while len(results) < 3:
            sleep(1)
        """,
        """
        while i < n:
            if check(i):
                break
            log(i)
        """,
        """
        while x < 10:
            x_alias = x
            step(x_alias)
        """,
        """
        while job.running:
            sleep(1)
        """,
        """
        while not event.is_set():
            sleep(1)
        """,
        """
        def f(n):
            while n > 0:
                n -= 1
        f(3)
        """,
        """
        DEBUG = False
        while DEBUG:
            print('debugging')
        """,
    ]
    INVALID = [
        Case(
            """
            i = first()
            stop = 10
            while i < stop:
                print(i)
            """,
            line=3, column=1, message="`i`, `stop`",
        ),
        Case(
            """
            n = len(data)
            total = 0
            while n > 0:
                total += n
            """,
            line=3,
        ),
        (
            "lst = load()",
            """
            while lst:
                item = lst[0]
                print(len(lst))
            """,
        ),
        """
        def countdown(n):
            while n > 0:
                print(n)
        countdown(3)
        """,
        """
        done = check()
        while not done:
            result = step()
        """,
    ]

    def visit_cell(self, cell, tree: ast.Module) -> None:
        if "while" not in cell.source or not flow.WHILE_LINE.search(cell.source):
            return
        for loop, ancestors in flow.statements_with_ancestors(tree, (ast.While,)):
            names = _condition_names(loop.test)
            if not names or flow.quick_value(loop.test, self.context) is not flow.UNKNOWN:
                continue  # a known condition: KG201 if true, a loop that never runs if false
            facts = flow.facts(self.context)
            if (names & {"len"} and facts.bindings["len"]) or not facts.never_ends(loop, ancestors):
                continue
            scope = flow.enclosing_scope(ancestors)
            if all(_unchanging(name, loop, scope, facts) for name in names):
                listed = ", ".join(f"`{name}`" for name in sorted(names - {"len"}))
                self.report_at(
                    cell,
                    flow.head_position(cell, loop, loop.test),
                    f"`while {flow.source_of(loop.test)}`: nothing in the loop changes {listed}, "
                    "so once the condition is true the loop never ends",
                )


def _condition_names(test: ast.expr) -> set[str] | None:
    """The names a simple condition reads (names, constants, operators, ``len(name)``),
    or ``None`` when it calls, indexes or reads attributes."""
    names = set()
    for node in ast.walk(test):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Call):
            if not (
                isinstance(node.func, ast.Name)
                and node.func.id == "len"
                and len(node.args) == 1
                and isinstance(node.args[0], ast.Name)
                and not node.keywords
            ):
                return None
        elif not isinstance(
            node, (ast.Constant, ast.Compare, ast.BoolOp, ast.UnaryOp, ast.BinOp, ast.expr_context,
                   ast.operator, ast.boolop, ast.unaryop, ast.cmpop)
        ):
            return None
    return names


def _unchanging(name: str, loop: ast.While, scope, facts: flow.Facts) -> bool:
    if name == "len":
        return True  # the builtin (checked by the caller)
    if name in facts.declared_global or facts.bindings[name] == 0:
        return False  # rebound from a function, or a builtin / unknown name
    for node, parent, load_scope, _ in facts.loads[name]:
        if load_scope is not scope or not flow.reads_only(node, parent, facts):
            return False  # another function (a thread, a callback) or an alias may change it
    return not any(_binds(node, name) for node in flow.body_nodes(loop.body))


def _binds(node: ast.AST, name: str) -> bool:
    if isinstance(node, ast.Name):
        return node.id == name and not isinstance(node.ctx, ast.Load)
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name == name
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return any((alias.asname or alias.name).split(".")[0] == name for alias in node.names)
    if isinstance(node, (ast.Global, ast.Nonlocal)):
        return name in node.names
    if isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)):
        return node.name == name
    return False


class InfiniteIterator(Rule):
    """
    ## What it does
    Flags a `for` loop over an iterator that never ends — `itertools.count()`,
    `itertools.cycle(...)`, `itertools.repeat(x)`, `iter(int, 1)` — with no
    `break`, `return` or `raise` inside.

    ## Why is this bad?
    The iterator never runs out, so the loop only ends if its body leaves it.
    Without an exit the cell hangs.

    ## Example
    ```python
    import itertools
    for step in itertools.count():
        train_one_batch()
    ```

    ## Use instead
    ```python
    for step in itertools.count():
        if train_one_batch() < 0.01:
            break
    # or: for step in range(max_steps):
    ```
    """

    code = "KG203"
    name = "infinite-iterator-loop"
    summary = "`for` over an endless iterator with no exit"
    severity = "error"
    triggers = None
    VALID = [
        """
        import itertools
        for i in itertools.count():
            if i > 10:
                break
        """,
        """
        from itertools import cycle
        for color, ax in zip(cycle('rgb'), axes):
            ax.plot(color=color)
        """,
        """
        def count(stop):
            i = 0
            while i < stop:
                yield i
                i += 1
        for n in count(5):
            print(n)
        """,
        """
        from itertools import repeat
        for x in repeat(1, 5):
            print(x)
        """,
        """
        for line in iter(f.readline, ''):
            print(line)
        """,
        """
        import itertools
        def gen():
            for i in itertools.count():
                yield i * i
        """,
        """
        from itertools import cycle
        for x in cycle([]):
            print(x)
        """,
    ]
    INVALID = [
        Case(
            """
            import itertools
            for i in itertools.count():
                print(i)
            """,
            line=2, column=1, message="itertools.count",
        ),
        (
            "import itertools as it",
            """
            for x in it.cycle([1, 2]):
                total += x
            """,
        ),
        """
        from itertools import repeat
        for x in repeat(0):
            pass
        """,
        """
        for _ in iter(int, 1):
            step()
        """,
        """
        from itertools import count
        for i, x in enumerate(count(1)):
            work(x)
        """,
    ]

    def visit_cell(self, cell, tree: ast.Module) -> None:
        source = cell.source
        if "for" not in source or not flow.ENDLESS_LINE.search(source):
            return
        for loop, ancestors in flow.statements_with_ancestors(tree, (ast.For,)):
            if flow.endless_loop(loop, ancestors, self.context):
                self.report_at(
                    cell,
                    flow.head_position(cell, loop, loop.iter),
                    f"`for` over `{flow.source_of(loop.iter, source)}`, which never runs out, with no break, return "
                    "or raise: the loop never ends",
                )


class LoopGrowsIterable(Rule):
    """
    ## What it does
    Flags a `for` loop over a list that appends to that same list on every
    iteration (`append`, `insert`, `extend` or `+=` with a non-empty literal, not
    under a condition), with no `break`, `return` or `raise`.

    ## Why is this bad?
    A list iterator reads the list's current length at each step: every pass adds
    an element ahead of it, so the loop never reaches the end. The cell hangs while
    the list grows until memory runs out.

    ## Example
    ```python
    names = ["a", "b"]
    for name in names:
        names.append(name.upper())
    ```

    ## Use instead
    ```python
    names = ["a", "b"]
    names += [name.upper() for name in names]
    ```
    """

    code = "KG204"
    name = "loop-grows-iterable"
    summary = "`for` loop appends to the list it iterates on every pass"
    severity = "error"
    triggers = None
    _GROW = frozenset({"append", "insert", "extend"})
    _SHRINK = frozenset({"pop", "remove", "clear"})
    VALID = [
        """
        names = ['a']
        for name in names[:]:
            names.append(name.upper())
        """,
        """
        names = ['a']
        for name in list(names):
            names.append(name.upper())
        """,
        """
        todo = [root]
        for node in todo:
            if node not in seen:
                todo.append(node)
        """,
        """
        todo = [root]
        for node in todo:
            todo.extend(node.children)
        """,
        """
        out = []
        for x in data:
            out.append(x)
        """,
        """
        items = [1]
        for x in items:
            items.append(x)
            break
        """,
        """
        def f(items):
            for x in items:
                items.append(x)
        """,
        """
        items = [1]
        for x in items:
            items.append(x)
            items.pop(0)
        """,
    ]
    INVALID = [
        Case(
            """
            names = ['a', 'b']
            for name in names:
                names.append(name.upper())
            """,
            line=3, column=5, message="`names`",
        ),
        (
            "queue = [1]",
            """
            for item in queue:
                queue += [item * 2]
            """,
        ),
        """
        xs = [0]
        for x in xs:
            print(x)
            xs.insert(0, x)
        """,
        """
        xs = [0]
        for x in xs:
            xs.extend([x, x])
        """,
    ]

    def visit_cell(self, cell, tree: ast.Module) -> None:
        source = cell.source
        if "for" not in source or not any(
            re.search(rf"\b{re.escape(name)}\s*(?:\.\s*(?:append|insert|extend)\s*\(|\+=)", source)
            for name in _FOR_NAME.findall(source)
        ):
            return
        for loop, _ in flow.statements_with_ancestors(tree, (ast.For,)):
            if not isinstance(loop.iter, ast.Name):
                continue
            grow = next((s for s in loop.body if _grows(s, loop.iter.id, self._GROW)), None)
            if grow is None:
                continue
            facts = flow.facts(self.context)
            if facts.escapes(loop) or not _is_list(loop.iter.id, facts) or self._changed(loop, loop.iter.id):
                continue
            self.report_at(
                cell,
                self.context.ast_position(cell, grow),
                f"`for {flow.source_of(loop.target)} in {loop.iter.id}` adds to `{loop.iter.id}` on every pass: "
                "the list grows ahead of the loop, which never ends",
            )

    def _changed(self, loop: ast.For, name: str) -> bool:
        """Whether the loop rebinds the list or removes from it."""
        grown = {id(node.target) for node in flow.body_nodes(loop.body) if isinstance(node, ast.AugAssign)}
        for node in flow.body_nodes(loop.body):
            if _binds(node, name) and id(node) not in grown:
                return True
            if isinstance(node, ast.Delete) and any(
                isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) and target.value.id == name
                for target in node.targets
            ):
                return True
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == name
                and node.func.attr in self._SHRINK
            ):
                return True
        return False


_FOR_NAME = re.compile(r"^[ \t]*for\b.*\bin[ \t]+(\w+)[ \t]*:", re.MULTILINE)  # ``for x in name:``


def _grows(statement: ast.stmt, name: str, methods) -> bool:
    """``name.append(x)``, ``name.insert(i, x)``, ``name.extend([x])``, ``name += [x]``."""
    if isinstance(statement, ast.AugAssign):
        return (
            isinstance(statement.target, ast.Name)
            and statement.target.id == name
            and isinstance(statement.op, ast.Add)
            and isinstance(statement.value, (ast.List, ast.Tuple))
            and bool(statement.value.elts)
        )
    if not isinstance(statement, ast.Expr) or not isinstance(statement.value, ast.Call):
        return False
    call = statement.value
    func = call.func
    if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == name):
        return False
    if func.attr not in methods or call.keywords:
        return False
    if func.attr == "extend":
        return len(call.args) == 1 and isinstance(call.args[0], (ast.List, ast.Tuple)) and bool(call.args[0].elts)
    return len(call.args) == (2 if func.attr == "insert" else 1)


def _is_list(name: str, facts: flow.Facts) -> bool:
    """Whether every binding of ``name`` in the document makes a list."""
    values = facts.assigned.get(name, [])
    if not values or facts.bindings[name] != len(values) + facts.augmented[name]:
        return False
    return all(_makes_list(value, facts) for value in values)


def _makes_list(value: ast.expr, facts: flow.Facts) -> bool:
    if isinstance(value, (ast.List, ast.ListComp)):
        return True
    if isinstance(value, ast.Call):
        return facts.is_builtin(value.func, "list")
    if isinstance(value, ast.BinOp) and isinstance(value.op, (ast.Mult, ast.Add)):
        return isinstance(value.left, ast.List) or isinstance(value.right, ast.List)
    return False
