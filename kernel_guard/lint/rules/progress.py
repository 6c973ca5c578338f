"""KG6: progress bars told to redraw on every step of a huge loop.

tqdm redraws when ``miniters`` steps have passed *and* ``mininterval`` seconds
have: its 0.1 s default caps a bar at ten redraws a second however fast the loop.
With ``mininterval=0`` the automatic ``miniters`` settles at one step, so every
step redraws (``miniters=1`` alone does not: the time test still holds it back).
"""

from __future__ import annotations

import ast

from kernel_guard.estimator import UNKNOWN
from kernel_guard.lint import flow
from kernel_guard.lint.rule import Case, Rule
from kernel_guard.lint.rules.output import _loops_between, passes

_REDRAWS = 10_000  # as KG602's lines: more than anyone reads, and megabytes of messages
_BARS = frozenset({
    "tqdm.tqdm", "tqdm.std.tqdm", "tqdm.auto.tqdm", "tqdm.autonotebook.tqdm", "tqdm.notebook.tqdm",
    "tqdm.tqdm_notebook", "tqdm.notebook.tqdm_notebook", "tqdm.rich.tqdm", "tqdm.asyncio.tqdm",
})
_RANGES = frozenset({
    "tqdm.trange", "tqdm.std.trange", "tqdm.auto.trange", "tqdm.autonotebook.trange", "tqdm.notebook.trange",
    "tqdm.tnrange", "tqdm.notebook.tnrange", "tqdm.rich.trange",
})


class ProgressRedrawsEveryStep(Rule):
    """
    ## What it does
    Flags a tqdm progress bar (`tqdm`, `trange`, from `tqdm`, `tqdm.auto` or
    `tqdm.notebook`) created with `mininterval=0` that advances on every pass of a
    loop that never ends or runs more than 10,000 times in all.

    ## Why is this bad?
    tqdm redraws a bar only when `mininterval` seconds (0.1 by default) have passed
    since the last redraw. With `mininterval=0` it redraws on every step, and in a
    kernel each redraw is a message to the browser: measured in ipykernel with
    tqdm 4.70, 5,000 steps sent 4,982 output messages and took 2.8 s, where
    100,000 steps with the default took 0.06 s and 3 messages. A million steps
    become a million messages (with `tqdm.notebook`, widget updates) that flood
    the front end and freeze the tab. `miniters=1` alone is harmless: the time
    test still holds redraws back.

    ## Example
    ```python
    from tqdm.auto import tqdm
    for i in tqdm(range(1_000_000), mininterval=0):
        step(i)
    ```

    ## Use instead
    ```python
    from tqdm.auto import tqdm
    for i in tqdm(range(1_000_000)):  # at most ten redraws a second
        step(i)
    ```

    ## Known limitations
    Only constant `mininterval` values and loops whose trip counts are known
    (`range`, literals, `total=`) or endless are checked; `tqdm.pandas()` and bars
    passed to functions are not followed.
    """

    code = "KG605"
    name = "progress-redraws-every-step"
    summary = "a progress bar with mininterval=0 in a loop of more than 10,000 steps"
    severity = "warning"
    triggers = None
    VALID = [
        """
        from tqdm import tqdm
        for i in tqdm(range(1_000_000)):
            step(i)
        """,
        """
        from tqdm import tqdm
        for i in tqdm(range(1_000_000), miniters=1):
            step(i)
        """,
        """
        from tqdm import tqdm
        for i in tqdm(range(5_000), mininterval=0):
            step(i)
        """,
        """
        from tqdm import tqdm
        for i in tqdm(range(1_000_000), mininterval=0, miniters=1_000):
            step(i)
        """,
        """
        from tqdm import tqdm
        for i in tqdm(range(1_000_000), mininterval=0, disable=True):
            step(i)
        """,
        """
        from tqdm import tqdm
        with open("progress.log", "w") as log:
            for i in tqdm(range(1_000_000), mininterval=0, file=log):
                step(i)
        """,
        """
        from tqdm import tqdm
        for item in tqdm(items, mininterval=0):
            step(item)
        """,
        """
        from tqdm import tqdm
        bar = tqdm(total=1_000_000, mininterval=0)
        for i in range(1_000_000):
            if i % 1_000 == 0:
                bar.update(1_000)
        """,
        """
        from tqdm import tqdm
        for i in tqdm(range(1_000_000), mininterval=0):
            if converged(i):
                break
        """,
    ]
    INVALID = [
        Case(
            """
            from tqdm.auto import tqdm
            for i in tqdm(range(1_000_000), mininterval=0):
                step(i)
            """,
            line=2, column=10, message="each of 1,000,000 steps",
        ),
        """
        from tqdm.notebook import trange
        for epoch in range(100):
            for batch in trange(500, mininterval=0, miniters=1):
                train(batch)
        """,
        Case((
            "STEPS = 200_000",
            """
            import tqdm
            with tqdm.tqdm(total=STEPS, mininterval=0.0) as bar:
                for i in range(STEPS):
                    simulate(i)
                    bar.update(1)
            """,
        )),
        Case(
            """
            import itertools
            from tqdm import tqdm
            for i in tqdm(itertools.count(), mininterval=0):
                poll(i)
            """,
            message="never ends",
        ),
        """
        from tqdm import tqdm
        bar = tqdm(range(50_000), mininterval=0)
        for i, x in enumerate(bar):
            step(x)
        """,
    ]

    def visit_cell(self, cell, tree: ast.Module) -> None:
        if "mininterval" not in cell.source:
            return
        facts = flow.facts(self.context)
        bars = {}  # id of a bar call redrawing every few steps -> (call, steps per redraw)
        named = {}  # name bound once to such a bar -> its call
        for node, ancestors in flow.with_ancestors(tree, (ast.Call,)):
            every = self._every(node, facts) if isinstance(node, ast.Call) else None
            if isinstance(node, ast.Call) and every is not None:
                bars[id(node)] = node, every
                name = _bound_name(node, ancestors[-1] if ancestors else None)
                if name is not None and facts.bindings[name] == 1:
                    named[name] = node
        if not bars:
            return
        for bar, redraws in self._uses(tree, bars, named, facts):
            if id(bar) not in bars:
                continue  # reported already
            call, every = bars[id(bar)]
            if redraws is not None:
                redraws //= every
                if redraws <= _REDRAWS:
                    continue
            how = "on every step of a loop that never ends" if redraws is None else f"on each of {redraws:,} steps"
            self.report_at(
                cell,
                self.context.ast_position(cell, call),
                f"`{flow.source_of(call.func, cell.source)}(..., mininterval=0)` redraws the progress bar {how}: "
                "the output floods the browser; keep the default mininterval (0.1 s)",
            )
            del bars[id(bar)]

    def _every(self, call: ast.Call, facts: flow.Facts) -> int | None:
        """Steps between redraws of a bar made with ``mininterval=0``, printing to
        the notebook; ``None`` for any other call."""
        name = facts.resolve(call.func)
        if name not in _BARS and name not in _RANGES:
            return None
        keywords = {keyword.arg: keyword.value for keyword in call.keywords}
        if None in keywords or "mininterval" not in keywords:
            return None

        def value(key: str) -> object:
            return flow.quick_value(keywords[key], self.context)

        interval = value("mininterval")
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval > 0:
            return None
        if "disable" in keywords and value("disable") is not False:
            return None
        if "file" in keywords and facts.resolve(keywords["file"]) not in ("sys.stdout", "sys.stderr"):
            return None
        every = value("miniters") if "miniters" in keywords else None
        if every is None or every == 0:
            return 1
        return int(every) if isinstance(every, (int, float)) and every >= 1 else None

    def _uses(self, tree: ast.Module, bars, named, facts: flow.Facts):
        """Each ``(bar call, steps or None for endless)`` where a bar of
        ``bars`` advances: iterated by a ``for`` loop, or its ``update`` called on
        every pass of one."""
        for loop, ancestors in flow.statements_with_ancestors(tree, (ast.For,)):
            if not isinstance(loop, ast.For):
                continue
            iterable = loop.iter
            while isinstance(iterable, ast.Call) and facts.is_builtin(iterable.func, "enumerate") and iterable.args:
                iterable = iterable.args[0]
            if isinstance(iterable, ast.Name) and iterable.id in named:
                iterable = named[iterable.id]
            if not isinstance(iterable, ast.Call) or id(iterable) not in bars or facts.escapes(loop):
                continue
            outer = _loops_between(ancestors, loop)
            if outer is None or any(isinstance(o, flow.LOOPS) and facts.escapes(o) for o in outer):
                continue
            if self._endless(iterable, facts) and facts.never_ends(loop, ancestors):
                yield iterable, None
                continue
            steps = self._steps(iterable, facts)
            if steps is not None:
                yield iterable, steps * (passes(outer, self.context) or 1)
        for node, ancestors in flow.with_ancestors(tree, (ast.Call,)):
            func = node.func if isinstance(node, ast.Call) else None
            if not (isinstance(func, ast.Attribute) and func.attr == "update" and isinstance(func.value, ast.Name)
                    and func.value.id in named):
                continue
            loops = _loops_between(ancestors, node)
            if not loops or any(isinstance(loop, flow.LOOPS) and facts.escapes(loop) for loop in loops):
                continue
            if any(flow.endless_loop(loop, ancestors[: ancestors.index(loop)], self.context) for loop in loops):
                yield named[func.value.id], None
                continue
            steps = passes(loops, self.context)
            if steps is not None:
                yield named[func.value.id], steps

    def _steps(self, call: ast.Call, facts: flow.Facts) -> int | None:
        """How many items the bar's iterable yields: ``trange``'s range, a
        ``range(...)`` or literal iterable, else its ``total=``."""
        if facts.resolve(call.func) in _RANGES:
            found = flow.quick_value(ast.Call(ast.Name("range", ast.Load()), call.args, []), self.context)
            return len(found) if type(found) is range else None
        iterable = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "iterable"), None)
        if isinstance(iterable, (ast.List, ast.Tuple)) or (
            isinstance(iterable, ast.Call) and facts.is_builtin(iterable.func, "range")
        ):
            found = flow.quick_value(iterable, self.context)
            if isinstance(found, (range, list, tuple)):
                return len(found)
        total = next((k.value for k in call.keywords if k.arg == "total"), None)
        found = flow.quick_value(total, self.context) if total is not None else UNKNOWN
        return found if isinstance(found, int) and not isinstance(found, bool) else None

    @staticmethod
    def _endless(call: ast.Call, facts: flow.Facts) -> bool:
        return bool(call.args) and flow.endless_iterator(call.args[0], facts)


def _bound_name(call: ast.Call, parent: ast.AST | None) -> str | None:
    """The name a bar is bound to: ``bar = tqdm(...)`` or ``with tqdm(...) as bar``."""
    if isinstance(parent, ast.Assign) and parent.value is call and len(parent.targets) == 1:
        target = parent.targets[0]
        return target.id if isinstance(target, ast.Name) else None
    if isinstance(parent, ast.withitem) and parent.context_expr is call:
        return parent.optional_vars.id if isinstance(parent.optional_vars, ast.Name) else None
    return None
